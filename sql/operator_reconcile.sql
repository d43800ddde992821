-- bubble-sync: the queries of `python -m components reconcile` (components/operator/reconcile/).
--
-- Not applied to the database. components/operator/reconcile/queries.py cuts this file at its `-- name:
-- <query_name>` lines, as components/operator/queries.py cuts the others. Parameters are psycopg's
-- (`%(name)s`; a literal percent sign is `%%`). The slots in braces are filled in by psycopg.sql before a query
-- is sent: {source} the mapping's table (schema-qualified), {row} its name alone (the row as a whole), {key}
-- the mapping's key column, {key_type} its type as format_type prints it (from the catalogue), and {where} the
-- rows to compare: the mapping's row filter and the operator's --where, each in parentheses on lines of their
-- own, ANDed.
--
-- Whether Bubble holds what Supabase holds is decided by bubble_sync.compare_with_bubble alone
-- (sql/functions/compare.sql); nothing here compares values. Bubble's things, as reconcile read them, wait in
-- a temporary table of the session (reconcile_things), so they cost the client no memory and vanish with the
-- session, whatever ends it.

-- name: present
-- present: whether this database has the functions reconcile needs (this release's SQL).
select to_regprocedure('bubble_sync.compare_with_bubble(text, text[], jsonb)') is not null as compare,
       to_regprocedure('bubble_sync.take_requests(integer, integer, integer, timestamptz)') is not null as gate,
       to_regprocedure('bubble_sync.enqueue_delete_duplicate(text, text, text, timestamptz)') is not null
         as delete_duplicate;

-- name: source
-- source: a mapping's table and the type of its key column, as the catalogue has them.
select c.oid, pg_catalog.format_type(a.atttypid, a.atttypmod) as key_type
  from pg_catalog.pg_class c
  left join pg_catalog.pg_attribute a
    on a.attrelid = c.oid and a.attname = %(key)s and a.attnum > 0 and not a.attisdropped
 where c.oid = pg_catalog.to_regclass(%(table)s);

-- name: check_where
-- check_where: parses and plans the row filter against the table without reading a row.
select 1
  from {source}
 where (
{where}
)
 limit 0;

-- name: count
-- count: the records to compare (a NULL key is no record: the trigger refuses those).
select count(*) as records
  from {source}
 where {row}.{key} is not null
   and (
{where}
);

-- name: chunk
-- chunk: the next records in key order after %(after)s (NULL: the first), at most %(chunk_size)s: their ids as
-- the queue writes them (text), and the last key. Run with bound parameters, so the planner sees %(after)s and
-- scans the key's index from there.
select coalesce(array_agg(p.record_key::text order by p.record_key), array[]::text[]) as record_ids,
       (array_agg(p.record_key::text order by p.record_key desc))[1] as last_key
  from (select {row}.{key} as record_key
          from {source}
         where {row}.{key} is not null
           and (%(after)s::text is null or {row}.{key} > cast(%(after)s::text as {key_type}))
           and (
{where}
)
         order by {row}.{key}
         limit %(chunk_size)s) p;

-- name: things_table
-- things_table: where Bubble's things wait while reconcile compares: one row per thing of a (data type, key
-- field), in the order they were read (`position`: the first of a record's things is the one compared when
-- the record is linked to none), `compared` once a record they name was compared.
create temporary table if not exists reconcile_things (
  data_type text    not null,
  key_field text    not null,
  bubble_id text    not null,
  thing_key text,
  position  bigserial,
  thing     jsonb   not null,
  compared  boolean not null default false,
  primary key (data_type, key_field, bubble_id)
);

-- name: things_index
create index if not exists reconcile_things_key on reconcile_things (data_type, key_field, thing_key);

-- name: analyze_things
-- analyze_things: the table's statistics once a scan filled it (autovacuum never analyzes a temporary table),
-- so that a chunk's things are found by the index, not by reading them all.
analyze pg_temp.reconcile_things;

-- name: add_things
-- add_things: Bubble's things %(things)s (a JSON array, as the Data API returns them) of a data type, each
-- under its key (the key field's value); a thing read again replaces what was read before.
insert into pg_temp.reconcile_things as t (data_type, key_field, bubble_id, thing_key, thing)
select %(data_type)s, %(key_field)s, e.value ->> '_id', e.value ->> %(key_field)s, e.value
  from jsonb_array_elements(%(things)s::jsonb) with ordinality e
 where e.value ->> '_id' is not null
 order by e.ordinality
    on conflict (data_type, key_field, bubble_id)
    do update set thing_key = excluded.thing_key, thing = excluded.thing, compared = false;

-- name: forget_things
-- forget_things: the things read for these keys, before they are read again.
delete from pg_temp.reconcile_things t
 where t.data_type = %(data_type)s and t.key_field = %(key_field)s and t.thing_key = any(%(keys)s::text[]);

-- name: compare
-- compare: what differs between the records %(record_ids)s of mapping %(mapping)s and the things read for
-- them, as bubble_sync.compare_with_bubble says; the things are then marked compared. The keys are joined,
-- one probe of reconcile_things_key each (`= any(array(...))` of a subquery is no constant: it was compared
-- with every row of the table, 100,000 rows times 1,000 keys a chunk).
with keys as (
  select %(prefix)s || i as thing_key from unnest(%(record_ids)s::text[]) i
), things as (
  select coalesce(jsonb_agg(t.thing order by t.position), '[]'::jsonb) as things
    from keys k
    join pg_temp.reconcile_things t
      on t.data_type = %(data_type)s and t.key_field = %(key_field)s and t.thing_key = k.thing_key
), marked as (
  update pg_temp.reconcile_things t
     set compared = true
    from keys k
   where t.data_type = %(data_type)s and t.key_field = %(key_field)s and t.thing_key = k.thing_key
)
select c.record_id, c.difference, c.fields, c.bubble_ids
  from things, bubble_sync.compare_with_bubble(%(mapping)s, %(record_ids)s::text[], things.things) c
 order by c.record_id, c.difference;

-- name: uncompared
-- uncompared: the records named by things read for mapping %(prefix)s that no comparison took yet: their source
-- row is gone or filtered out (or came after its chunk), so they are compared on their own.
select distinct substr(t.thing_key, length(%(prefix)s) + 1) as record_id
  from pg_temp.reconcile_things t
 where t.data_type = %(data_type)s and t.key_field = %(key_field)s
   and starts_with(t.thing_key, %(prefix)s) and not t.compared
 order by 1;

-- name: counted_things
-- counted_things: the things read that carry a key of mapping %(prefix)s.
select count(*) as things
  from pg_temp.reconcile_things t
 where t.data_type = %(data_type)s and t.key_field = %(key_field)s and starts_with(t.thing_key, %(prefix)s);

-- name: archived
-- archived: of the things %(bubble_ids)s, those holding every value a soft delete sets (%(set_fields)s, the
-- mapping's onDelete set), as bubble_sync.same_value compares them: a record deleted in Supabase and archived
-- in Bubble, as the mapping says.
select t.bubble_id
  from pg_temp.reconcile_things t
  cross join jsonb_each(%(set_fields)s::jsonb) f
 where t.data_type = %(data_type)s and t.key_field = %(key_field)s and t.bubble_id = any(%(bubble_ids)s::text[])
 group by t.bubble_id
having bool_and(bubble_sync.same_value(f.value, t.thing -> f.key));

-- name: links
-- links: the Bubble thing the queue links each record to (bubble_sync.links), when it links one.
select l.record_id, l.bubble_id
  from bubble_sync.links l
 where l.table_name = %(table_name)s and l.record_id = any(%(record_ids)s::text[]);

-- name: stale_values
-- stale_values: for --show-values, each of %(fields)s of a record: the value the source row has, as the trigger
-- converts it (a reference: the Bubble id its record is linked to), and the value of Bubble's thing
-- %(bubble_id)s (a user's built-in email where Bubble keeps it). Shown, never compared here.
with source as (
  select bubble_sync.mapped_payload(to_jsonb({row}), %(source_oid)s::oid::regclass, %(columns)s::text[]) as payload
    from {source}
   where {row}.{key} = cast(%(record_id)s::text as {key_type})
), bubble as (
  select t.thing
    from pg_temp.reconcile_things t
   where t.data_type = %(data_type)s and t.key_field = %(key_field)s and t.bubble_id = %(bubble_id)s
)
select f.item ->> 'field' as field,
       f.item ->> 'column' as column_name,
       case when f.item ? 'refTable'
            then (select to_jsonb(l.bubble_id)
                    from bubble_sync.links l
                   where l.table_name = f.item ->> 'refTable'
                     and l.record_id = s.payload ->> (f.item ->> 'column'))
            else s.payload -> (f.item ->> 'column') end as source_value,
       case when m.definition ->> 'dataType' = 'user' and f.item ->> 'field' = 'email'
            then coalesce(b.thing #> array['authentication', 'email', 'email'], b.thing -> 'email')
            else b.thing -> (f.item ->> 'field') end as bubble_value
  from bubble_sync.mappings m
  cross join lateral jsonb_array_elements(m.definition -> 'fields') with ordinality f(item, position)
  left join source s on true
  left join bubble b on true
 where m.name = %(mapping)s and f.item ->> 'field' = any(%(fields)s::text[])
 order by f.position;

-- name: take_requests
-- take_requests: turns at Bubble's rate limit, from the pacing every worker shares (sql/functions/gate.sql).
select g.granted, g.first_in_ms, g.spacing_ms, g.breaker, g.unavailable_since, g.failures_in_a_row
  from bubble_sync.take_requests(%(wanted)s, %(per_minute)s, %(max_wait_ms)s) g;

-- name: note_answer
-- note_answer: what Bubble did with a request, for the breaker and a 429's pause everyone keeps.
select n.breaker, n.unavailable_since, n.failures_in_a_row
  from bubble_sync.note_bubble_answer(%(answer)s, %(error)s, %(retry_after_seconds)s) n;

-- name: repair_upsert
-- repair_upsert: queues operation %(operation)s (INSERT or UPDATE) of each record %(record_ids)s through
-- bubble_sync.enqueue, the payload what the mapping's trigger queues for the row as it is now
-- (bubble_sync.mapped_payload), for rows the mapping syncs (its where holds); how many were queued.
select count(*) as queued
  from {source}
 cross join lateral bubble_sync.enqueue(
         %(queue_table)s, {row}.{key}::text, %(operation)s,
         bubble_sync.mapped_payload(to_jsonb({row}), %(source_oid)s::oid::regclass, %(columns)s::text[])) e
 where {row}.{key} = any(cast(%(record_ids)s::text[] as {key_type}[]))
   and bubble_sync.row_matches({row}, %(mapping_where)s);

-- name: repair_delete
-- repair_delete: queues a DELETE of each record %(record_ids)s whose source row is gone or no longer matches the
-- mapping's where, as its trigger does when a row leaves the synced rows (the payload of the row, if any).
with source as (
  select {row}.{key}::text as record_id, to_jsonb({row}) as source_row,
         bubble_sync.row_matches({row}, %(mapping_where)s) as synced
    from {source}
   where {row}.{key}::text = any(%(record_ids)s::text[])
)
select count(*) as queued
  from unnest(%(record_ids)s::text[]) r(record_id)
  left join source s on s.record_id = r.record_id
 cross join lateral bubble_sync.enqueue(
         %(queue_table)s, r.record_id, 'DELETE',
         case when s.source_row is null then jsonb_build_object()
              else bubble_sync.mapped_payload(s.source_row, %(source_oid)s::oid::regclass, %(columns)s::text[])
         end) e
 where s.source_row is null or not s.synced;

-- name: repair_delete_duplicate
-- repair_delete_duplicate: queues the delete of Bubble's thing %(bubble_id)s, a duplicate of record
-- %(record_id)s, where the function supports it (bubble_sync.enqueue_delete_duplicate).
select 1 as queued from bubble_sync.enqueue_delete_duplicate(%(queue_table)s, %(record_id)s, %(bubble_id)s);

-- name: repair_progress
-- repair_progress: the records %(record_ids)s of table %(queue_table)s as the queue has them now: outstanding
-- while a row of the record waits (pending, processing, or failed with retries left), else failed for good when
-- its newest row failed for good, else synced.
select count(*) filter (where w.outstanding) as outstanding,
       count(*) filter (where not w.outstanding and w.failed) as failed,
       count(*) filter (where not w.outstanding and not w.failed) as synced
  from unnest(%(record_ids)s::text[]) r(record_id)
 cross join lateral (
   select coalesce(bool_or(q.status in ('pending', 'processing')
                           or (q.status = 'failed' and q.retry_count < q.max_retries)), false) as outstanding,
          coalesce((array_agg(q.status = 'failed' and q.retry_count >= q.max_retries
                              order by q.queue_order desc nulls last, q.created_at desc))[1], false) as failed
     from public.sync_queue q  -- sync_queue_record_idx
    where q.table_name = %(queue_table)s and q.record_id = r.record_id
 ) w;
