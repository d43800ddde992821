-- bubble-sync: stores one Vault secret in the setup script (python -m components render-sql), by name:
-- updated in place when the name exists (Vault's names are unique), created otherwise. A stack deployed with
-- Pulumi does the same through the VaultSecret provider instead.
--
-- The value never appears in the script: it comes from the psql variable {{ psql_variable }} (its name, as
-- text), which the script has copied into the transaction-local setting bubble_sync.setup_value, because
-- psql does not interpolate variables inside a dollar-quoted DO body. {{ secret_name }} and
-- {{ secret_description }} are the secret's name and description.

do $vault$
declare
  v_id    uuid;
  v_value text := current_setting('bubble_sync.setup_value');
begin
  if coalesce(v_value, '') = '' then
    raise exception 'bubble-sync.sql: the psql variable % is empty', {{ psql_variable }};
  end if;
  select s.id into v_id from vault.secrets s where s.name = {{ secret_name }};
  if v_id is null then
    perform vault.create_secret(v_value, {{ secret_name }}, {{ secret_description }});
  else
    perform vault.update_secret(v_id, v_value, {{ secret_name }}, {{ secret_description }});
  end if;
end
$vault$;
