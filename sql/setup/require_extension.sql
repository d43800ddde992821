-- bubble-sync: the check that stands in for an extension the stack does not manage (manageExtensions false).
--
-- The extension was enabled in the Supabase dashboard, so the stack neither creates nor drops it: it only
-- refuses to go on while the extension is missing, naming it and what to do. {{ extension }} is the
-- extension's name (pg_cron, pg_net), filled in per extension by components/sql_plan.py.

do $require$
begin
  if not exists (select from pg_catalog.pg_extension e where e.extname = {{ extension }}) then
    raise exception 'bubble-sync: extension % is not enabled in this database', {{ extension }}
      using hint = 'Enable it in the Supabase dashboard (Database > Extensions), '
                   'or set the stack config manageExtensions to true.';
  end if;
end
$require$;
