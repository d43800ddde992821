-- bubble-sync: claiming rows and reporting on them (the worker's side of the queue).
--
-- Why one file: is_due, the backoff, the claim with its lease and the verdicts (complete, fail,
-- report_verdicts) are one protocol over the lease token, read together.
--
-- A worker (the bubble_sync edge function) runs:
--     rows := bubble_sync.claim(action, batch size, lease)     -- each row comes back with its own lease_token
--     for each row: call Bubble, then
--         bubble_sync.complete(row.lease_token, bubble id)     -- or
--         bubble_sync.fail(row.lease_token, message, kind, retry-after)   -- says what became of the row
--       (or bubble_sync.report_verdicts(those verdicts as JSON): many rows' in one round trip)
--     repeat until claim returns fewer rows than asked for
-- and must keep claiming until then: a claim for process_queue_data_api consumes the pending dispatch wake, so
-- rows left behind by a worker that stops early wait for the minute cron.
--
-- Every function that changes state takes `p_now timestamptz default null` and uses
-- coalesce(p_now, clock_timestamp()): tests pin the clock instead of sleeping, production passes nothing.
-- clock_timestamp(), not now(): a long transaction must not freeze the clock that leases are measured with.

-- ---------------------------------------------------------------------------------------------------------
-- Which rows are due
-- ---------------------------------------------------------------------------------------------------------

-- is_due: whether a row with these columns is due for p_action at p_now; the one definition claim, the invoke
-- functions and the dispatch trigger share:
--   process_queue_data_api  pending, and next_retry_at (set when a row was deferred) null or past
--   retry_failed            failed, retry_count < max_retries, and next_retry_at null or past (the seed's
--                           retry condition)
-- The planner cannot see into a function with a pinned search_path, so callers that scan the queue put the
-- predicate of the partial index for the action in front of the call (`q.status = 'pending' and ...`; see
-- the indexes in queue_schema.sql); it narrows the scan, and is_due decides. tests/test_queue.py checks that
-- claim takes exactly the rows is_due names. The counts are anycompatible so an adopted table's smallint or
-- bigint columns are compared as they are.
create or replace function bubble_sync.is_due(
  p_action        text,
  p_status        text,
  p_retry_count   anycompatible,
  p_max_retries   anycompatible,
  p_next_retry_at timestamptz,
  p_now           timestamptz
)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select case p_action
           when 'process_queue_data_api' then p_status = 'pending'
           when 'retry_failed' then p_status = 'failed' and p_retry_count < p_max_retries
           else false
         end
     and (p_next_retry_at is null or p_next_retry_at <= p_now)
$fn$;

revoke all on function bubble_sync.is_due(text, text, anycompatible, anycompatible, timestamptz, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.is_due(text, text, anycompatible, anycompatible, timestamptz, timestamptz)
  to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Retry policy
-- ---------------------------------------------------------------------------------------------------------

-- retry_wait: the wait before the next try of a row that has been failing (transiently) for p_failing_for:
-- as long as it has been failing, at least the base and at most the cap, spread by p_jitter in [0, 1) over
-- 75 %..125 %, so rows that failed together (a Bubble outage) do not all come back at once. p_jitter = 0.5
-- gives the nominal value; callers pass random(). Each wait about doubles the time since the first failure,
-- so the tries thin out without an attempt counter. With the suggested defaults (base 30 s, cap 1 h), nominal:
--   tries at  0, 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, 64 min, then every hour
--   that is   6 tries in the first 10 minutes, about 30 in 24 hours (tests/test_queue.py counts them)
create or replace function bubble_sync.retry_wait(p_failing_for interval, p_jitter double precision)
returns interval
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select make_interval(secs =>
    least({{ backoff_cap_seconds }}::double precision,
          greatest({{ backoff_base_seconds }}::double precision,
                   extract(epoch from greatest(coalesce(p_failing_for, interval '0'), interval '0'))))
    * (0.75 + 0.5 * least(greatest(coalesce(p_jitter, 0.5), 0), 1)))
$fn$;

revoke all on function bubble_sync.retry_wait(interval, double precision)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.retry_wait(interval, double precision) to service_role;

-- backoff: the wait before retry number p_attempt (1 = after the first failure): the base doubled per attempt,
-- then as retry_wait caps and spreads it. fail() uses it for a deferral without Retry-After.
-- With the suggested defaults (base 30 s, cap 1 h):
--   attempt    1      2      3      4      5       6       7       8 and later
--   nominal   30 s   1 min  2 min  4 min  8 min  16 min  32 min   1 h
--   range     23-38 s  ...                                         45-75 min
create or replace function bubble_sync.backoff(p_attempt integer, p_jitter double precision)
returns interval
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select bubble_sync.retry_wait(
    make_interval(secs => {{ backoff_base_seconds }}
                          * power(2::double precision, least(greatest(p_attempt, 1) - 1, 30))),
    p_jitter)
$fn$;

revoke all on function bubble_sync.backoff(integer, double precision)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.backoff(integer, double precision) to service_role;

-- failure_kind: how to treat a Bubble HTTP status (null = no response: timeout or network error). The rule
-- lives here once; a worker may pass failure_kind(status) straight to fail(). The Edge Function's copy is
-- supabase/functions/bubble_sync/status_kind.ts (tests/test_status_classification.py keeps the two equal).
--   429                      deferred    wait for Retry-After, no attempt used (a throttled row is not at fault)
--   401, 403                 deferred    Bubble refused our API token: the token, not the row, is wrong
--   408, 5xx, no response    retryable   retried with growing waits until the retry horizon, no attempt used
--   other 4xx                permanent   failed for good now (a bad payload will not get better)
--   anything else            retryable   (1xx/2xx/3xx reaching here is a protocol surprise: try again)
create or replace function bubble_sync.failure_kind(p_http_status integer)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select case
    when p_http_status in (429, 401, 403) then 'deferred'
    when p_http_status = 408 then 'retryable'
    when p_http_status between 400 and 499 then 'permanent'
    else 'retryable'
  end
$fn$;

revoke all on function bubble_sync.failure_kind(integer) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.failure_kind(integer) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Leases
-- ---------------------------------------------------------------------------------------------------------

-- reclaim: ends the leases that ran out before their holder completed or failed the row (the edge function hit
-- its wall-clock limit, crashed, or lost its connection). That attempt counts: retry_count + 1, then back to
-- pending, or failed for good once retry_count reaches max_retries, so a row that kills its worker every time
-- cannot loop forever. Returns how many rows it took back. claim() calls it first; it is also safe on its own.
create or replace function bubble_sync.reclaim(p_now timestamptz default null)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_now   timestamptz := coalesce(p_now, clock_timestamp());
  v_count integer;
begin
  with expired as (
    select q.ctid as row_ctid
      from public.sync_queue q
     where q.status = 'processing'
       and q.lease_expires_at <= v_now
     for update skip locked
  )
  update public.sync_queue q
     set retry_count      = coalesce(q.retry_count, 0) + 1,
         status           = case when coalesce(q.retry_count, 0) + 1 >= coalesce(q.max_retries, {{ default_max_retries }})
                                 then 'failed' else 'pending' end,
         next_retry_at    = null,
         error_message    = format('lease expired at %s before the worker completed or failed the row',
                                   q.lease_expires_at),
         lease_token      = null,
         lease_expires_at = null,
         updated_at       = v_now
    from expired e
   where q.ctid = e.row_ctid;

  get diagnostics v_count = row_count;
  return v_count;
end;
$fn$;

revoke all on function bubble_sync.reclaim(timestamptz) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.reclaim(timestamptz) to service_role;

-- gave_up_message: what a row failed for good past the retry horizon says: since when, and its last error.
create or replace function bubble_sync.gave_up_message(p_failing_since timestamptz, p_last_error text)
returns text
language sql
stable
set search_path = ''
as $fn$
  select left(format('gave up: failing since %s, past the retry horizon (%s); last error: %s',
                     p_failing_since, {{ retry_horizon }}, coalesce(p_last_error, 'unknown error')), 2000)
$fn$;

revoke all on function bubble_sync.gave_up_message(timestamptz, text)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.gave_up_message(timestamptz, text) to service_role;

-- give_up: fails for good, without another try, the rows that have been failing (transiently) for the retry
-- horizon. fail() does the same for a row it is given; this is for rows nobody tries, because Bubble's
-- circuit breaker is open (claim hands out at most the probe's row meanwhile). Returns how many it failed.
-- claim() calls it first; it is cheap: sync_queue_failing_idx holds only the rows retrying right now.
create or replace function bubble_sync.give_up(p_now timestamptz default null)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
  v_now   timestamptz := coalesce(p_now, clock_timestamp());
  v_count integer;
begin
  update public.sync_queue q
     set status        = 'failed',
         retry_count   = greatest(q.retry_count + 1, q.max_retries),
         next_retry_at = null,
         error_message = bubble_sync.gave_up_message(q.failing_since, q.error_message),
         updated_at    = v_now
   where q.failing_since is not null and q.status in ('pending', 'failed')
     and q.retry_count < q.max_retries  -- sync_queue_failing_idx
     and q.failing_since <= v_now - {{ retry_horizon }};
  get diagnostics v_count = row_count;
  return v_count;
end;
$fn$;

revoke all on function bubble_sync.give_up(timestamptz) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.give_up(timestamptz) to service_role;

-- waits_for_reference: whether a queue row (its table_name, operation and payload) must wait for a record it
-- refers to: its table's mapping (bubble_sync.mappings) has a `ref` field whose column, in the payload, names a
-- record of the referenced table that has a row still to be applied (processing, pending, or failed with
-- retries left) and no Bubble id yet (bubble_sync.links). A DELETE waits for nothing. Rows of tables without a
-- mapping never wait. A reference to a record the queue does not have is not waited for here: the worker
-- looks it up in Bubble, and retries the row until the retry horizon if Bubble lacks it.
create or replace function bubble_sync.waits_for_reference(p_table_name text, p_operation text, p_payload jsonb)
returns boolean
language sql
stable
parallel safe
set search_path = ''
as $fn$
  select p_operation is distinct from 'DELETE'
     and exists (select 1
                   from bubble_sync.mappings m
                  cross join lateral jsonb_array_elements(m.definition -> 'fields') as f(item)
                   join public.sync_queue r  -- sync_queue_record_idx
                     on r.table_name = f.item ->> 'refTable'
                    and r.record_id = p_payload ->> (f.item ->> 'column')
                  where m.table_name = p_table_name
                    and f.item ? 'refTable'
                    and (r.status = 'processing'
                         or (r.status in ('pending', 'failed') and r.retry_count < r.max_retries))
                    and not exists (select 1
                                      from bubble_sync.links l
                                     where l.table_name = r.table_name and l.record_id = r.record_id))
$fn$;

revoke all on function bubble_sync.waits_for_reference(text, text, jsonb)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.waits_for_reference(text, text, jsonb) to service_role;

-- tables_with_references: the tables whose mapping has a `ref` field, the only ones whose rows can wait
-- (waits_for_reference). claim asks once per call, so rows of other tables, and every row of a stack without
-- references, skip waits_for_reference: a SQL function with a pinned search_path is not inlined, and calling
-- it for every candidate row cost about 15 µs a row (bench/results-queue-scale.md).
create or replace function bubble_sync.tables_with_references()
returns text[]
language sql
stable
parallel safe
set search_path = ''
as $fn$
  select coalesce(array_agg(m.table_name order by m.table_name), '{}')
    from bubble_sync.mappings m
   where exists (select 1
                   from jsonb_array_elements(m.definition -> 'fields') as f(item)
                  where f.item ? 'refTable')
$fn$;

revoke all on function bubble_sync.tables_with_references() from public, anon, authenticated, service_role;
grant execute on function bubble_sync.tables_with_references() to service_role;

-- claim: leases up to p_limit rows for one action and returns them, each with a fresh lease_token that
-- complete/fail must present; the lease runs out after p_lease_seconds.
--   process_queue_data_api  the rows bubble_sync.is_due says are due for it: changes (signups, updates)
--                           oldest first, then backfilled rows (operation BACKFILL, sql/functions/backfill.sql)
--                           oldest first, so a backfill waits behind every signup instead of holding it back;
--                           rows whose lease expired come back through reclaim (called first). Consumes the
--                           dispatch wake before it looks, see bubble_sync.dispatch_wake.
--   retry_failed            the rows is_due says are due for a retry (the seed's condition), most overdue first.
-- While Bubble's circuit breaker is open it hands out one row when a probe is due and none otherwise
-- (bubble_sync.rows_to_claim): the rows stay where they are instead of going to a worker that may not send.
-- One record's changes reach Bubble in order: a row is not handed out while another row of its record is
-- processing (runs work in parallel), nor while a row of its record queued before it is still unfinished
-- (pending, or failed with retries left): an update never overtakes the create it modifies, and never meets a
-- record the create has not stored yet. "Before" is queue_order, the order rows were queued in (created_at ties
-- for rows queued in one transaction); created_at only between rows queued before the queue had an order.
-- Across records, a row of a mapped table waits while a record it refers to (a `ref` field) has a row still to
-- be applied and is not in Bubble yet (bubble_sync.waits_for_reference): parents reach Bubble first. Each
-- row is handed out with its record's Bubble id when the record has one (bubble_sync.links), so the worker
-- modifies or deletes it without a search.
-- The claim itself is one statement (select ... for update skip locked, then update ... returning): two
-- workers never get the same row, and nobody waits for rows another worker holds. The two actions get a
-- statement each, alike but for their action and order, so each can use its own partial index.
create or replace function bubble_sync.claim(
  p_action        text,
  p_limit         integer default 10,
  p_lease_seconds integer default {{ lease_seconds }},
  p_now           timestamptz default null
)
returns setof public.sync_queue
language plpgsql
set search_path = ''
as $fn$
declare
  v_now       timestamptz := coalesce(p_now, clock_timestamp());
  v_expires   timestamptz;
  v_limit     integer;
  v_referring text[];  -- tables_with_references(): whose rows may wait for a record they refer to
begin
  if p_action is null or p_action not in ('process_queue_data_api', 'retry_failed') then
    raise exception 'bubble_sync.claim: unknown action %', coalesce(quote_literal(p_action), 'NULL')
      using errcode = '22023', hint = 'Use process_queue_data_api or retry_failed.';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception 'bubble_sync.claim: p_limit must be between 1 and 1000, got %', p_limit using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds < 1 then
    raise exception 'bubble_sync.claim: p_lease_seconds must be positive, got %', p_lease_seconds
      using errcode = '22023';
  end if;
  v_expires := v_now + make_interval(secs => p_lease_seconds);

  perform bubble_sync.reclaim(v_now);
  perform bubble_sync.give_up(v_now);
  v_limit := bubble_sync.rows_to_claim(p_limit, v_now);
  v_referring := bubble_sync.tables_with_references();

  if p_action = 'process_queue_data_api' then
    -- Consume the outstanding wake, if there is one. Updating the row waits for every transaction that is
    -- inserting queue rows right now (the dispatch trigger holds the row lock until it commits), so the claim
    -- below, which takes a fresh snapshot, sees their rows; an insert after this point finds no outstanding
    -- wake and posts a new one. With no wake outstanding there is nothing to wait for: an inserter busy right
    -- now is posting its own wake. Always the wall clock: the trigger has no p_now to compare with.
    update bubble_sync.dispatch_state s
       set wake_consumed_at = clock_timestamp()
     where s.id = 1
       and s.wake_requested_at > coalesce(s.wake_consumed_at, '-infinity'::timestamptz);
    if v_limit = 0 then
      return;  -- the wake is consumed all the same: the rows wait for the next probe, see rows_to_claim
    end if;

    return query
      with picked as (
        select q.ctid as row_ctid
          from public.sync_queue q
         where q.status = 'pending'  -- sync_queue_pending_idx, in its order
           and bubble_sync.is_due('process_queue_data_api', q.status, q.retry_count, q.max_retries,
                                  q.next_retry_at, v_now)
           and not exists (select 1
                             from public.sync_queue o  -- sync_queue_record_idx: the record's other rows
                            where o.table_name = q.table_name and o.record_id = q.record_id
                              and o.ctid <> q.ctid
                              and (o.status = 'processing'
                                   or ((coalesce(o.queue_order, 0), o.created_at)
                                         < (coalesce(q.queue_order, 0), q.created_at)
                                       and o.status in ('pending', 'failed') and o.retry_count < o.max_retries)))
           and (q.table_name <> all (v_referring)
                or not bubble_sync.waits_for_reference(q.table_name, q.operation, q.payload))
         order by (q.operation is not distinct from 'BACKFILL'), q.created_at
         limit v_limit
         for update skip locked
      )
      update public.sync_queue q
         set status           = 'processing',
             lease_token      = gen_random_uuid(),
             lease_expires_at = v_expires,
             updated_at       = v_now,
             bubble_id        = coalesce((select l.bubble_id
                                            from bubble_sync.links l
                                           where l.table_name = q.table_name and l.record_id = q.record_id),
                                         q.bubble_id)
        from picked p
       where q.ctid = p.row_ctid
      returning q.*;
  elsif v_limit > 0 then
    return query
      with picked as (
        select q.ctid as row_ctid
          from public.sync_queue q
         where q.status = 'failed' and q.retry_count < q.max_retries  -- sync_queue_retry_due_idx
           and bubble_sync.is_due('retry_failed', q.status, q.retry_count, q.max_retries, q.next_retry_at, v_now)
           and not exists (select 1
                             from public.sync_queue o  -- sync_queue_record_idx: the record's other rows
                            where o.table_name = q.table_name and o.record_id = q.record_id
                              and o.ctid <> q.ctid
                              and (o.status = 'processing'
                                   or ((coalesce(o.queue_order, 0), o.created_at)
                                         < (coalesce(q.queue_order, 0), q.created_at)
                                       and o.status in ('pending', 'failed') and o.retry_count < o.max_retries)))
           and (q.table_name <> all (v_referring)
                or not bubble_sync.waits_for_reference(q.table_name, q.operation, q.payload))
         order by q.next_retry_at nulls first, q.created_at
         limit v_limit
         for update skip locked
      )
      update public.sync_queue q
         set status           = 'processing',
             lease_token      = gen_random_uuid(),
             lease_expires_at = v_expires,
             updated_at       = v_now,
             bubble_id        = coalesce((select l.bubble_id
                                            from bubble_sync.links l
                                           where l.table_name = q.table_name and l.record_id = q.record_id),
                                         q.bubble_id)
        from picked p
       where q.ctid = p.row_ctid
      returning q.*;
  end if;
end;
$fn$;

revoke all on function bubble_sync.claim(text, integer, integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.claim(text, integer, integer, timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Verdicts: only the current lease holder gives one
-- ---------------------------------------------------------------------------------------------------------
--
-- A lease token stays valid past lease_expires_at until someone actually takes the row back (reclaim clears the
-- token, a new claim issues a new one): a slow worker that finishes before that is believed, one that finishes
-- after gets false and changes nothing. Either way Bubble holds at most one record, because a retry looks the
-- record up by its key before creating it.

-- complete_noting: marks the row synced (remembering Bubble's id) if p_lease_token is its current lease; true
-- if so. p_note, when given, becomes the row's error_message: what the worker wants known about a success
-- ("Bubble never had it: nothing to delete"); without it the last error stays, as history. Keeps the record's
-- link to its Bubble thing (bubble_sync.links): set by any completion with a Bubble id, removed by a DELETE
-- (but for the delete of a duplicate, which leaves it).
create or replace function bubble_sync.complete_noting(
  p_lease_token uuid,
  p_bubble_id   text,
  p_note        text,
  p_now         timestamptz default null
)
returns boolean
language plpgsql
set search_path = ''
as $fn$
declare
  v_now  timestamptz := coalesce(p_now, clock_timestamp());
  v_done record;
begin
  update public.sync_queue q
     set status           = 'completed',
         bubble_id        = coalesce(p_bubble_id, q.bubble_id),
         error_message    = coalesce(left(p_note, 2000), q.error_message),
         completed_at     = v_now,
         updated_at       = v_now,
         next_retry_at    = null,
         lease_token      = null,
         lease_expires_at = null
   where q.lease_token = p_lease_token
     and q.status = 'processing'
  returning q.table_name, q.record_id, q.operation, q.bubble_id,
            q.operation = 'DELETE' and q.payload ? 'bubble_sync_duplicate' as of_duplicate
       into v_done;
  if not found then
    return false;
  end if;

  if v_done.table_name is null or v_done.record_id is null then
    null;  -- a row of an adopted table without its record: nothing to link
  elsif v_done.of_duplicate then
    null;  -- another thing than the record's was deleted (bubble_sync.enqueue_delete_duplicate)
  elsif v_done.operation = 'DELETE' then
    delete from bubble_sync.links l where l.table_name = v_done.table_name and l.record_id = v_done.record_id;
  elsif v_done.bubble_id is not null and v_done.bubble_id <> '' then
    insert into bubble_sync.links as l (table_name, record_id, bubble_id, linked_at)
    values (v_done.table_name, v_done.record_id, v_done.bubble_id, v_now)
    on conflict (table_name, record_id) do update
      set bubble_id = excluded.bubble_id, linked_at = excluded.linked_at
      where l.bubble_id is distinct from excluded.bubble_id;
  end if;
  return true;
end;
$fn$;

revoke all on function bubble_sync.complete_noting(uuid, text, text, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.complete_noting(uuid, text, text, timestamptz) to service_role;

-- complete: complete_noting without a note (the worker's verb since the first release).
create or replace function bubble_sync.complete(
  p_lease_token uuid,
  p_bubble_id   text default null,
  p_now         timestamptz default null
)
returns boolean
language sql
set search_path = ''
as $fn$
  select bubble_sync.complete_noting(p_lease_token, p_bubble_id, null, coalesce(p_now, clock_timestamp()))
$fn$;

revoke all on function bubble_sync.complete(uuid, text, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.complete(uuid, text, timestamptz) to service_role;

-- fail: records a failed attempt if p_lease_token is the row's current lease, and says what became of the row:
--   'deferred'         back to pending, no attempt used (kinds deferred and unavailable)
--   'retrying'         failed; retry_failed picks it up once next_retry_at has passed
--   'failed_for_good'  failed, retry_count >= max_retries: the seed's retry condition never picks it up again
--   null               the lease was no longer the caller's; nothing changed
-- p_kind says what happens (bubble_sync.failure_kind maps an HTTP status to it):
--   retryable  a transient failure, not the row's fault: no attempt used. failing_since keeps the first of
--              the failures in a row; next_retry_at = now + retry_wait(now - failing_since), or later: not
--              before p_retry_after_seconds (a create whose outcome is unknown must settle at Bubble before
--              the row is looked up again). Once the row has been failing for the retry horizon it is failed
--              for good, its message saying so (and at once when it has no retry left: max_retries 0, or used
--              up by expired leases).
--   deferred   back to pending, due after p_retry_after_seconds (Bubble's Retry-After; without one, the
--              backoff for the next attempt); retry_count unchanged: the row was not at fault (a rate limit,
--              a refused API token, a run out of time before the row's turn). 'rate_limited', this kind's
--              earlier name, is accepted from workers deployed before the rename.
--   unavailable  not sent: Bubble's circuit breaker is open (see gate.sql). Back to pending, due after
--              p_retry_after_seconds (the next probe; without it, now), retry_count and failing_since unchanged:
--              a row that was never sent is not failing; one that was keeps its streak, and is failed for good
--              once that passes the retry horizon, as a retryable failure would be.
--   permanent  failed for good now: retry_count := greatest(retry_count + 1, max_retries)
-- p_error is stored in error_message as given (cut to 2000 characters), so it must say the cause. p_jitter
-- (0..1) defaults to random(); tests pass it to get exact times.
create or replace function bubble_sync.fail(
  p_lease_token         uuid,
  p_error               text,
  p_kind                text default 'retryable',
  p_retry_after_seconds integer default null,
  p_jitter              double precision default null,
  p_now                 timestamptz default null
)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
  v_now           timestamptz := coalesce(p_now, clock_timestamp());
  v_jitter        double precision := coalesce(p_jitter, random());
  v_error         text := left(coalesce(p_error, 'unknown error'), 2000);
  v_kind          text := case when p_kind = 'rate_limited' then 'deferred' else p_kind end;
  v_retry_count   bigint;
  v_max_retries   bigint;
  v_failing_since timestamptz;
begin
  if v_kind is null or v_kind not in ('retryable', 'deferred', 'unavailable', 'permanent') then
    raise exception 'bubble_sync.fail: unknown kind %', coalesce(quote_literal(p_kind), 'NULL')
      using errcode = '22023',
            hint = 'Use retryable, deferred, unavailable or permanent (see bubble_sync.failure_kind).';
  end if;

  select coalesce(q.retry_count, 0), coalesce(q.max_retries, {{ default_max_retries }}), q.failing_since
    into v_retry_count, v_max_retries, v_failing_since
    from public.sync_queue q
   where q.lease_token = p_lease_token
     and q.status = 'processing'
     for update;
  if not found then
    return null;
  end if;

  if v_kind = 'unavailable' and v_failing_since is not null
     and v_now - v_failing_since >= {{ retry_horizon }} then
    v_kind := 'retryable';  -- its streak of failures is past the horizon: given up on below
  end if;
  if v_kind = 'retryable' then
    v_failing_since := coalesce(v_failing_since, v_now);
    if v_now - v_failing_since >= {{ retry_horizon }} then
      v_kind := 'permanent';
      v_error := bubble_sync.gave_up_message(v_failing_since, v_error);
    elsif v_retry_count >= v_max_retries then
      v_kind := 'permanent';  -- no retry left (max_retries 0, or used up by expired leases)
    end if;
  end if;

  update public.sync_queue q
     set status           = case when v_kind in ('deferred', 'unavailable') then 'pending' else 'failed' end,
         retry_count      = case when v_kind = 'permanent' then greatest(v_retry_count + 1, v_max_retries)
                                 else v_retry_count end,
         failing_since    = v_failing_since,
         next_retry_at    = case v_kind
                              when 'deferred' then
                                v_now + case
                                          when p_retry_after_seconds is not null
                                            then make_interval(secs => greatest(p_retry_after_seconds, 0))
                                          else bubble_sync.backoff(v_retry_count::integer + 1, v_jitter)
                                        end
                              when 'unavailable' then
                                v_now + make_interval(secs => greatest(coalesce(p_retry_after_seconds, 0), 0))
                              when 'retryable' then
                                v_now + greatest(bubble_sync.retry_wait(v_now - v_failing_since, v_jitter),
                                                 make_interval(secs => greatest(coalesce(p_retry_after_seconds, 0), 0)))
                            end,
         error_message    = v_error,
         lease_token      = null,
         lease_expires_at = null,
         updated_at       = v_now
   where q.lease_token = p_lease_token;

  return case v_kind
           when 'deferred' then 'deferred'
           when 'unavailable' then 'deferred'
           when 'retryable' then 'retrying'
           else 'failed_for_good'
         end;
end;
$fn$;

revoke all on function bubble_sync.fail(uuid, text, text, integer, double precision, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.fail(uuid, text, text, integer, double precision, timestamptz)
  to service_role;

-- report_verdicts: many verdicts in one round trip. p_verdicts is a JSON array; each element is either a
-- completion {"lease_token", "bubble_id", "note" (optional)} or a failure {"lease_token", "error", "kind" or "http_status",
-- "retry_after_seconds"} (a missing kind is bubble_sync.failure_kind(http_status)). Each is given exactly as
-- complete() or fail() would give it, in order; one row comes back per element: its 1-based position and
-- its outcome ('completed', fail()'s outcome, or null when the lease was no longer the caller's).
create or replace function bubble_sync.report_verdicts(
  p_verdicts jsonb,
  p_now      timestamptz default null
)
returns table (verdict bigint, outcome text)
language plpgsql
set search_path = ''
as $fn$
declare
  v_item record;
begin
  for v_item in select e.value, e.ordinality from jsonb_array_elements(p_verdicts) with ordinality e loop
    verdict := v_item.ordinality;
    if v_item.value ? 'bubble_id' then
      outcome := case
                   when bubble_sync.complete_noting((v_item.value ->> 'lease_token')::uuid,
                                                    v_item.value ->> 'bubble_id', v_item.value ->> 'note', p_now)
                     then 'completed'
                 end;
    else
      outcome := bubble_sync.fail(
        (v_item.value ->> 'lease_token')::uuid,
        v_item.value ->> 'error',
        coalesce(v_item.value ->> 'kind', bubble_sync.failure_kind((v_item.value ->> 'http_status')::integer)),
        (v_item.value ->> 'retry_after_seconds')::integer,
        null,
        p_now
      );
    end if;
    return next;
  end loop;
end;
$fn$;

revoke all on function bubble_sync.report_verdicts(jsonb, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.report_verdicts(jsonb, timestamptz) to service_role;
