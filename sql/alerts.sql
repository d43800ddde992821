-- bubble-sync: alerts that reach a person (issue "Know that Bubble matches Supabase", item 3).
--
-- The cron job bubble_sync.alerts runs evaluate_alerts every minute: it finds what is wrong now
-- (alert_causes) and compares it with what the last message announced (bubble_sync.alert_state). Only a
-- change is told, through pg_net, to the webhook in the Vault secret alert_webhook_url (the stack's
-- alertWebhookUrl; without it nothing is posted and the state is still kept):
--   unhealthy   a cause appears that the last message did not announce (the pipeline turns unhealthy, or a
--               new cause joins those announced): one message listing every cause, the new ones marked
--   recovered   no cause is left after some were announced: one message naming what was resolved
-- A cause that goes away while others stand is not told; should it come back, it is told again. So a
-- breaker that stays open gives one message, and its closing another, never one a minute. A message that
-- pg_net could not deliver is not sent again: `python -m components status` shows the state either way.
--
-- Messages are Slack-compatible ({"text": ...}) and carry the same as fields for other receivers: status
-- (unhealthy | healthy), stack, at, causes and resolved (each cause: cause, since, what, command, new). They
-- say what is wrong, since when and the command to run: counts, names of mappings and jobs, times; never a
-- secret, a payload value or an error text (Bubble's and the database's may quote values).

-- ---------------------------------------------------------------------------------------------------------
-- What is wrong now
-- ---------------------------------------------------------------------------------------------------------

-- alert_causes: what needs a person at p_now, one row per cause, with since when, what it is and the command
-- that shows or repairs it (p_stack names the stack in the commands; NULL: <stack>):
--   bubble_unavailable   Bubble failing for longer than p_after, its circuit breaker open (since: its first failure)
--   failed_for_good      rows failed for good (retry budget used up), since the oldest of them failed
--   backlog              the oldest pending change older than p_backlog (backfilled rows wait behind every change
--                        by design and are left out, as in health()); not while the breaker is open: then the
--                        rows wait for Bubble, which is the cause told
--   verification:<name>  the last verification of mapping <name> found differences; since the first of its
--                        verifications that did after the last clean one
--   cron_job:<name>      the last run of one of our active cron jobs (bubble_sync.is_our_job) failed, within the
--                        last 25 hours; since the first failed run after its last success
create or replace function bubble_sync.alert_causes(
  p_after   interval,
  p_backlog interval,
  p_stack   text default null,
  p_now     timestamptz default null
)
returns table (cause text, since timestamptz, what text, command text)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now    timestamptz := coalesce(p_now, clock_timestamp());
  v_stack  text := coalesce(nullif(btrim(p_stack), ''), '<stack>');
  v_status text;
  v_gate   bubble_sync.bubble_gate;
  v_open   boolean;
  v_count  bigint;
  v_first  timestamptz;
  v_row    record;
begin
  v_status := format('python -m components status --stack %s', v_stack);
  select * into v_gate from bubble_sync.bubble_gate g where g.id = 1;
  v_open := v_gate.opened_at is not null;

  if v_open and coalesce(v_gate.failing_since, v_gate.opened_at) < v_now - p_after then
    cause := 'bubble_unavailable';
    since := coalesce(v_gate.failing_since, v_gate.opened_at);
    what := format('Bubble has been unavailable since %s: %s failures in a row opened the circuit breaker, so '
                   'rows wait (using no attempt) and one probe a while goes out',
                   bubble_sync.alert_time(since), v_gate.failures_in_a_row);
    command := v_status;
    return next;
  end if;

  select count(*), min(q.updated_at) into v_count, v_first
    from public.sync_queue q
   where q.status = 'failed' and q.retry_count >= q.max_retries;  -- sync_queue_failed_for_good_idx
  if v_count > 0 then
    cause := 'failed_for_good';
    since := v_first;
    what := format('%s row(s) failed for good (their retry budget is used up); `%s` lists their errors: fix '
                   'the cause, then requeue them', v_count, v_status);
    command := format('python -m components requeue --stack %s --all-permanently-failed', v_stack);
    return next;
  end if;

  if not v_open then
    select q.created_at into v_first
      from public.sync_queue q
     where q.status = 'pending' and not (q.operation is not distinct from 'BACKFILL')
     order by (q.operation is not distinct from 'BACKFILL'), q.created_at  -- sync_queue_pending_idx
     limit 1;
    if v_first < v_now - p_backlog then
      cause := 'backlog';
      since := v_first;
      what := format('the oldest pending change has waited since %s (more than %s min): the queue is not '
                     'draining', bubble_sync.alert_time(v_first), round(extract(epoch from p_backlog) / 60));
      command := v_status;
      return next;
    end if;
  end if;

  for v_row in
    select v.mapping, v.checked, v.missing, v.stale, v.orphaned, v.duplicated,
           (select min(o.finished_at)
              from bubble_sync.verifications o
             where o.mapping = v.mapping and o.error is null and o.finished_at <= v_now
               and o.finished_at > coalesce((select max(c.finished_at)
                                               from bubble_sync.verifications c
                                              where c.mapping = v.mapping and c.error is null
                                                and c.finished_at <= v_now
                                                and c.missing + c.stale + c.orphaned + c.duplicated = 0),
                                            '-infinity')) as first_found
      from bubble_sync.mappings m
      join lateral (select *
                      from bubble_sync.verifications r
                     where r.mapping = m.name and r.error is null and r.finished_at <= v_now
                     order by r.finished_at desc
                     limit 1) v on true
     where v.missing + v.stale + v.orphaned + v.duplicated > 0
     order by v.mapping
  loop
    cause := 'verification:' || v_row.mapping;
    since := v_row.first_found;
    what := format('the verification of mapping %s found Bubble out of sync: %s missing, %s stale, %s orphaned '
                   'and %s duplicated of %s record(s) checked', v_row.mapping, v_row.missing, v_row.stale,
                   v_row.orphaned, v_row.duplicated, v_row.checked);
    command := format('python -m components reconcile --stack %s --mapping %s --repair', v_stack, v_row.mapping);
    return next;
  end loop;

  if to_regclass('cron.job') is not null then
    for v_row in
      select j.jobname, l.start_time,
             (select min(d.start_time)
                from cron.job_run_details d
               where d.jobid = j.jobid and d.status = 'failed'
                 and d.start_time > coalesce((select max(s.start_time)
                                                from cron.job_run_details s
                                               where s.jobid = j.jobid and s.status = 'succeeded'),
                                             '-infinity')) as first_failed
        from cron.job j
        join lateral (select d.status, d.start_time
                        from cron.job_run_details d
                       where d.jobid = j.jobid and d.status in ('succeeded', 'failed')
                       order by d.start_time desc nulls last
                       limit 1) l on true
       where bubble_sync.is_our_job(j.jobname) and j.active
         and l.status = 'failed' and l.start_time >= v_now - interval '25 hours'
       order by j.jobname
    loop
      cause := 'cron_job:' || v_row.jobname;
      since := coalesce(v_row.first_failed, v_row.start_time);
      what := format('the last run of cron job %s failed (at %s); `%s` shows its error', v_row.jobname,
                     bubble_sync.alert_time(v_row.start_time), v_status);
      command := v_status;
      return next;
    end loop;
  end if;
end;
$fn$;

revoke all on function bubble_sync.alert_causes(interval, interval, text, timestamptz)
  from public, anon, authenticated, service_role;

-- alert_time: a moment as the messages write it, in UTC to the minute (2026-12-05 09:13 UTC).
create or replace function bubble_sync.alert_time(p_at timestamptz)
returns text
language sql
stable
parallel safe
set search_path = ''
as $fn$
  select coalesce(to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), 'unknown')
$fn$;

revoke all on function bubble_sync.alert_time(timestamptz) from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- The message
-- ---------------------------------------------------------------------------------------------------------

-- alert_message: the message telling p_causes (what is wrong now; none: the recovery) after p_announced (what
-- the last message told), for stack p_stack at p_now: Slack's {"text"} with the same as fields (status, stack,
-- at, causes each marked new or not, resolved).
create or replace function bubble_sync.alert_message(
  p_causes    jsonb,
  p_announced jsonb,
  p_stack     text,
  p_now       timestamptz
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $fn$
declare
  v_stack     text := coalesce(nullif(btrim(p_stack), ''), '<stack>');
  v_announced text[] := array(select e ->> 'cause' from jsonb_array_elements(p_announced) e);
  v_causes    jsonb;
  v_resolved  jsonb;
  v_text      text;
begin
  select coalesce(jsonb_agg(c || jsonb_build_object('new', not ((c ->> 'cause') = any (v_announced)))
                            order by c ->> 'since', c ->> 'cause'), '[]'::jsonb)
    into v_causes
    from jsonb_array_elements(coalesce(p_causes, '[]'::jsonb)) c;
  select coalesce(jsonb_agg(a order by a ->> 'since', a ->> 'cause'), '[]'::jsonb)
    into v_resolved
    from jsonb_array_elements(coalesce(p_announced, '[]'::jsonb)) a
   where not exists (select 1 from jsonb_array_elements(v_causes) c where c ->> 'cause' = a ->> 'cause');

  if jsonb_array_length(v_causes) = 0 then
    v_text := format(':large_green_circle: bubble-sync %s recovered at %s. Resolved:', v_stack,
                     bubble_sync.alert_time(p_now))
           || coalesce((select string_agg(format(E'\n• %s', a ->> 'what'), '' order by a ->> 'since')
                          from jsonb_array_elements(v_resolved) a), ' nothing named');
  else
    v_text := format(':red_circle: bubble-sync %s is UNHEALTHY (%s):', v_stack, bubble_sync.alert_time(p_now))
           || (select string_agg(format(E'\n• %s%s (since %s). Run: `%s`',
                                        case when (c ->> 'new')::boolean then '[new] ' else '' end,
                                        c ->> 'what', bubble_sync.alert_time((c ->> 'since')::timestamptz),
                                        c ->> 'command'), '' order by c ->> 'since', c ->> 'cause')
                 from jsonb_array_elements(v_causes) c);
  end if;

  return jsonb_build_object(
    'text', v_text,
    'status', case when jsonb_array_length(v_causes) = 0 then 'healthy' else 'unhealthy' end,
    'stack', v_stack,
    'at', p_now,
    'causes', v_causes,
    'resolved', v_resolved);
end;
$fn$;

revoke all on function bubble_sync.alert_message(jsonb, jsonb, text, timestamptz)
  from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- The cron job's command
-- ---------------------------------------------------------------------------------------------------------

-- evaluate_alerts: the command of the cron job bubble_sync.alerts (every minute). Finds the causes at p_now
-- (alert_causes with p_after, p_backlog, p_stack), keeps them in bubble_sync.alert_state, and posts a message
-- through pg_net to the Vault secret alert_webhook_url when they differ from what the last message announced
-- in a way worth telling (the top of this file). Says what it did: unchanged | still unhealthy (a cause went
-- away, others stand) | not posted: no webhook | posted: unhealthy | posted: recovered.
create or replace function bubble_sync.evaluate_alerts(
  p_after   interval,
  p_backlog interval,
  p_stack   text default null,
  p_now     timestamptz default null
)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
  v_now       timestamptz := coalesce(p_now, clock_timestamp());
  v_state     bubble_sync.alert_state;
  v_causes    jsonb;
  v_keys      text[];
  v_before    text[];
  v_announced text[];
  v_url       text;
  v_request   bigint;
begin
  if p_after is null or p_after < interval '0' or p_backlog is null or p_backlog < interval '0' then
    raise exception 'bubble_sync.evaluate_alerts: p_after and p_backlog must be given and not negative (got %, %)',
      p_after, p_backlog using errcode = '22023';
  end if;
  insert into bubble_sync.alert_state (id) values (1) on conflict (id) do nothing;
  -- one evaluation at a time: two could otherwise both post the same change
  select * into v_state from bubble_sync.alert_state s where s.id = 1 for update;

  select coalesce(jsonb_agg(jsonb_build_object('cause', c.cause, 'since', c.since, 'what', c.what,
                                               'command', c.command) order by c.since, c.cause), '[]'::jsonb)
    into v_causes
    from bubble_sync.alert_causes(p_after, p_backlog, p_stack, v_now) c;
  v_keys := array(select e ->> 'cause' from jsonb_array_elements(v_causes) e order by 1);
  v_before := array(select e ->> 'cause' from jsonb_array_elements(v_state.causes) e order by 1);
  v_announced := array(select e ->> 'cause' from jsonb_array_elements(v_state.announced) e order by 1);

  update bubble_sync.alert_state s
     set causes = v_causes,
         evaluated_at = v_now,
         changed_at = case when v_keys = v_before then s.changed_at else v_now end
   where s.id = 1;

  if v_keys = v_announced then
    return 'unchanged';
  end if;
  if cardinality(v_keys) > 0 and v_keys <@ v_announced then
    update bubble_sync.alert_state s set announced = v_causes where s.id = 1;
    return 'still unhealthy';
  end if;

  select s.decrypted_secret into v_url from vault.decrypted_secrets s where s.name = 'alert_webhook_url';
  if coalesce(btrim(v_url), '') = '' then
    return 'not posted: no webhook (Vault secret alert_webhook_url)';
  end if;
  v_request := net.http_post(
    url                  := btrim(v_url),
    body                 := bubble_sync.alert_message(v_causes, v_state.announced, p_stack, v_now),
    headers              := jsonb_build_object('Content-Type', 'application/json'),
    timeout_milliseconds := {{ http_timeout_ms }}
  );
  update bubble_sync.alert_state s
     set announced = v_causes, announced_at = v_now, request_id = v_request
   where s.id = 1;
  return case when cardinality(v_keys) = 0 then 'posted: recovered' else 'posted: unhealthy' end;
end;
$fn$;

revoke all on function bubble_sync.evaluate_alerts(interval, interval, text, timestamptz)
  from public, anon, authenticated, service_role;
