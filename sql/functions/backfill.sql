-- bubble-sync: queueing the records a table held before its signup trigger existed (the backfill).
--
-- `python -m components backfill` pages through the source table by its key (keyset pagination, one
-- transaction per chunk; its queries are in sql/operator_backfill.sql) and hands each chunk's rows to
-- bubble_sync.enqueue_backfill, which queues the records the queue has never seen, as operation 'BACKFILL'.
-- A backfilled row is what the signup trigger (bubble_sync.enqueue_change) would have queued for the same
-- record: the same table_name, record_id and payload, so a later change of the record, or a re-run of the
-- backfill, meets the same row. Then:
--   claim      takes pending changes first and backfilled rows after them (sql/functions/lease.sql), so a
--              backfill of a million records never holds a signup back;
--   the worker looks backfilled rows up by their key before it creates anything (one search for up to 100
--              keys), completes those Bubble already has with their id, and creates the rest in bulk
--              (supabase/functions/bubble_sync/backfill.ts);
--   enqueue    folds a change of a record whose backfilled row still waits into that row, which stays a
--              BACKFILL (bubble_sync.enqueue keeps a waiting create a create).

-- ---------------------------------------------------------------------------------------------------------
-- Backfill
-- ---------------------------------------------------------------------------------------------------------

-- enqueue_backfill: queues, as operation 'BACKFILL', each row of p_rows (to_jsonb of a row of p_source) whose
-- record has no row in public.sync_queue yet, whatever that row's state: queued by the trigger or an earlier
-- run, synced, or failed for good (`requeue` is for those). Returns how many rows it queued and how many it
-- skipped (already queued, or a NULL key: the trigger refuses those). record_id is the row's p_key_column and
-- the payload its p_fields as the trigger writes them: for a table of the stack's mappings
-- (bubble_sync.mappings) converted for Bubble (bubble_sync.mapped_payload, as enqueue_mapped), otherwise
-- bubble_sync.change_payload's (NULL or empty p_fields: every column but credentials). Each record is locked as bubble_sync.enqueue locks it, so a change of the same
-- record by its trigger right now is either seen (and the record skipped) or waits for this chunk to commit
-- and then folds into its waiting row. The caller keeps the chunk's transaction short: the lock is held to
-- its end.
create or replace function bubble_sync.enqueue_backfill(
  p_source     regclass,
  p_key_column text,
  p_fields     text[],
  p_rows       jsonb[],
  p_now        timestamptz default null
)
returns table (queued integer, skipped integer)
language plpgsql
set search_path = ''
as $fn$
declare
  v_now     timestamptz := coalesce(p_now, clock_timestamp());
  v_table   text;
  v_missing text;
  v_records text[];
  v_record  text;
  v_known   text[] := '{}';
  v_queued  integer;
  v_mapped  boolean;
begin
  select bubble_sync.queue_table_name(n.nspname, c.relname)
    into v_table
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_source;
  if v_table is null then
    raise exception 'bubble_sync.enqueue_backfill: no table %', p_source using errcode = '22023';
  end if;
  v_mapped := exists (select 1 from bubble_sync.mappings m where m.table_name = v_table);
  if p_key_column is null or p_key_column = '' then
    raise exception 'bubble_sync.enqueue_backfill: the key column is required' using errcode = '22023';
  end if;
  if coalesce(cardinality(p_rows), 0) = 0 then
    queued := 0;
    skipped := 0;
    return next;
    return;
  end if;
  select min(f) into v_missing
    from unnest(array_prepend(p_key_column, coalesce(p_fields, '{}'::text[]))) f
   where not p_rows[1] ? f;
  if v_missing is not null then
    raise exception 'bubble_sync.enqueue_backfill: % has no column %', p_source, quote_ident(v_missing)
      using errcode = '22023';
  end if;

  -- The chunk's records (a NULL key is no record: the trigger refuses those), each locked as
  -- bubble_sync.enqueue locks one record, in one order.
  v_records := array(select distinct r.source_row ->> p_key_column
                       from unnest(p_rows) as r(source_row)
                      where r.source_row ->> p_key_column is not null
                      order by 1);
  perform pg_advisory_xact_lock(hashtextextended('bubble_sync.enqueue:' || v_table || ':' || k.record_id, 0))
     from unnest(v_records) as k(record_id);

  -- New statements, so new snapshots: they see the rows of every enqueue that held one of those locks. One
  -- probe of sync_queue_record_idx per record, with both its columns: a join (or `= any`) is planned from
  -- statistics taken before the backfill grew the queue, and then reads every row of the table, per chunk.
  foreach v_record in array v_records loop
    if exists (select 1
                 from public.sync_queue q  -- sync_queue_record_idx
                where q.table_name = v_table and q.record_id = v_record) then
      v_known := v_known || v_record;
    end if;
  end loop;

  with chunk as (
    select distinct on (r.source_row ->> p_key_column)
           r.source_row ->> p_key_column as record_id, r.source_row, r.position
      from unnest(p_rows) with ordinality as r(source_row, position)
     where r.source_row ->> p_key_column is not null
     order by r.source_row ->> p_key_column, r.position
  ), added as (
    insert into public.sync_queue (table_name, record_id, operation, payload, status, retry_count, max_retries,
                                   created_at, updated_at)
    select v_table, c.record_id, 'BACKFILL',
           case when v_mapped then bubble_sync.mapped_payload(c.source_row, p_source, p_fields)
                else bubble_sync.change_payload(c.source_row, p_fields) end,
           'pending', 0,
           {{ default_max_retries }}, v_now, v_now
      from chunk c
     where c.record_id <> all (v_known)
     order by c.position
    returning 1
  )
  select count(*)::integer into v_queued from added;

  queued := v_queued;
  skipped := cardinality(p_rows) - v_queued;
  return next;
end;
$fn$;

revoke all on function bubble_sync.enqueue_backfill(regclass, text, text[], jsonb[], timestamptz)
  from public, anon, authenticated, service_role;
