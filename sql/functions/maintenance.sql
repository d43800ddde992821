-- bubble-sync: the operator's side of the queue: keeping the database from growing forever, and putting rows
-- that failed for good back once their cause is fixed.
--
-- pg_cron never deletes cron.job_run_details (the minute and five-minute jobs add about 1,700 rows a day), and
-- completed queue rows are only history once synced. The maintenance job bubble_sync.purge runs purge daily
-- (its schedule and command: CRON_JOBS in components/sql_templates.py). `python -m components requeue` calls
-- bubble_sync.requeue.

-- is_our_job: whether a pg_cron job is one of ours, by name: bubble-sync-processor, bubble-sync-retry (the
-- seed's names, bubble-sync-*), the maintenance job bubble_sync.purge, the scheduled verification
-- bubble_sync.verify and the alerts' evaluation bubble_sync.alerts.
create or replace function bubble_sync.is_our_job(p_jobname text)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select p_jobname like 'bubble-sync-%'
      or p_jobname in ('bubble_sync.purge', 'bubble_sync.verify', 'bubble_sync.alerts')
$fn$;

revoke all on function bubble_sync.is_our_job(text) from public, anon, authenticated, service_role;

-- purge: deletes the run history of our own cron jobs (bubble_sync.is_our_job) that finished before
-- p_now - p_run_details_older_than, and the completed queue rows older than p_now - p_completed_older_than (by
-- completed_at; by created_at for rows completed before the table was adopted). Other jobs' history, failed rows and anything in flight are left
-- alone. Returns both counts. Works without pg_cron too (then run_details_deleted is 0). The scheduled
-- verifications' results (bubble_sync.verifications) are kept as long as the cron runs', and each mapping's
-- last one whatever its age (health() shows it).
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
       and bubble_sync.is_our_job(j.jobname)
       and d.end_time < v_now - p_run_details_older_than;
    get diagnostics run_details_deleted = row_count;
  end if;

  delete from bubble_sync.verifications v
   where v.finished_at < v_now - p_run_details_older_than
     and exists (select 1
                   from bubble_sync.verifications n
                  where n.mapping = v.mapping and n.finished_at > v.finished_at);

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

-- requeue: puts rows that failed for good (status failed, retry_count >= max_retries) back on the retry path:
-- retry_count 0, next_retry_at p_now, failing_since cleared (the retry horizon starts again), so the next
-- bubble-sync-retry run claims them. They stay `failed`, the seed's state. The last error stays readable behind the prefix 'requeued by operator; last error: ' (not
-- stacked when a row is requeued again); a new failure replaces it, complete() keeps it. Which rows: those
-- whose id (as text: an adopted table's id may be a uuid, a bigint or missing) is in p_ids, or whose
-- error_message matches p_error_like (ILIKE), or every such row when both are null; giving both is an error.
-- Returns each requeued row with its retries used and its last error, oldest failure first.
create or replace function bubble_sync.requeue(
  p_ids        text[] default null,
  p_error_like text default null,
  p_now        timestamptz default null
)
returns table (id text, table_name text, record_id text, old_retry_count bigint, old_error text)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now    timestamptz := coalesce(p_now, clock_timestamp());
  v_prefix constant text := 'requeued by operator; last error: ';
begin
  if p_ids is not null and p_error_like is not null then
    raise exception 'bubble_sync.requeue: give p_ids or p_error_like, not both' using errcode = '22023';
  end if;

  return query
    with picked as (
      select q.ctid as row_ctid, q.retry_count as old_retry_count, q.error_message as old_error
        from public.sync_queue q
       where q.status = 'failed'
         and q.retry_count >= q.max_retries
         and (p_ids is null or (to_jsonb(q) ->> 'id') = any (p_ids))
         and (p_error_like is null or q.error_message ilike p_error_like)
       order by q.updated_at
         for update
    )
    update public.sync_queue q
       set retry_count      = 0,
           next_retry_at    = v_now,
           failing_since    = null,
           error_message    = v_prefix || regexp_replace(coalesce(p.old_error, ''), '^(' || v_prefix || ')+', ''),
           lease_token      = null,
           lease_expires_at = null,
           updated_at       = v_now
      from picked p
     where q.ctid = p.row_ctid
    returning to_jsonb(q) ->> 'id', q.table_name::text, q.record_id::text, p.old_retry_count::bigint,
              p.old_error::text;
end;
$fn$;

revoke all on function bubble_sync.requeue(text[], text, timestamptz)
  from public, anon, authenticated, service_role;
