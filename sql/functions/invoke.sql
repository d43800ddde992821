-- bubble-sync: waking the edge function (what the cron jobs and the dispatch trigger call).
--
-- The two public functions keep the seed's names, notices and behaviour, so `SELECT invoke_bubble_sync_processor();`
-- still works as the seed's manual test, and the cron commands stay `select public.invoke_bubble_sync_...()`.
-- What changed: a missing Vault secret is an error (it shows in cron.job_run_details as a failed run) instead
-- of a warning nobody sees, the timeout is explicit, and they return the pg_net request id (NULL when there
-- was nothing to do).
--
-- pg_net sends the request only when the calling transaction commits, and nobody reads its response: the
-- edge function writes every outcome into sync_queue itself.

-- The seed's setup script created the two public functions returning void. PostgreSQL cannot change a
-- function's return type in place (create or replace fails), so drop those seed versions, and only those,
-- first; nothing depends on them but the cron jobs' command text. Apply this file in one transaction.
do $seed_versions$
declare
  v_function regprocedure;
begin
  for v_function in
    select p.oid::regprocedure
      from pg_catalog.pg_proc p
     where p.oid in (to_regprocedure('public.invoke_bubble_sync_processor()'),
                     to_regprocedure('public.invoke_bubble_sync_retry()'))
       and p.prorettype <> 'bigint'::regtype
  loop
    execute format('drop function %s', v_function);
  end loop;
end
$seed_versions$;

-- ---------------------------------------------------------------------------------------------------------
-- The request
-- ---------------------------------------------------------------------------------------------------------

-- invoke_function: queues POST <supabase_url>/functions/v1/bubble_sync {"action": p_action} with the service
-- key from Vault as the bearer token, and returns pg_net's request id (actions: the two of the queue, and
-- `verify`, the scheduled verification's, sql/functions/verify.sql). Raises, naming the secret (never its
-- value), when supabase_url or service_role_key is missing or empty.
create or replace function bubble_sync.invoke_function(p_action text)
returns bigint
language plpgsql
set search_path = ''
as $fn$
declare
  v_url text;
  v_key text;
begin
  if p_action is null or p_action not in ('process_queue_data_api', 'retry_failed', 'verify') then
    raise exception 'bubble_sync.invoke_function: unknown action %', coalesce(quote_literal(p_action), 'NULL')
      using errcode = '22023';
  end if;

  select s.decrypted_secret into v_url from vault.decrypted_secrets s where s.name = 'supabase_url';
  if coalesce(v_url, '') = '' then
    raise exception 'bubble_sync: Vault secret "supabase_url" is missing or empty'
      using errcode = 'P0002',
            hint = 'Create it: select vault.create_secret(''https://<project-ref>.supabase.co'', ''supabase_url'');';
  end if;

  select s.decrypted_secret into v_key from vault.decrypted_secrets s where s.name = 'service_role_key';
  if coalesce(v_key, '') = '' then
    raise exception 'bubble_sync: Vault secret "service_role_key" is missing or empty'
      using errcode = 'P0002',
            hint = 'Create it: select vault.create_secret(''<service role or sb_secret_ key>'', ''service_role_key'');';
  end if;

  return net.http_post(
    url                  := rtrim(v_url, '/') || '/functions/v1/bubble_sync',
    body                 := jsonb_build_object('action', p_action),
    headers              := jsonb_build_object('Content-Type', 'application/json',
                                               'Authorization', 'Bearer ' || v_key),
    timeout_milliseconds := {{ http_timeout_ms }}
  );
end;
$fn$;

revoke all on function bubble_sync.invoke_function(text) from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Parallel runs: a backlog shared by as many runs as Bubble's rate needs (table bubble_sync.worker_runs)
-- ---------------------------------------------------------------------------------------------------------
--
-- A run keeps at most a batch of requests in flight. When Bubble's rate limit needs more than that, the run
-- asks fan_out for the runs it wants in all; fan_out counts the runs going and invokes only the missing ones.
-- A run registers with begin_run before its first claim and leaves with fan_out(p_ending_run) after its last,
-- asking for a successor if it stopped at its row or time budget with rows still due.

-- begin_run: registers a run of p_action for at most p_seconds (past that it no longer counts, should it die
-- without ending), taking the place of one invoked by fan_out that has not begun; returns the run's id.
create or replace function bubble_sync.begin_run(
  p_action  text,
  p_seconds integer,
  p_now     timestamptz default null
)
returns uuid
language plpgsql
set search_path = ''
as $fn$
declare
  v_now timestamptz := coalesce(p_now, clock_timestamp());
  v_run uuid;
begin
  if p_action is null or p_action not in ('process_queue_data_api', 'retry_failed') then
    raise exception 'bubble_sync.begin_run: unknown action %', coalesce(quote_literal(p_action), 'NULL')
      using errcode = '22023';
  end if;
  if p_seconds is null or p_seconds < 1 then
    raise exception 'bubble_sync.begin_run: p_seconds must be positive, got %', p_seconds using errcode = '22023';
  end if;

  delete from bubble_sync.worker_runs r
   where r.run_id = (select w.run_id
                       from bubble_sync.worker_runs w
                      where w.action = p_action and w.started_at is null
                      order by w.expires_at
                      limit 1
                        for update skip locked);

  insert into bubble_sync.worker_runs (action, started_at, expires_at)
  values (p_action, v_now, v_now + make_interval(secs => p_seconds))
  returning run_id into v_run;
  return v_run;
end;
$fn$;

revoke all on function bubble_sync.begin_run(text, integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.begin_run(text, integer, timestamptz) to service_role;

-- fan_out: ends run p_ending_run if given, then invokes runs of p_action until p_wanted are going (begun, or
-- invoked less than p_start_seconds ago), at most one per p_rows_per_run rows due; returns how many it
-- invoked. Callers take turns (a transaction-level advisory lock), so two runs ending at once cannot both
-- invoke the one run missing. Raises like invoke_function when a Vault secret is missing.
create or replace function bubble_sync.fan_out(
  p_action        text,
  p_wanted        integer,
  p_rows_per_run  integer,
  p_ending_run    uuid default null,
  p_start_seconds integer default 30,
  p_now           timestamptz default null
)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_now     timestamptz := coalesce(p_now, clock_timestamp());
  v_going   integer;
  v_due     bigint;
  v_missing integer;
begin
  if p_action is null or p_action not in ('process_queue_data_api', 'retry_failed') then
    raise exception 'bubble_sync.fan_out: unknown action %', coalesce(quote_literal(p_action), 'NULL')
      using errcode = '22023';
  end if;
  if p_wanted is null or p_wanted < 0 or p_wanted > 100 then
    raise exception 'bubble_sync.fan_out: p_wanted must be between 0 and 100, got %', p_wanted
      using errcode = '22023';
  end if;
  if p_rows_per_run is null or p_rows_per_run < 1 then
    raise exception 'bubble_sync.fan_out: p_rows_per_run must be positive, got %', p_rows_per_run
      using errcode = '22023';
  end if;

  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bubble_sync.fan_out'));
  delete from bubble_sync.worker_runs r where r.run_id = p_ending_run or r.expires_at <= v_now;

  select count(*) into v_going from bubble_sync.worker_runs r where r.action = p_action;
  if v_going >= p_wanted then
    return 0;
  end if;

  -- Only as many rows as the missing runs would take are counted: the backlog may be large.
  if p_action = 'process_queue_data_api' then
    select count(*) into v_due
      from (select 1
              from public.sync_queue q
             where q.status = 'pending'  -- sync_queue_pending_idx (see bubble_sync.is_due)
               and bubble_sync.is_due('process_queue_data_api', q.status, q.retry_count, q.max_retries,
                                      q.next_retry_at, v_now)
             limit (p_wanted - v_going)::bigint * p_rows_per_run) due;
  else
    select count(*) into v_due
      from (select 1
              from public.sync_queue q
             where q.status = 'failed' and q.retry_count < q.max_retries  -- sync_queue_retry_due_idx
               and bubble_sync.is_due('retry_failed', q.status, q.retry_count, q.max_retries, q.next_retry_at,
                                      v_now)
             limit (p_wanted - v_going)::bigint * p_rows_per_run) due;
  end if;

  v_missing := least(p_wanted - v_going, ceil(v_due::numeric / p_rows_per_run)::integer);
  for i in 1 .. v_missing loop
    perform bubble_sync.invoke_function(p_action);
    insert into bubble_sync.worker_runs (action, started_at, expires_at)
    values (p_action, null, v_now + make_interval(secs => p_start_seconds));
  end loop;
  return v_missing;
end;
$fn$;

revoke all on function bubble_sync.fan_out(text, integer, integer, uuid, integer, timestamptz)
  from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- The seed's two functions (called by the cron jobs bubble-sync-processor and bubble-sync-retry)
-- ---------------------------------------------------------------------------------------------------------

-- invoke_if_due: what the seed's two functions do, once: counts the rows p_action would take now and, if
-- there are any, asks the edge function to run p_action; returns pg_net's request id, or NULL (with a notice
-- saying so) when there is nothing to do. process_queue_data_api takes the pending rows that are due and the
-- processing rows whose lease ran out (claim reclaims them); retry_failed the failed rows due for a retry
-- (bubble_sync.is_due: the seed's condition). The notices are the seed's, each function's own words.
create or replace function bubble_sync.invoke_if_due(p_action text)
returns bigint
language plpgsql
set search_path = ''
as $fn$
declare
  v_now        timestamptz := clock_timestamp();
  v_eligible   bigint;
  v_nothing    text;
  v_found      text;
  v_sent       text;
  v_request_id bigint;
begin
  if p_action = 'process_queue_data_api' then
    v_nothing := '[bubble_sync_processor] No pending items in queue';
    v_found   := '[bubble_sync_processor] Found %s pending items, invoking Edge Function';
    v_sent    := '[bubble_sync_processor] Edge Function invoked, request ID: %s';
    select count(*) into v_eligible
      from public.sync_queue q
     where (q.status = 'pending'  -- sync_queue_pending_idx (see bubble_sync.is_due)
            and bubble_sync.is_due('process_queue_data_api', q.status, q.retry_count, q.max_retries,
                                   q.next_retry_at, v_now))
        or (q.status = 'processing' and q.lease_expires_at <= v_now);
  elsif p_action = 'retry_failed' then
    v_nothing := '[bubble_sync_retry] No failed items to retry';
    v_found   := '[bubble_sync_retry] Found %s failed items to retry';
    v_sent    := '[bubble_sync_retry] Retry request sent, ID: %s';
    select count(*) into v_eligible
      from public.sync_queue q
     where q.status = 'failed' and q.retry_count < q.max_retries  -- sync_queue_retry_due_idx (see is_due)
       and bubble_sync.is_due('retry_failed', q.status, q.retry_count, q.max_retries, q.next_retry_at, v_now);
  else
    raise exception 'bubble_sync.invoke_if_due: unknown action %', coalesce(quote_literal(p_action), 'NULL')
      using errcode = '22023';
  end if;

  if v_eligible = 0 then
    raise notice '%', v_nothing;
    return null;
  end if;

  raise notice '%', format(v_found, v_eligible);
  v_request_id := bubble_sync.invoke_function(p_action);
  raise notice '%', format(v_sent, v_request_id);
  return v_request_id;
end;
$fn$;

revoke all on function bubble_sync.invoke_if_due(text) from public, anon, authenticated, service_role;

-- invoke_bubble_sync_processor: if any row is claimable by process_queue_data_api (pending and due, or a
-- processing row whose lease ran out), asks the edge function to process the queue; otherwise says so and
-- returns NULL (bubble_sync.invoke_if_due). SECURITY DEFINER (owned by postgres) so it can read Vault whoever
-- calls it; only postgres may.
create or replace function public.invoke_bubble_sync_processor()
returns bigint
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  return bubble_sync.invoke_if_due('process_queue_data_api');
end;
$fn$;

revoke all on function public.invoke_bubble_sync_processor() from public, anon, authenticated, service_role;

-- invoke_bubble_sync_retry: if any failed row is due for a retry (bubble_sync.is_due: the seed's condition),
-- asks the edge function to retry them; otherwise says so and returns NULL (bubble_sync.invoke_if_due).
-- SECURITY DEFINER, like the processor's.
create or replace function public.invoke_bubble_sync_retry()
returns bigint
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  return bubble_sync.invoke_if_due('retry_failed');
end;
$fn$;

revoke all on function public.invoke_bubble_sync_retry() from public, anon, authenticated, service_role;
