-- pg_cron as Supabase enables it (devstack; bootstrap superuser, `postgres` database only).
-- On Supabase, supautils lets `postgres` run `create extension pg_cron`; PostgreSQL alone does not,
-- so the devstack enables it up front and the stack's own `create extension if not exists pg_cron`
-- is a no-op here. The grants are Supabase's after-create script: `postgres` may use the cron
-- functions and read `cron.job`, but may not write `cron.job` directly.
create extension if not exists pg_cron with schema pg_catalog;

grant usage on schema cron to postgres with grant option;
grant all on all functions in schema cron to postgres with grant option;
grant all privileges on all tables in schema cron to postgres with grant option;
grant all privileges on all sequences in schema cron to postgres with grant option;
alter default privileges in schema cron grant all on tables to postgres with grant option;
alter default privileges in schema cron grant all on functions to postgres with grant option;
alter default privileges in schema cron grant all on sequences to postgres with grant option;
revoke all on table cron.job from postgres;
grant select on table cron.job to postgres with grant option;
