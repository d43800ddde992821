-- bubble-sync: the read-only queries of `python -m components preflight` (components/preflight/database.py).
--
-- Not applied to the database. Cut at its `-- name: <query_name>` lines by the same reader as
-- sql/operator_status.sql (components/operator/queries.py `split_queries`). Parameters are psycopg's
-- (`%(name)s`). Every query only reads the catalogs: privileges are asked with has_*_privilege, never tried.
-- Objects are looked up in pg_class and pg_proc by schema oid (to_regnamespace), not with to_regclass or
-- to_regprocedure, which raise "permission denied for schema" for a role without USAGE on it; the
-- has_*_privilege(oid, ...) forms then return null for a missing object, where the text forms would raise.
-- has_*_privilege counts privileges inherited through role membership, as a call by that role would.

-- name: session
-- session: this connection refuses to write (a preflight must not change anything, even by mistake) and gives
-- up on a statement after 15 s.
select set_config('default_transaction_read_only', 'on', false),
       set_config('statement_timeout', '15s', false);

-- name: server
-- server: the server's version, who we are and what we may do in this database.
select current_setting('server_version') as version,
       current_setting('server_version_num')::int as version_num,
       current_user as "user",
       current_database() as database,
       r.rolsuper as superuser,
       has_database_privilege(current_database(), 'CREATE') as can_create,
       -- supautils (Supabase) lets a non-superuser create the extensions listed here; null without supautils
       current_setting('supautils.privileged_extensions', true) as privileged_extensions
  from pg_roles r
 where r.rolname = current_user;

-- name: extension
-- extension: whether %(name)s is installed here (its version and schema), and whether it could be: available
-- on the server (its control file is there), and trusted (a role with CREATE on the database may create it)
-- or superuser-only.
select a.name is not null as available,
       a.default_version,
       e.extversion as installed_version,
       n.nspname as installed_schema,
       coalesce(v.trusted, false) as trusted
  from (select %(name)s::name as name) x
  left join pg_available_extensions a on a.name = x.name
  left join pg_available_extension_versions v on v.name = x.name and v.version = a.default_version
  left join pg_extension e on e.extname = x.name
  left join pg_namespace n on n.oid = e.extnamespace;

-- name: pg_cron_usable
-- pg_cron_usable: what the CronJob provider calls (cron.schedule and cron.unschedule by job name, cron.alter_job
-- to re-activate) and reads (cron.job); Supabase grants these to postgres. By name and arity, not by exact
-- signature: the job name is `name` in pg_cron 1.3 and `text` in later versions of schedule.
select has_schema_privilege(to_regnamespace('cron'), 'USAGE') as schema_usage,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('cron') and p.proname = 'schedule' and p.pronargs = 3
           and p.proargtypes[0] in ('text'::regtype::oid, 'name'::regtype::oid)) as schedule,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('cron') and p.proname = 'unschedule' and p.pronargs = 1
           and p.proargtypes[0] in ('text'::regtype::oid, 'name'::regtype::oid)) as unschedule,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('cron') and p.proname = 'alter_job') as alter_job,
       has_table_privilege(
         (select c.oid from pg_class c where c.relnamespace = to_regnamespace('cron') and c.relname = 'job'),
         'SELECT') as read_jobs;

-- name: cron_database
-- cron_database: the one database where pg_cron runs jobs (cron.database_name; null when pg_cron is not
-- loaded). Superuser-only to read unless the role has pg_read_all_settings: the caller handles the refusal.
select current_setting('cron.database_name', true) as cron_database;

-- name: pg_net_usable
-- pg_net_usable: what the invoke functions call (net.http_post, sql/functions/invoke.sql).
select has_schema_privilege(to_regnamespace('net'), 'USAGE') as schema_usage,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('net') and p.proname = 'http_post') as http_post;

-- name: vault
-- vault: what the VaultSecret provider and the invoke functions use: create_secret and update_secret (any
-- signature: they changed between Vault versions), reading vault.decrypted_secrets, and reading and deleting
-- vault.secrets (destroy removes the stack's secrets). One privilege per has_table_privilege call: a list
-- asks whether the role holds any of them.
with relations as (
  select c.relname, c.oid from pg_class c where c.relnamespace = to_regnamespace('vault')
)
select to_regnamespace('vault') is not null as has_schema,
       (select e.extversion from pg_extension e where e.extname = 'supabase_vault') as version,
       has_schema_privilege(to_regnamespace('vault'), 'USAGE') as schema_usage,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('vault') and p.proname = 'create_secret') as create_secret,
       (select bool_or(has_function_privilege(p.oid, 'EXECUTE'))
          from pg_proc p
         where p.pronamespace = to_regnamespace('vault') and p.proname = 'update_secret') as update_secret,
       has_table_privilege((select oid from relations where relname = 'decrypted_secrets'), 'SELECT')
         as read_decrypted,
       has_table_privilege((select oid from relations where relname = 'secrets'), 'SELECT') as read_secrets,
       has_table_privilege((select oid from relations where relname = 'secrets'), 'DELETE') as delete_secrets;
