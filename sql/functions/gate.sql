-- bubble-sync: Bubble's gate, the pacing and the circuit breaker every worker shares.
--
-- Bubble's rate limit is per app and an outage hits every worker at once, so both are kept in the one row of
-- bubble_sync.bubble_gate (queue_schema.sql) instead of in each edge-function isolate:
--
--   pacing    a worker reserves send slots before it sends (take_requests): slots are spaced 60 / limit
--             seconds apart across every run, isolate and cron job, so together they stay at
--             bubbleRateLimitPerMinute; a 429's Retry-After moves the next slot for everyone (note_bubble_answer).
--   breaker   a worker reports each transient failure (5xx, 408, no answer) and, after a failure, the next
--             answer (note_bubble_answer). After {{ breaker_failures }} failures in a row the breaker opens:
--             take_requests then grants one probe request per {{ probe_interval }} and nothing else, claim
--             hands out one row (for that probe) or none, and rows a worker holds go back to pending without
--             using an attempt (bubble_sync.fail, kind 'unavailable'). The first answer closes it.
--
-- A worker reserves a few slots at a time, so it asks once per second or so, not once per request; it reports
-- a good answer only when its last view of the gate showed failures, so a healthy Bubble costs no writes here.

-- ---------------------------------------------------------------------------------------------------------
-- Reading the gate
-- ---------------------------------------------------------------------------------------------------------

-- rows_to_claim: how many of p_limit rows a claim may hand out at p_now: all of them while the breaker is
-- closed, one while it is open and a probe is due (the probe's row), none until then. Reads the gate without
-- locking it; take_requests decides which worker sends the probe.
create or replace function bubble_sync.rows_to_claim(p_limit integer, p_now timestamptz)
returns integer
language sql
stable
set search_path = ''
as $fn$
  select coalesce(
    (select case
              when g.opened_at is null then p_limit
              when coalesce(g.last_probe_at, g.opened_at) + {{ probe_interval }} <= p_now then least(p_limit, 1)
              else 0
            end
       from bubble_sync.bubble_gate g
      where g.id = 1),
    p_limit)
$fn$;

revoke all on function bubble_sync.rows_to_claim(integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.rows_to_claim(integer, timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Taking turns and reporting answers (the worker's side)
-- ---------------------------------------------------------------------------------------------------------

-- take_requests: reserves up to p_wanted requests to Bubble, paced at p_per_minute (0: unpaced), and says
-- when to send them: the first p_first_in_ms from now, each next one spacing_ms later.
--   breaker 'closed'  granted = p_wanted, or fewer when p_max_wait_ms is given: only slots starting within
--                     it (none, granted 0, when the first free slot is later; first_in_ms says when it is)
--   breaker 'probe'   the breaker is open and a probe is due: granted 1, this worker sends it
--   breaker 'open'    granted 0; first_in_ms is the time until the next probe is due
-- unavailable_since and failures_in_a_row are the gate's, for the worker's view of it.
create or replace function bubble_sync.take_requests(
  p_wanted      integer,
  p_per_minute  integer,
  p_max_wait_ms integer default null,
  p_now         timestamptz default null
)
returns table (
  granted           integer,
  first_in_ms       integer,
  spacing_ms        double precision,
  breaker           text,
  unavailable_since timestamptz,
  failures_in_a_row integer
)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now      timestamptz := coalesce(p_now, clock_timestamp());
  v_gate     bubble_sync.bubble_gate;
  v_start    timestamptz;
  v_probe_at timestamptz;
  v_wait_ms  integer;
begin
  if p_wanted is null or p_wanted < 1 or p_wanted > 1000 then
    raise exception 'bubble_sync.take_requests: p_wanted must be between 1 and 1000, got %', p_wanted
      using errcode = '22023';
  end if;
  if p_per_minute is null or p_per_minute < 0 then
    raise exception 'bubble_sync.take_requests: p_per_minute must be 0 (unpaced) or more, got %', p_per_minute
      using errcode = '22023';
  end if;

  insert into bubble_sync.bubble_gate (id) values (1) on conflict (id) do nothing;
  select * into v_gate from bubble_sync.bubble_gate g where g.id = 1 for update;

  spacing_ms := case when p_per_minute > 0 then 60000.0 / p_per_minute else 0 end;
  -- whole milliseconds from now, and the next turn counted from the same rounded start the caller is told
  v_wait_ms := ceil(extract(epoch from greatest(v_now, coalesce(v_gate.next_request_at, v_now)) - v_now)
                    * 1000)::integer;
  v_start := v_now + make_interval(secs => v_wait_ms / 1000.0);
  unavailable_since := case when v_gate.opened_at is not null then v_gate.failing_since end;
  failures_in_a_row := v_gate.failures_in_a_row;

  if v_gate.opened_at is not null then
    v_probe_at := coalesce(v_gate.last_probe_at, v_gate.opened_at) + {{ probe_interval }};
    if v_probe_at > v_now then
      granted := 0;
      breaker := 'open';
      first_in_ms := ceil(extract(epoch from v_probe_at - v_now) * 1000)::integer;
      return next;
      return;
    end if;
    granted := 1;
    breaker := 'probe';
  else
    breaker := 'closed';
    granted := case
                 when p_max_wait_ms is null then p_wanted
                 when v_wait_ms > p_max_wait_ms then 0
                 when spacing_ms = 0 then p_wanted
                 else least(p_wanted, floor((p_max_wait_ms - v_wait_ms) / spacing_ms)::integer + 1)
               end;
  end if;

  first_in_ms := v_wait_ms;
  if granted > 0 then
    update bubble_sync.bubble_gate g
       set next_request_at = v_start + make_interval(secs => granted * spacing_ms / 1000),
           last_probe_at   = case when breaker = 'probe' then v_now else g.last_probe_at end
     where g.id = 1;
  end if;
  return next;
end;
$fn$;

revoke all on function bubble_sync.take_requests(integer, integer, integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.take_requests(integer, integer, integer, timestamptz) to service_role;

-- note_bubble_answer: records what Bubble did with a request, and returns the gate as it now is.
--   'answered'      Bubble answered (any status but 408, 429, 5xx): the failures in a row end, the breaker closes,
--                   and if it was open, the rows waiting out Bubble's failures (failed, retrying) go back to
--                   pending, due now, as do the rows handed back to wait for the next probe, and the processor
--                   is woken for the backlog (the probe may have been the
--                   retry job's, which takes no pending row), as the dispatch trigger wakes it
--   'rate_limited'  a 429: Bubble is up (as 'answered'), and no request goes out before p_retry_after_seconds
--   'unavailable'   a transient failure (408, 5xx, timeout, no connection): one more failure in a row, p_error
--                   remembered (cut to 500 characters); the breaker opens at the {{ breaker_failures }}th, and
--                   a failure while it is open (a failed probe) starts the next probe interval
create or replace function bubble_sync.note_bubble_answer(
  p_answer              text,
  p_error               text default null,
  p_retry_after_seconds integer default null,
  p_now                 timestamptz default null
)
returns table (breaker text, unavailable_since timestamptz, failures_in_a_row integer)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now        timestamptz := coalesce(p_now, clock_timestamp());
  v_was_open   boolean;
begin
  if p_answer is null or p_answer not in ('answered', 'rate_limited', 'unavailable') then
    raise exception 'bubble_sync.note_bubble_answer: unknown answer %', coalesce(quote_literal(p_answer), 'NULL')
      using errcode = '22023', hint = 'Use answered, rate_limited or unavailable.';
  end if;
  insert into bubble_sync.bubble_gate (id) values (1) on conflict (id) do nothing;

  if p_answer = 'unavailable' then
    update bubble_sync.bubble_gate g
       set failures_in_a_row = g.failures_in_a_row + 1,
           failing_since     = coalesce(g.failing_since, v_now),
           last_error        = left(coalesce(p_error, 'no message'), 500),
           opened_at         = case when g.opened_at is null and g.failures_in_a_row + 1 >= {{ breaker_failures }}
                                    then v_now else g.opened_at end,
           last_probe_at     = case when g.opened_at is not null
                                      or g.failures_in_a_row + 1 >= {{ breaker_failures }}
                                    then v_now else g.last_probe_at end
     where g.id = 1;
  else
    select g.opened_at is not null into v_was_open from bubble_sync.bubble_gate g where g.id = 1 for update;
    update bubble_sync.bubble_gate g
       set failures_in_a_row = 0,
           failing_since     = null,
           opened_at         = null,
           last_probe_at     = null,
           last_error        = null,
           next_request_at   = case when p_answer = 'rate_limited'
                                    then greatest(coalesce(g.next_request_at, v_now),
                                                  v_now + make_interval(secs => greatest(coalesce(p_retry_after_seconds, 0), 0)))
                                    else g.next_request_at end
     where g.id = 1
       and (g.failures_in_a_row > 0 or g.opened_at is not null or p_answer = 'rate_limited');
    if v_was_open then
      update public.sync_queue q
         set status        = 'pending',
             next_retry_at = null,
             updated_at    = v_now
       where q.status = 'failed' and q.retry_count < q.max_retries  -- sync_queue_retry_due_idx
         and q.failing_since is not null;
      update public.sync_queue q
         set next_retry_at = null
       where q.status = 'pending'  -- sync_queue_pending_idx
         and q.next_retry_at > v_now and q.next_retry_at <= v_now + {{ probe_interval }};
      begin
        perform bubble_sync.invoke_function('process_queue_data_api');
      exception when others then
        -- e.g. a missing Vault secret: the minute cron picks the backlog up
        raise warning 'bubble_sync: Bubble answers again, but the processor was not woken (%)', sqlerrm;
      end;
    end if;
  end if;

  return query
    select case when g.opened_at is null then 'closed' else 'open' end,
           case when g.opened_at is not null then g.failing_since end,
           g.failures_in_a_row
      from bubble_sync.bubble_gate g
     where g.id = 1;
end;
$fn$;

revoke all on function bubble_sync.note_bubble_answer(text, text, integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.note_bubble_answer(text, text, integer, timestamptz) to service_role;
