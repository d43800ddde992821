-- bubble-sync: the cron jobs, for the generated setup script (PGCRON_COMPLETE_SETUP.sql).
--
-- The Pulumi program schedules these through its cron-job provider instead; both use the same names, schedules
-- and commands (components/sql_templates.py, CRON_JOBS). Run in the database pg_cron lives in (`postgres`).
-- cron.schedule upserts by name but leaves a deactivated job inactive, hence the alter_job afterwards.
--
-- The maintenance job is named bubble_sync.purge, not bubble-sync-..., so that the seed's verification query
-- (`jobname LIKE 'bubble-sync%'`) still lists exactly the seed's two jobs.

-- every minute: wake the edge function if rows are waiting (the safety net under immediate dispatch)
select cron.schedule('bubble-sync-processor', {{ processor_schedule }},
                     'select public.invoke_bubble_sync_processor()');

-- every five minutes: wake the edge function if failed rows are due for a retry
select cron.schedule('bubble-sync-retry', {{ retry_schedule }},
                     'select public.invoke_bubble_sync_retry()');

-- daily: forget our old cron run history and old completed queue rows
select cron.schedule('bubble_sync.purge', {{ purge_schedule }},
                     $cmd$select bubble_sync.purge({{ run_details_retention }}, {{ completed_retention }})$cmd$);

-- re-activate any of them someone switched off
select cron.alter_job(j.jobid, active := true)
  from cron.job j
 where j.jobname in ('bubble-sync-processor', 'bubble-sync-retry', 'bubble_sync.purge')
   and not j.active;
