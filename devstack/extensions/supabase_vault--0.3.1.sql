-- TEST DOUBLE of Supabase Vault 0.3.1 (bubble-sync devstack).
--
-- Mirrors what callers of the real extension can observe:
--   * vault.secrets with the real columns; `secret` holds base64 ciphertext, never the plain value;
--   * a partial unique index on name, so a second create_secret with the same name fails with 23505;
--   * vault.create_secret / vault.update_secret with the real signatures and semantics
--     (update_secret on an unknown id does nothing; NULL arguments keep the old value);
--   * vault.decrypted_secrets;
--   * Supabase's grants: postgres and service_role may use Vault, anon and authenticated may not.
-- Differs from the real one: AES-256-CBC from pgcrypto with a per-row IV instead of libsodium's
-- deterministic AEAD, and the root key lives in a table only the extension owner can read instead of
-- outside the database. `additional` (the authenticated data) is accepted and ignored.

\echo Use "CREATE EXTENSION supabase_vault" to load this file. \quit

-- ---------------------------------------------------------------------------------------------------
-- Key material and crypto helpers
-- ---------------------------------------------------------------------------------------------------

create table vault._root_key (
  id  int primary key default 1 check (id = 1),
  key bytea not null default extensions.gen_random_bytes(32)
);
insert into vault._root_key default values;
revoke all on vault._root_key from public;

-- a fresh IV for every secret row
create function vault._crypto_aead_det_noncegen()
returns bytea
language sql
volatile
set search_path = ''
as 'select extensions.gen_random_bytes(16)';

-- encrypts a message with the root key (signature as in the real extension)
create function vault._crypto_aead_det_encrypt(
  message bytea, additional bytea, key_id bigint,
  context bytea default '\x7067736f6469756d'::bytea, nonce bytea default null
)
returns bytea
language sql
security definer
set search_path = ''
as $$
  select extensions.encrypt_iv(message, (select k.key from vault._root_key k), nonce, 'aes')
$$;

-- decrypts a message with the root key (signature as in the real extension)
create function vault._crypto_aead_det_decrypt(
  message bytea, additional bytea, key_id bigint,
  context bytea default '\x7067736f6469756d'::bytea, nonce bytea default null
)
returns bytea
language sql
security definer
set search_path = ''
as $$
  select extensions.decrypt_iv(message, (select k.key from vault._root_key k), nonce, 'aes')
$$;

-- ---------------------------------------------------------------------------------------------------
-- Secrets
-- ---------------------------------------------------------------------------------------------------

create table vault.secrets (
  id          uuid primary key default gen_random_uuid(),
  name        text,
  description text not null default '',
  secret      text not null,
  key_id      uuid,
  nonce       bytea default vault._crypto_aead_det_noncegen(),
  created_at  timestamptz not null default current_timestamp,
  updated_at  timestamptz not null default current_timestamp
);
create unique index secrets_name_idx on vault.secrets using btree (name) where name is not null;

create view vault.decrypted_secrets as
select s.id,
       s.name,
       s.description,
       s.secret,
       convert_from(
         vault._crypto_aead_det_decrypt(
           message := decode(s.secret, 'base64'), additional := convert_to(s.id::text, 'utf8'),
           key_id := 0, context := 'pgsodium'::bytea, nonce := s.nonce),
         'utf8') as decrypted_secret,
       s.key_id,
       s.nonce,
       s.created_at,
       s.updated_at
from vault.secrets s;

-- stores a new secret and returns its id; a name already taken raises unique_violation (23505)
create function vault.create_secret(
  new_secret text, new_name text default null, new_description text default '',
  new_key_id uuid default null  -- unused, as in the real 0.3.x
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  rec record;
begin
  insert into vault.secrets (secret, name, description)
  values (new_secret, new_name, new_description)
  returning * into rec;

  update vault.secrets s
     set secret = encode(vault._crypto_aead_det_encrypt(
           message := convert_to(rec.secret, 'utf8'), additional := convert_to(s.id::text, 'utf8'),
           key_id := 0, context := 'pgsodium'::bytea, nonce := rec.nonce), 'base64')
   where s.id = rec.id;

  return rec.id;
end
$$;

-- changes a secret's value, name or description in place; NULL keeps the old value, an unknown id
-- does nothing
create function vault.update_secret(
  secret_id uuid, new_secret text default null, new_name text default null,
  new_description text default null,
  new_key_id uuid default null  -- unused, as in the real 0.3.x
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  decrypted text;
begin
  select d.decrypted_secret into decrypted from vault.decrypted_secrets d where d.id = secret_id;

  update vault.secrets s
     set secret = encode(vault._crypto_aead_det_encrypt(
           message := convert_to(coalesce(new_secret, decrypted), 'utf8'),
           additional := convert_to(s.id::text, 'utf8'),
           key_id := 0, context := 'pgsodium'::bytea, nonce := s.nonce), 'base64'),
         name = coalesce(new_name, s.name),
         description = coalesce(new_description, s.description),
         updated_at = now()
   where s.id = secret_id;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Privileges, as Supabase's after-create script sets them
-- ---------------------------------------------------------------------------------------------------

revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;
revoke all on function vault._crypto_aead_det_encrypt(bytea, bytea, bigint, bytea, bytea) from public;
revoke all on function vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea) from public;

grant usage on schema vault to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid),
                          vault.update_secret(uuid, text, text, text, uuid),
                          vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea)
  to postgres with grant option;

grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
                          vault.update_secret(uuid, text, text, text, uuid),
                          vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea)
  to service_role;
