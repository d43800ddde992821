-- bubble-sync: the read-only queries of `python -m components status` (components/operator/status.py).
--
-- Not applied to the database. components/operator/queries.py cuts this file at its `-- name: <query_name>`
-- lines; status runs the queries by name, in this order, in one read-only transaction, after checking which
-- of the objects they read exist. The two mapping queries are read by components/operator/mappings.py, for
-- every operator command that follows the deployed mappings (status, backfill, preflight). Parameters are psycopg's (`%(now)s`, or `%s` taking a tuple): in a query, a
-- literal percent sign is written `%%`. The comment lines right under a name and the closing `;` are not sent.

-- name: now
-- now: the one time every other query measures against (the transaction's clock_timestamp()).
select clock_timestamp() as now;

-- name: present
-- present: which of the objects status reads exist (true/false each): bubble_sync.health, public.sync_queue,
-- cron.job (pg_cron), bubble_sync.is_our_job, net._http_response (pg_net), bubble_sync.alert_state (the alerts)
-- and vault.secrets.
select to_regprocedure('bubble_sync.health(timestamptz, integer)') is not null as health,
       to_regclass('public.sync_queue') is not null as queue,
       to_regclass('cron.job') is not null as cron,
       to_regprocedure('bubble_sync.is_our_job(text)') is not null as our_jobs,
       to_regclass('net._http_response') is not null as net,
       to_regclass('bubble_sync.alert_state') is not null as alerts,
       to_regclass('vault.secrets') is not null as vault;

-- name: health
-- health: the one row of bubble_sync.health() (sql/monitoring.sql) at the given time, without recent lists.
select * from bubble_sync.health(%s, 0);

-- name: alert_state
-- alert_state: the alerts' memory (sql/alerts.sql): the causes found by the last evaluation and since when they
-- stand, when it ran, what the last message announced and when, and that message's HTTP status from pg_net
-- (null: not sent yet, or its response expired).
select s.causes, s.changed_at, s.evaluated_at, s.announced, s.announced_at, s.request_id,
       (select r.status_code from net._http_response r where r.id = s.request_id) as announced_status
  from bubble_sync.alert_state s
 where s.id = 1;

-- name: alert_webhook
-- alert_webhook: whether Vault holds the alerts' webhook (alert_webhook_url): its name only, never its value.
select exists (select 1 from vault.secrets v where v.name = 'alert_webhook_url') as configured;

-- name: failing
-- failing: the failed rows of public.sync_queue grouped by error message, permanently failed groups first:
-- rows, permanent (of those, at or over max_retries), last_failed_at, and the newest %(ids)s records
-- (table_name:record_id) and ids; at most %(groups)s groups. to_jsonb(q) ->> 'id': an adopted sync_queue may
-- have a uuid id, a bigint id, or none.
select coalesce(q.error_message, '(no error message)') as error_message,
       count(*) as rows,
       count(*) filter (where q.retry_count >= q.max_retries) as permanent,
       max(q.updated_at) as last_failed_at,
       (array_agg(q.table_name || ':' || q.record_id order by q.updated_at desc nulls last))[1:%(ids)s]
         as records,
       (array_agg(to_jsonb(q) ->> 'id' order by q.updated_at desc nulls last))[1:%(ids)s] as ids
  from public.sync_queue q
 where q.status = 'failed'
 group by 1
 order by count(*) filter (where q.retry_count >= q.max_retries) desc, count(*) desc, 1
 limit %(groups)s;

-- name: cron_jobs
-- cron_jobs: our pg_cron jobs (bubble_sync.is_our_job) by name, each with its last run (last_status,
-- last_start, last_end, last_message), its runs and failed runs in the 24 hours before %(now)s, and its last
-- failed run (last_failure_at, last_failure_message).
select j.jobid, j.jobname, j.schedule, j.active, j.command,
       l.status as last_status, l.start_time as last_start, l.end_time as last_end,
       l.return_message as last_message,
       coalesce(s.runs_24h, 0) as runs_24h, coalesce(s.failed_24h, 0) as failed_24h,
       f.start_time as last_failure_at, f.return_message as last_failure_message
  from cron.job j
  left join lateral (select d.status, d.start_time, d.end_time, d.return_message
                       from cron.job_run_details d
                      where d.jobid = j.jobid
                      order by d.start_time desc nulls last limit 1) l on true
  left join lateral (select count(*) as runs_24h,
                            count(*) filter (where d.status = 'failed') as failed_24h
                       from cron.job_run_details d
                      where d.jobid = j.jobid and d.start_time >= %(now)s - interval '24 hours') s on true
  left join lateral (select d.start_time, d.return_message
                       from cron.job_run_details d
                      where d.jobid = j.jobid and d.status = 'failed'
                      order by d.start_time desc nulls last limit 1) f on true
 where bubble_sync.is_our_job(j.jobname)
 order by j.jobname;

-- name: pg_net_errors
-- pg_net_errors: the newest %(limit)s failed pg_net requests (HTTP >= 400, an error message or a timeout) of
-- the %(minutes)s minutes before %(now)s, with the first 200 characters of their response.
select r.id, r.status_code, r.timed_out, r.error_msg, r.created, left(r.content, 200) as content
  from net._http_response r
 where (r.status_code >= 400 or r.error_msg is not null or r.timed_out)
   and r.created >= %(now)s - make_interval(mins => %(minutes)s)
 order by r.created desc
 limit %(limit)s;

-- name: pg_net_error_count
-- pg_net_error_count: how many requests pg_net_errors would list without its limit (one row, column n).
select count(*) as n from net._http_response r
 where (r.status_code >= 400 or r.error_msg is not null or r.timed_out)
   and r.created >= %(now)s - make_interval(mins => %(minutes)s);

-- name: queue_by_table
-- queue_by_table: public.sync_queue's rows by table_name (status joins them to the mappings, whose rows carry
-- their mapping's table_name): pending, processing, failed and retrying (retry_count < max_retries), failed
-- for good, completed in the 24 hours before %(now)s, the oldest pending change's age (backfilled rows wait
-- behind every change by design, as in bubble_sync.health), and the latency of the changes completed in those
-- 24 hours, queued to completed, median and 95th percentile in seconds (backfilled rows left out likewise).
select q.table_name,
       count(*) filter (where q.status = 'pending') as pending,
       count(*) filter (where q.status = 'processing') as processing,
       count(*) filter (where q.status = 'failed' and q.retry_count < q.max_retries) as retrying,
       count(*) filter (where q.status = 'failed' and not (q.retry_count < q.max_retries)) as failed_for_good,
       count(*) filter (where q.status = 'completed'
                          and coalesce(q.completed_at, q.created_at) >= %(now)s - interval '24 hours')
         as completed_24h,
       %(now)s - min(q.created_at) filter (where q.status = 'pending' and q.operation is distinct from 'BACKFILL')
         as oldest_pending_age,
       percentile_cont(0.5) within group (order by extract(epoch from q.completed_at - q.created_at))
         filter (where q.status = 'completed' and q.completed_at >= %(now)s - interval '24 hours'
                   and q.operation is distinct from 'BACKFILL') as latency_p50,
       percentile_cont(0.95) within group (order by extract(epoch from q.completed_at - q.created_at))
         filter (where q.status = 'completed' and q.completed_at >= %(now)s - interval '24 hours'
                   and q.operation is distinct from 'BACKFILL') as latency_p95
  from public.sync_queue q
 group by q.table_name
 order by q.table_name;

-- name: mappings_present
-- mappings_present: whether this database has bubble_sync.mappings (a stack deployed before mappings has not).
select to_regclass('bubble_sync.mappings') is not null as present;

-- name: deployed_mappings
-- deployed_mappings: the stack's mappings, one row each (sql/mapping_record.sql), by name.
select m.name, m.table_name, m.definition
  from bubble_sync.mappings m
 order by m.name;
