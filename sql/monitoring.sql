-- bubble-sync: monitoring.
--
-- The seed's daily health check, extended with what tells you why something is stuck:
--
--     select * from bubble_sync.health();
--
-- active_jobs, pending_items, failed_items and completed_today answer the seed's check (completed_today is
-- counted by completion time). The seed's own queries keep working unchanged against public.sync_queue and
-- cron.job as well. Only postgres (the owner) may call it; nothing here is reachable through the Data API.

-- health() gained columns (the last verifications): PostgreSQL cannot change a function's result columns in
-- place (create or replace fails), so an earlier version, and only that, is dropped first; nothing depends on
-- it. Apply this file in one transaction.
do $earlier_health$
declare
  v_function regprocedure := to_regprocedure('bubble_sync.health(timestamptz, integer)');
begin
  if v_function is not null
     and pg_catalog.pg_get_function_result(v_function) not like '%last_verifications%' then
    execute format('drop function %s', v_function);
  end if;
end
$earlier_health$;

-- health: one row describing the pipeline at p_now (default: the wall clock).
--   active_jobs               active cron jobs named bubble-sync%  (the seed's check; 2 when all is well)
--   pending_items             rows waiting to be processed (the seed's check), including rows held back by a 429
--   processing_items          rows leased to a worker right now
--   expired_leases            of those, leases that ran out (the worker died; the next claim takes them back)
--   failed_items              all failed rows (the seed's check)
--   retryable_items           failed rows still under their retry budget
--   permanently_failed_items  failed rows at or over max_retries: these need a person
--   completed_today           rows completed in the last 24 hours
--   oldest_pending_age        how long the oldest pending change has waited (NULL when none); backfilled rows
--                             are left out: they wait behind every change by design (bubble_sync.claim)
--   failed_job_runs_24h       failed runs of our cron jobs in the last 24 hours (NULL without pg_cron)
--   recent_errors             the p_recent most recently failed rows: table, record, attempts, message, when
--   recent_job_failures       the p_recent most recent failed runs of our cron jobs: job, start, message
--   bubble_unavailable_since  while Bubble's circuit breaker is open: the first of the failures that opened it
--                             (NULL while Bubble answers; see sql/functions/gate.sql)
--   bubble_last_error         while it is open: the last transient failure Bubble gave
--   verification_differences  the differences the last verification of each deployed mapping found (missing,
--                             stale, orphaned, duplicated added up; NULL before any verification ran): more
--                             than 0 needs `python -m components reconcile --mapping NAME --repair`
--   last_verifications        per deployed mapping, its last verification (bubble_sync.verifications): mapping,
--                             started_at, finished_at, checked, missing, stale, orphaned, duplicated,
--                             examples (record ids, stale field names) and error
create or replace function bubble_sync.health(p_now timestamptz default null, p_recent integer default 5)
returns table (
  active_jobs              bigint,
  pending_items            bigint,
  processing_items         bigint,
  expired_leases           bigint,
  failed_items             bigint,
  retryable_items          bigint,
  permanently_failed_items bigint,
  completed_today          bigint,
  oldest_pending_age       interval,
  failed_job_runs_24h      bigint,
  recent_errors            jsonb,
  recent_job_failures      jsonb,
  bubble_unavailable_since timestamptz,
  bubble_last_error        text,
  verification_differences bigint,
  last_verifications       jsonb
)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now timestamptz := coalesce(p_now, clock_timestamp());
begin
  select count(*) filter (where q.status = 'pending'),
         count(*) filter (where q.status = 'processing'),
         count(*) filter (where q.status = 'processing' and q.lease_expires_at <= v_now),
         count(*) filter (where q.status = 'failed'),
         count(*) filter (where q.status = 'failed' and q.retry_count < q.max_retries),
         count(*) filter (where q.status = 'failed' and not (q.retry_count < q.max_retries)),
         count(*) filter (where q.status = 'completed'
                            and coalesce(q.completed_at, q.created_at) >= v_now - interval '24 hours'),
         v_now - min(q.created_at) filter (where q.status = 'pending'
                                             and q.operation is distinct from 'BACKFILL')
    into pending_items, processing_items, expired_leases, failed_items, retryable_items,
         permanently_failed_items, completed_today, oldest_pending_age
    from public.sync_queue q;

  select coalesce(jsonb_agg(jsonb_build_object(
           'table_name', e.table_name, 'record_id', e.record_id, 'retry_count', e.retry_count,
           'max_retries', e.max_retries, 'error_message', e.error_message, 'failed_at', e.updated_at)
           order by e.updated_at desc), '[]'::jsonb)
    into recent_errors
    from (select q.table_name, q.record_id, q.retry_count, q.max_retries, q.error_message, q.updated_at
            from public.sync_queue q
           where q.status = 'failed'
           order by q.updated_at desc nulls last
           limit greatest(p_recent, 0)) e;

  select g.failing_since, g.last_error
    into bubble_unavailable_since, bubble_last_error
    from bubble_sync.bubble_gate g
   where g.id = 1
     and g.opened_at is not null;

  select sum(v.missing + v.stale + v.orphaned + v.duplicated) filter (where v.error is null),
         coalesce(jsonb_agg(jsonb_build_object(
           'mapping', v.mapping, 'started_at', v.started_at, 'finished_at', v.finished_at, 'checked', v.checked,
           'missing', v.missing, 'stale', v.stale, 'orphaned', v.orphaned, 'duplicated', v.duplicated,
           'examples', v.examples, 'error', v.error) order by v.mapping), '[]'::jsonb)
    into verification_differences, last_verifications
    from bubble_sync.mappings m
    join lateral (select *
                    from bubble_sync.verifications r
                   where r.mapping = m.name and r.finished_at <= v_now
                   order by r.finished_at desc
                   limit 1) v on true;

  if to_regclass('cron.job') is not null then
    select count(*) into active_jobs
      from cron.job j
     where j.jobname like 'bubble-sync%' and j.active;  -- the seed's own count: its two jobs, not purge

    select count(*) into failed_job_runs_24h
      from cron.job_run_details d
      join cron.job j on j.jobid = d.jobid
     where bubble_sync.is_our_job(j.jobname)
       and d.status = 'failed'
       and d.start_time >= v_now - interval '24 hours';

    select coalesce(jsonb_agg(jsonb_build_object(
             'job', f.jobname, 'started_at', f.start_time, 'message', f.return_message)
             order by f.start_time desc), '[]'::jsonb)
      into recent_job_failures
      from (select j.jobname, d.start_time, d.return_message
              from cron.job_run_details d
              join cron.job j on j.jobid = d.jobid
             where bubble_sync.is_our_job(j.jobname)
               and d.status = 'failed'
             order by d.start_time desc nulls last
             limit greatest(p_recent, 0)) f;
  end if;

  return next;
end;
$fn$;

revoke all on function bubble_sync.health(timestamptz, integer)
  from public, anon, authenticated, service_role;
