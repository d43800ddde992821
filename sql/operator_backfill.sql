-- bubble-sync: the queries of `python -m components backfill` (components/operator/backfill/).
--
-- Not applied to the database. components/operator/queries.py cuts this file at its `-- name: <query_name>`
-- lines. Parameters are psycopg's (`%(name)s`; a literal percent sign is `%%`). The slots in braces are filled
-- in by psycopg.sql before a query is sent: {source} the table (schema-qualified), {row} its name alone (the
-- row as a whole, as `to_jsonb({row})`), {key} the key column, {key_type} its type as format_type prints it
-- (from the catalogue), and {where} the rows to take: the operator's own --where condition, which is SQL the
-- operator wrote, run with the operator's privileges, and for a mapped table the mapping's row filter, both in
-- parentheses on lines of their own, ANDed (percent signs doubled, and on lines of their own so a trailing
-- comment cannot swallow what follows).

-- name: present
-- present: whether this database has the queue and the function that backfills it (this release's SQL).
select to_regclass('public.sync_queue') is not null as queue,
       to_regprocedure('bubble_sync.enqueue_backfill(regclass, text, text[], jsonb[], timestamptz)') is not null
         as backfill;

-- name: source
-- source: the table --from names, resolved as SQL resolves a table name (unquoted names folded to lower case,
-- an unqualified name by the search path), and what the signup trigger calls it in sync_queue.table_name.
select c.oid, n.nspname as schema_name, c.relname as table_name, c.relkind,
       bubble_sync.queue_table_name(n.nspname, c.relname) as queue_table_name
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where c.oid = pg_catalog.to_regclass(%(name)s);

-- name: columns
-- columns: the table's columns, in order, with their types.
select a.attname as name, pg_catalog.format_type(a.atttypid, a.atttypmod) as type
  from pg_catalog.pg_attribute a
 where a.attrelid = %(oid)s and a.attnum > 0 and not a.attisdropped
 order by a.attnum;

-- name: unique_columns
-- unique_columns: the columns a primary key or a unique index covers alone (no other column, no expression, no
-- condition): the keys whose values tell records apart and order them for keyset pagination.
select a.attname as name
  from pg_catalog.pg_index i
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
 where i.indrelid = %(oid)s and i.indisunique and i.indisvalid and i.indnkeyatts = 1
   and i.indpred is null and i.indexprs is null;

-- name: triggers
-- triggers: the table's signup triggers (bubble_sync.enqueue_change) and their arguments (tgargs: each
-- argument ends with a zero byte): the key column first, then the payload's allow-list.
select t.tgname as name, t.tgnargs as nargs, t.tgargs as args
  from pg_catalog.pg_trigger t
 where t.tgrelid = %(oid)s and not t.tgisinternal
   and t.tgfoid = pg_catalog.to_regprocedure('bubble_sync.enqueue_change()')
 order by t.tgname;

-- name: mapping_trigger
-- mapping_trigger: the stack's trigger of a mapping on its table (bubble_sync_<mapping>, executing
-- bubble_sync.enqueue_mapped), with tgenabled ('D' when disabled); no row when it is not there.
select t.tgenabled::text as enabled
  from pg_catalog.pg_trigger t
 where t.tgrelid = %(oid)s and t.tgname = %(name)s and not t.tgisinternal
   and t.tgfoid = pg_catalog.to_regprocedure('bubble_sync.enqueue_mapped()');

-- name: quiet_dispatch
-- quiet_dispatch: no immediate-dispatch wake for the rest of this transaction (sql/functions/dispatch.sql).
select pg_catalog.set_config('bubble_sync.dispatch', 'off', true);

-- name: accepts_backfill
-- accepts_backfill: inserts one BACKFILL row (the caller rolls it back) to learn whether the queue takes one:
-- a queue created before backfills refuses the operation until `pulumi up` widens its constraint, and an
-- adopted table may have constraints of its own.
insert into public.sync_queue (table_name, record_id, operation, payload)
values ('bubble_sync.backfill', 'probe', 'BACKFILL', '{}'::jsonb);

-- name: check_where
-- check_where: parses and plans --where against the table without reading a row.
select 1
  from {source}
 where (
{where}
)
 limit 0;

-- name: count
-- count: the rows --where selects (matching), those with a NULL key (left out: the trigger refuses them
-- too), and those whose record already has a row in the queue, whatever its state (skipped).
select count(*) as matching,
       count(*) filter (where {row}.{key} is null) as null_keys,
       count(*) filter (where exists (select 1
                                        from public.sync_queue q  -- sync_queue_record_idx
                                       where q.table_name = %(queue_table_name)s
                                         and q.record_id = to_jsonb({row}) ->> %(key_column)s)) as already_queued
  from {source}
 where (
{where}
);

-- name: chunk_settings
-- chunk_settings: a chunk waits at most this long for a lock (a record's, taken as enqueue takes it, or the
-- dispatch row): less than deadlock_timeout, so that a chunk meeting a transaction that changes the same
-- records in another order gives way itself (and is tried again) instead of the application's transaction.
set local lock_timeout = '500ms';

-- name: queue_chunk
-- queue_chunk: the next chunk in key order after %(after)s (NULL: the first), at most %(chunk_size)s rows,
-- handed to bubble_sync.enqueue_backfill: how many rows the chunk had (scanned), the last key (as text, read
-- back with the key's own type), and how many were queued and skipped. Run with bound parameters, never as a
-- prepared statement, so the planner sees %(after)s and scans the key's index from there.
with page as materialized (
  select {row}.{key} as backfill_key, to_jsonb({row}) as backfill_row
    from {source}
   where {row}.{key} is not null
     and (%(after)s::text is null or {row}.{key} > cast(%(after)s::text as {key_type}))
     and (
{where}
)
   order by {row}.{key}
   limit %(chunk_size)s
)
select (select count(*) from page) as scanned,
       (select p.backfill_key::text from page p order by p.backfill_key desc limit 1) as last_key,
       b.queued, b.skipped
  from bubble_sync.enqueue_backfill(%(source_oid)s::oid::regclass, %(key_column)s, %(fields)s::text[],
                                    array(select p.backfill_row from page p order by p.backfill_key)) as b;

-- name: progress
-- progress: the backfilled rows of the tables %(queue_table_names)s (one, or each mapping's of a run of several)
-- by state: synced (completed), failed for good, and outstanding (pending, processing, or failed and retrying).
select count(*) filter (where q.status = 'completed') as synced,
       count(*) filter (where q.status = 'failed' and q.retry_count >= q.max_retries) as failed,
       count(*) filter (where q.status in ('pending', 'processing')
                           or (q.status = 'failed' and q.retry_count < q.max_retries)) as outstanding,
       count(*) filter (where q.status = 'failed' and q.retry_count < q.max_retries) as retrying
  from public.sync_queue q  -- sync_queue_record_idx
 where q.table_name = any(%(queue_table_names)s::text[])
   and q.operation = 'BACKFILL';
