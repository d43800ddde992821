-- bubble-sync: keeping the database from growing forever.
--
-- pg_cron never deletes cron.job_run_details (the minute and five-minute jobs add about 1,700 rows a day), and
-- completed queue rows are only history once synced. The maintenance job bubble_sync.purge runs purge daily
-- (its schedule and command: CRON_JOBS in components/sql_templates.py).

-- purge: deletes the run history of our own cron jobs (bubble-sync-processor, bubble-sync-retry, and the
-- maintenance job bubble_sync.purge itself) that finished before p_now - p_run_details_older_than, and the
-- completed queue rows older than p_now - p_completed_older_than (by completed_at; by created_at for rows
-- completed before the table was adopted). Other jobs' history, failed rows and anything in flight are left
-- alone. Returns both counts. Works without pg_cron too (then run_details_deleted is 0).
create or replace function bubble_sync.purge(
  p_run_details_older_than interval,
  p_completed_older_than   interval,
  p_now                    timestamptz default null
)
returns table (run_details_deleted bigint, completed_rows_deleted bigint)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now timestamptz := coalesce(p_now, clock_timestamp());
begin
  if p_run_details_older_than is null or p_run_details_older_than < interval '0'
     or p_completed_older_than is null or p_completed_older_than < interval '0' then
    raise exception 'bubble_sync.purge: horizons must be given and not negative (got %, %)',
      p_run_details_older_than, p_completed_older_than using errcode = '22023';
  end if;

  run_details_deleted := 0;
  if to_regclass('cron.job_run_details') is not null then
    delete from cron.job_run_details d
     using cron.job j
     where d.jobid = j.jobid
       and (j.jobname like 'bubble-sync-%' or j.jobname = 'bubble_sync.purge')
       and d.end_time < v_now - p_run_details_older_than;
    get diagnostics run_details_deleted = row_count;
  end if;

  delete from public.sync_queue q
   where q.status = 'completed'
     and (q.completed_at < v_now - p_completed_older_than
          or (q.completed_at is null and q.created_at < v_now - p_completed_older_than));
  get diagnostics completed_rows_deleted = row_count;

  return next;
end;
$fn$;

revoke all on function bubble_sync.purge(interval, interval, timestamptz)
  from public, anon, authenticated, service_role;
