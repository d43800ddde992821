-- bubble-sync: immediate dispatch switch.
--
-- Applied only when the stack's dispatch setting is on; with it off the trigger does not exist and new rows
-- wait for the minute cron (`drop trigger if exists bubble_sync_dispatch on public.sync_queue;` turns it off
-- on a live database). How the debounce works, and why no row is stranded: sql/functions/dispatch.sql.

-- wake the edge function once per inserting statement, at most one outstanding wake at a time
create or replace trigger bubble_sync_dispatch
  after insert on public.sync_queue
  referencing new table as new_rows
  for each statement
  execute function bubble_sync.dispatch_wake();
