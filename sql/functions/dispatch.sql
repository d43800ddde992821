-- bubble-sync: immediate dispatch, the function behind the optional trigger in sql/dispatch_trigger.sql.
--
-- Goal: a new queue row wakes the edge function within about a second, instead of waiting for the minute
-- cron, without one HTTP call per row. The protocol, on the one row of bubble_sync.dispatch_state:
--
--   insert (this trigger, once per INSERT statement)     claim('process_queue_data_api')
--   ----------------------------------------------       -----------------------------------------------
--   lock the row (FOR UPDATE), held until commit          wake outstanding? mark it consumed (an update,
--   no wake outstanding?  post one, mark it requested       which waits for every inserter holding the lock)
--   wake outstanding?     do nothing                      then claim, with a fresh snapshot
--
-- Why no row is stranded: an inserter that saw an outstanding wake holds the lock until it commits, so the claim
-- that consumes that wake waits for it and then sees its rows. An inserter that comes after the consumption
-- sees no outstanding wake and posts its own. A claim that finds no wake outstanding waits for nobody: any
-- inserter busy at that moment is posting a wake of its own. A worker keeps claiming until a claim comes back
-- short, so rows beyond one batch are taken by its later claims. (Claims serialise on the row only while a wake
-- is outstanding, and only for as long as the claiming transaction: claim in short transactions.)
--
-- The bound: a post needs a consumption (a claim) since the previous post, so the number of HTTP calls is at
-- most 1 + the number of process claims, however many rows are inserted. With no worker running, any burst
-- costs exactly one call; a wake older than the re-wake horizon counts as lost (worker crashed, request dropped)
-- and is replaced, adding at most one call per horizon.
--
-- The cost: inserting transactions take turns on that row lock from their trigger until they commit. Keep
-- enqueueing transactions short; for a bulk backfill, `set local bubble_sync.dispatch = 'off'` skips the
-- trigger for that transaction and lets the minute cron pick the rows up.

-- dispatch_wake: statement trigger (AFTER INSERT ON public.sync_queue, with `referencing new table as
-- new_rows`) that posts a process_queue_data_api wake unless one is already outstanding. Never fails the
-- insert: when the wake cannot be sent (say, a Vault secret is missing) it warns and leaves the rows to the
-- cron, whose run then fails visibly. SECURITY DEFINER: inserters need neither Vault nor pg_net.
create or replace function bubble_sync.dispatch_wake()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
  v_now   timestamptz := clock_timestamp();
  v_state record;
begin
  if coalesce(current_setting('bubble_sync.dispatch', true), '') = 'off' then
    return null;
  end if;
  if not exists (select 1 from new_rows n
                  where bubble_sync.is_due('process_queue_data_api', n.status, n.retry_count, n.max_retries,
                                           n.next_retry_at, v_now)) then
    return null;
  end if;

  begin
    select s.wake_requested_at, s.wake_consumed_at
      into v_state
      from bubble_sync.dispatch_state s
     where s.id = 1
       for update;

    if v_state.wake_requested_at > coalesce(v_state.wake_consumed_at, '-infinity'::timestamptz)
       and v_state.wake_requested_at > v_now - {{ dispatch_rewake_after }} then
      return null;  -- a wake is on its way; the claim that consumes it waits for us and sees our rows
    end if;

    perform bubble_sync.invoke_function('process_queue_data_api');
  exception when others then
    -- e.g. a missing Vault secret, or a REPEATABLE READ inserter meeting a concurrent consumption
    raise warning 'bubble_sync: immediate dispatch skipped (%); the minute cron will pick the rows up', sqlerrm;
    return null;
  end;

  update bubble_sync.dispatch_state set wake_requested_at = v_now where id = 1;
  return null;
end;
$fn$;

revoke all on function bubble_sync.dispatch_wake() from public, anon, authenticated, service_role;
