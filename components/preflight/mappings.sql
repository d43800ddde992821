-- bubble-sync: the read-only queries of preflight's mapping checks (components/preflight/mappings.py).
--
-- Not applied to the database. Cut at its `-- name: <query_name>` lines by the same reader as
-- sql/operator_status.sql (components/operator/queries.py `split_queries`). Parameters are psycopg's.

-- name: session
-- session: this connection refuses to write and gives up on a statement after 15 s (as database.sql's).
select set_config('default_transaction_read_only', 'on', false),
       set_config('statement_timeout', '15s', false);

-- name: columns
-- columns: the columns of the table %(table)s (as SQL names it; no row when there is no such table) with what
-- decides what Bubble gets (bubble_sync.bubble_value): the base type of a domain, without modifiers, whether
-- it is an enum, and for an array its element type.
select a.attname as name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
       pg_catalog.format_type(b.oid, null) as base,
       b.typtype = 'e' as is_enum,
       pg_catalog.format_type(e.oid, null) as element,
       coalesce(e.typtype = 'e', false) as element_is_enum
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_type t on t.oid = a.atttypid
  join pg_catalog.pg_type b on b.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
  left join pg_catalog.pg_type e on e.oid = b.typelem and b.typcategory = 'A'
 where a.attrelid = pg_catalog.to_regclass(%(table)s) and a.attnum > 0 and not a.attisdropped
 order by a.attnum;
