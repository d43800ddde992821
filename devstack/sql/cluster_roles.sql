-- Supabase's roles, as a hosted project has them (devstack; run once per cluster as the bootstrap
-- superuser `supabase_admin`). `postgres` is NOT a superuser on Supabase: it owns the database and
-- can do most things, but privileged extensions and some catalogs are out of its reach. Keeping that
-- true locally is what makes permission mistakes show up in our tests instead of in production.

-- ---------------------------------------------------------------------------------------------------
-- API roles (PostgREST switches into these; they never log in themselves)
-- ---------------------------------------------------------------------------------------------------
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;

-- ---------------------------------------------------------------------------------------------------
-- Login roles
-- ---------------------------------------------------------------------------------------------------
-- :'postgres_password' and :'authenticator_password' are psql variables set by the devstack.
create role postgres login createrole createdb replication bypassrls password :'postgres_password';
create role authenticator login noinherit password :'authenticator_password';

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
grant pg_signal_backend, pg_monitor to postgres;
