-- What every Supabase database looks like before the user adds anything (devstack; run as the
-- bootstrap superuser in each database the devstack creates). Default privileges are per database,
-- so this runs in `postgres` and in the test template alike.

alter database :"dbname" owner to postgres;

-- ---------------------------------------------------------------------------------------------------
-- Schemas
-- ---------------------------------------------------------------------------------------------------
-- PostgreSQL 15 gives `public` to pg_database_owner (= postgres here), as on Supabase.
grant usage on schema public to anon, authenticated, service_role;

create schema if not exists extensions authorization postgres;
grant usage on schema extensions to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Default privileges: everything new in `public` is granted to the API roles. This is the reason
-- our queue needs RLS and explicit REVOKEs: on Supabase, forgetting them exposes the object.
-- ---------------------------------------------------------------------------------------------------
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Extensions a new project has enabled
-- ---------------------------------------------------------------------------------------------------
create extension if not exists pgcrypto with schema extensions;
-- Vault is on by default on hosted projects. Here it is the devstack's double (see
-- devstack/extensions/supabase_vault--0.3.1.sql).
create extension if not exists supabase_vault;

-- ---------------------------------------------------------------------------------------------------
-- pg_net, as a project enables it: `create extension pg_net with schema extensions` run by `postgres`.
-- Here it is the devstack's double (devstack/extensions/pg_net--0.20.4.sql), a trusted extension so
-- that `postgres` may create it as supautils allows on Supabase; running it as `postgres` checks that.
-- Requests are only sent while devstack/pgnet_worker/ serves the database.
-- ---------------------------------------------------------------------------------------------------
set role postgres;
create extension if not exists pg_net with schema extensions;
reset role;
