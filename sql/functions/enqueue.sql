-- bubble-sync: putting changes into the queue (the producer's side).
--
-- Why one file: the producer's side is one contract: enqueue's folding rules and the triggers that feed it
-- (enqueue_change, enqueue_mapped, with their payload builders) are read together.
--
-- Either call bubble_sync.enqueue(...) from your own code, or attach the ready-made trigger function
-- bubble_sync.enqueue_change() to the table your signups land in:
--
--     create trigger bubble_sync_enqueue
--       after insert or update on public.profiles
--       for each row execute function bubble_sync.enqueue_change('id', 'email', 'first_name', 'last_name');
--
-- The first argument names the key column (default 'id'); any further arguments are the payload's allow-list.

-- ---------------------------------------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------------------------------------

-- enqueue: queues one change of one record for Bubble and returns the queue row. A change to a record that
-- already waits (pending, not yet claimed) replaces the waiting row, so a burst of edits costs one Bubble call:
-- the newest payload wins, a waiting create stays a create (INSERT, or an adopted table's own create operation
-- such as SIGNUP_ATOMIC), and the row keeps its age, its place in the queue order, attempts and any Retry-After.
-- A DELETE replaces whatever waits (nothing of it matters once the record is gone). A create or a modify is not
-- folded into a waiting DELETE, nor into anything queued before one: the record was deleted and made again
-- (same key), so Bubble must first lose the old thing, then get the new one.
-- The replacement is a delete plus an insert, so the dispatch trigger sees an insert and wakes the worker. A
-- row already claimed is left alone; the change then gets a new row of its own. The delete of a duplicate
-- (bubble_sync.enqueue_delete_duplicate) concerns another thing than the record's: it is never replaced, and
-- the record's changes fold as if it were not there.
create or replace function bubble_sync.enqueue(
  p_table_name  text,
  p_record_id   text,
  p_operation   text,
  p_payload     jsonb,
  p_max_retries integer default null,
  p_now         timestamptz default null
)
returns public.sync_queue
language plpgsql
set search_path = ''
as $fn$
declare
  v_now          timestamptz := coalesce(p_now, clock_timestamp());
  v_prev         record;
  v_last_delete  bigint;
  v_row          public.sync_queue;
begin
  if p_operation is null or p_operation not in ('INSERT', 'UPDATE', 'DELETE') then
    raise exception 'bubble_sync.enqueue: operation must be INSERT, UPDATE or DELETE, got %',
      coalesce(quote_literal(p_operation), 'NULL') using errcode = '22023';
  end if;
  if p_table_name is null or p_table_name = '' or p_record_id is null or p_record_id = '' then
    raise exception 'bubble_sync.enqueue: table name and record id are required (got %, %)',
      coalesce(quote_literal(p_table_name), 'NULL'), coalesce(quote_literal(p_record_id), 'NULL')
      using errcode = '22023';
  end if;
  if p_max_retries is not null and p_max_retries < 0 then
    raise exception 'bubble_sync.enqueue: max_retries must not be negative, got %', p_max_retries
      using errcode = '22023';
  end if;

  -- One enqueue per record at a time (until commit): otherwise two concurrent changes could both find no
  -- waiting row and queue the record twice. Records whose keys collide on the hash merely take turns.
  perform pg_advisory_xact_lock(hashtextextended('bubble_sync.enqueue:' || p_table_name || ':' || p_record_id, 0));

  if p_operation <> 'DELETE' then
    select max(coalesce(q.queue_order, 0)) into v_last_delete
      from public.sync_queue q
     where q.table_name = p_table_name and q.record_id = p_record_id and q.status = 'pending'
       and q.operation = 'DELETE' and not q.payload ? 'bubble_sync_duplicate';
  end if;

  with replaced as (
    delete from public.sync_queue q
     where q.table_name = p_table_name
       and q.record_id = p_record_id
       and q.status = 'pending'
       and not (q.operation = 'DELETE' and q.payload ? 'bubble_sync_duplicate')
       and (p_operation = 'DELETE'
            or (q.operation is distinct from 'DELETE' and coalesce(q.queue_order, 0) > coalesce(v_last_delete, -1)))
    returning q.operation, q.created_at, q.queue_order, q.retry_count, q.max_retries, q.next_retry_at,
              q.error_message
  )
  select (array_agg(r.operation order by r.queue_order, r.created_at)
            filter (where r.operation is distinct from 'UPDATE'))[1] as create_operation,
         min(r.created_at)              as created_at,
         min(r.queue_order)             as queue_order,
         max(r.retry_count)             as retry_count,
         max(r.max_retries)             as max_retries,
         max(r.next_retry_at)           as next_retry_at,
         max(r.error_message)           as error_message
    into v_prev
    from replaced r;

  insert into public.sync_queue (table_name, record_id, operation, payload, status, retry_count, max_retries,
                                 next_retry_at, error_message, created_at, updated_at, queue_order)
  values (p_table_name,
          p_record_id,
          case when p_operation = 'DELETE' then p_operation else coalesce(v_prev.create_operation, p_operation) end,
          coalesce(p_payload, '{}'::jsonb),
          'pending',
          coalesce(v_prev.retry_count, 0),
          coalesce(p_max_retries, v_prev.max_retries, {{ default_max_retries }}),
          v_prev.next_retry_at,
          v_prev.error_message,
          coalesce(v_prev.created_at, v_now),
          v_now,
          coalesce(v_prev.queue_order, nextval('public.sync_queue_queue_order_seq'::regclass)))
  returning * into v_row;

  return v_row;
end;
$fn$;

revoke all on function bubble_sync.enqueue(text, text, text, jsonb, integer, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.enqueue(text, text, text, jsonb, integer, timestamptz) to service_role;

-- enqueue_delete_duplicate: queues the delete of one given Bubble thing, p_bubble_id, that carries record
-- p_record_id's key beside the thing the record is linked to (a duplicate `reconcile --repair
-- --delete-duplicates` found), and returns the queue row: a DELETE whose payload names the thing,
-- {"bubble_sync_duplicate": <id>}. It takes its place behind the record's waiting changes and is never merged
-- with them. Its bubble_id stays empty until it is claimed: the claim fills in the record's link as for any
-- row, and the function refuses to delete the thing named when it is that linked thing (the link may have moved
-- to it since). Completing it leaves the record's link alone. Whatever the mapping's onDelete says, the
-- duplicate is deleted: it is an extra thing, not the record.
create or replace function bubble_sync.enqueue_delete_duplicate(
  p_table_name text,
  p_record_id  text,
  p_bubble_id  text,
  p_now        timestamptz default null
)
returns public.sync_queue
language plpgsql
set search_path = ''
as $fn$
declare
  v_now timestamptz := coalesce(p_now, clock_timestamp());
  v_row public.sync_queue;
begin
  if p_table_name is null or p_table_name = '' or p_record_id is null or p_record_id = ''
     or p_bubble_id is null or p_bubble_id = '' then
    raise exception 'bubble_sync.enqueue_delete_duplicate: table name, record id and Bubble id are required '
      '(got %, %, %)', coalesce(quote_literal(p_table_name), 'NULL'),
      coalesce(quote_literal(p_record_id), 'NULL'), coalesce(quote_literal(p_bubble_id), 'NULL')
      using errcode = '22023';
  end if;

  -- the record's enqueue lock (bubble_sync.enqueue): one change of the record at a time
  perform pg_advisory_xact_lock(hashtextextended('bubble_sync.enqueue:' || p_table_name || ':' || p_record_id, 0));

  if exists (select 1
               from bubble_sync.links l
              where l.table_name = p_table_name and l.record_id = p_record_id and l.bubble_id = p_bubble_id) then
    raise exception 'bubble_sync.enqueue_delete_duplicate: Bubble thing % is the one record %:% is linked to, '
      'not a duplicate: nothing queued', p_bubble_id, p_table_name, p_record_id using errcode = '22023';
  end if;

  select * into v_row
    from public.sync_queue q
   where q.table_name = p_table_name and q.record_id = p_record_id and q.status = 'pending'
     and q.operation = 'DELETE' and q.payload ->> 'bubble_sync_duplicate' = p_bubble_id
   order by q.queue_order
   limit 1;
  if found then
    return v_row;  -- queued already and still waiting: once is enough
  end if;

  insert into public.sync_queue (table_name, record_id, operation, payload, status, bubble_id, retry_count,
                                 max_retries, created_at, updated_at, queue_order)
  values (p_table_name, p_record_id, 'DELETE', jsonb_build_object('bubble_sync_duplicate', p_bubble_id),
          'pending', null, 0, {{ default_max_retries }}, v_now, v_now,
          nextval('public.sync_queue_queue_order_seq'::regclass))
  returning * into v_row;
  return v_row;
end;
$fn$;

revoke all on function bubble_sync.enqueue_delete_duplicate(text, text, text, timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.enqueue_delete_duplicate(text, text, text, timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- What a change carries: one definition for the trigger and the backfill (sql/functions/backfill.sql)
-- ---------------------------------------------------------------------------------------------------------

-- queue_table_name: how sync_queue.table_name names a source table: 'profiles' for public.profiles, the
-- schema-qualified name ('auth.users') for a table outside public.
create or replace function bubble_sync.queue_table_name(p_schema name, p_table name)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select case when p_schema = 'public' then p_table::text else p_schema || '.' || p_table end
$fn$;

revoke all on function bubble_sync.queue_table_name(name, name) from public, anon, authenticated, service_role;

-- change_payload: the payload of a source row (p_row, its to_jsonb): the columns of the allow-list p_allow,
-- or, without one (NULL or empty), every column except those whose name looks like a credential (password,
-- token, secret, hash, salt, otp, api key, private key), so nothing like auth.users.encrypted_password or its
-- *_token columns ever leaves the database by default. Values as to_jsonb renders them.
create or replace function bubble_sync.change_payload(p_row jsonb, p_allow text[])
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $fn$
  select case
           when coalesce(cardinality(p_allow), 0) > 0 then
             (select coalesce(jsonb_object_agg(c, p_row -> c), '{}'::jsonb) from unnest(p_allow) c)
           else
             (select coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
                from jsonb_each(p_row) e
               where e.key !~* '(passw|token|secret|hash|salt|otp|api_?key|private_?key)')
         end
$fn$;

revoke all on function bubble_sync.change_payload(jsonb, text[]) from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Trigger for the user's own signup table
-- ---------------------------------------------------------------------------------------------------------

-- enqueue_change: row trigger (AFTER INSERT OR UPDATE) that queues the row for Bubble. Arguments:
--   1st     the key column, whose value becomes record_id (default 'id')
--   2nd...  the payload's allow-list; without one the payload is every column except those whose name looks
--           like a credential (bubble_sync.change_payload)
-- An UPDATE that leaves the payload as it was (say, only last_sign_in_at changed and it is not in the
-- allow-list) queues nothing. Rows of tables outside `public` are recorded as 'schema.table'
-- (bubble_sync.queue_table_name). `python -m components backfill` queues the rows a table already holds the
-- same way (sql/functions/backfill.sql).
-- SECURITY DEFINER, because the role inserting the signup (supabase_auth_admin for auth.users, or an API role)
-- has, rightly, no access to the queue; the trigger needs no EXECUTE grant to fire.
create or replace function bubble_sync.enqueue_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
  v_key_column text := coalesce(nullif(tg_argv[0], ''), 'id');
  v_allow      text[] := tg_argv[1:];
  v_table      text := bubble_sync.queue_table_name(tg_table_schema, tg_table_name);
  v_new        jsonb := to_jsonb(new);
  v_payload    jsonb;
  v_old_payload jsonb;
  v_missing    text;
begin
  if tg_when <> 'AFTER' or tg_level <> 'ROW' or tg_op not in ('INSERT', 'UPDATE') then
    raise exception 'bubble_sync.enqueue_change: attach it AFTER INSERT OR UPDATE ... FOR EACH ROW, not % % %',
      tg_when, tg_op, tg_level;
  end if;
  if not v_new ? v_key_column then
    raise exception 'bubble_sync.enqueue_change: %.% has no key column %', tg_table_schema, tg_table_name,
      quote_ident(v_key_column) using hint = 'Pass the key column as the trigger''s first argument.';
  end if;
  if v_new ->> v_key_column is null then
    raise exception 'bubble_sync.enqueue_change: %.% row has a NULL %', tg_table_schema, tg_table_name,
      quote_ident(v_key_column);
  end if;

  select min(c) into v_missing from unnest(v_allow) c where not v_new ? c;
  if v_missing is not null then
    raise exception 'bubble_sync.enqueue_change: %.% has no column % (in the payload allow-list)',
      tg_table_schema, tg_table_name, quote_ident(v_missing);
  end if;
  v_payload := bubble_sync.change_payload(v_new, v_allow);
  if tg_op = 'UPDATE' then
    v_old_payload := bubble_sync.change_payload(to_jsonb(old), v_allow);
  end if;

  if tg_op = 'UPDATE' and v_payload = v_old_payload and (to_jsonb(old) ->> v_key_column) = (v_new ->> v_key_column) then
    return null;
  end if;

  perform bubble_sync.enqueue(v_table, v_new ->> v_key_column, tg_op, v_payload);
  return null;
end;
$fn$;

revoke all on function bubble_sync.enqueue_change() from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Mapped tables: the stack's own trigger (bubble-sync:mappings, docs/mappings.md)
-- ---------------------------------------------------------------------------------------------------------

-- bubble_value: a column's value, as to_jsonb renders it, in the form Bubble's Data API takes for the column's
-- type p_type: a timestamptz in ISO 8601 in UTC with milliseconds ('2026-12-05T09:13:51.123Z', as Bubble
-- writes its own dates), a timestamp (without time zone) the same way read as UTC, a date at midnight UTC,
-- an array element by element, a domain as its base type; ±infinity becomes null (Bubble has no such date).
-- Everything else is already what Bubble takes (strings, numbers, booleans) and is returned as it is.
create or replace function bubble_sync.bubble_value(p_value jsonb, p_type regtype)
returns jsonb
language plpgsql
stable
parallel safe
set search_path = ''
as $fn$
declare
  v_text text;
  v_base regtype;
  v_element regtype;
begin
  if p_value is null or jsonb_typeof(p_value) not in ('string', 'array') then
    return p_value;
  end if;
  if jsonb_typeof(p_value) = 'array' then
    select nullif(t.typelem, 0)::regtype into v_element from pg_catalog.pg_type t where t.oid = p_type;
    if v_element is null then
      return p_value;
    end if;
    return (select coalesce(jsonb_agg(bubble_sync.bubble_value(e.value, v_element) order by e.ordinality),
                            '[]'::jsonb)
              from jsonb_array_elements(p_value) with ordinality e);
  end if;

  v_text := p_value #>> '{}';
  if p_type = 'timestamp with time zone'::regtype then
    if v_text in ('infinity', '-infinity') then
      return 'null'::jsonb;
    end if;
    return to_jsonb(to_char(v_text::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  elsif p_type = 'timestamp without time zone'::regtype then
    if v_text in ('infinity', '-infinity') then
      return 'null'::jsonb;
    end if;
    return to_jsonb(to_char(v_text::timestamp, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  elsif p_type = 'date'::regtype then
    if v_text in ('infinity', '-infinity') then
      return 'null'::jsonb;
    end if;
    return to_jsonb(to_char(v_text::date, 'YYYY-MM-DD') || 'T00:00:00.000Z');
  elsif p_type::oid >= 16384 then
    -- a type made in this database: a domain is sent as its base type (an enum is a string already)
    select nullif(t.typbasetype, 0)::regtype into v_base from pg_catalog.pg_type t where t.oid = p_type;
    if v_base is not null then
      return bubble_sync.bubble_value(p_value, v_base);
    end if;
  end if;
  return p_value;
end;
$fn$;

revoke all on function bubble_sync.bubble_value(jsonb, regtype) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.bubble_value(jsonb, regtype) to service_role;

-- mapped_payload: the payload of a row of table p_table (p_row, its to_jsonb) for a mapping: the columns
-- p_columns, each converted by bubble_value for its type. A column the table no longer has is left out (the
-- stack's preview reports it); the trigger must not fail the application's write over it.
create or replace function bubble_sync.mapped_payload(p_row jsonb, p_table regclass, p_columns text[])
returns jsonb
language sql
stable
parallel safe
set search_path = ''
as $fn$
  select coalesce(jsonb_object_agg(a.attname,
                                    -- only dates, arrays and this database's own types can need converting
                                    case when t.typcategory in ('D', 'A') or t.oid >= 16384
                                         then bubble_sync.bubble_value(p_row -> a.attname::text, t.oid::regtype)
                                         else p_row -> a.attname::text end),
                  '{}'::jsonb)
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_type t on t.oid = a.atttypid
   where a.attrelid = p_table
     and a.attname = any(p_columns)
     and a.attnum > 0
     and not a.attisdropped
$fn$;

revoke all on function bubble_sync.mapped_payload(jsonb, regclass, text[])
  from public, anon, authenticated, service_role;
-- service_role: a check of Bubble against the source (compare.sql) converts rows as the trigger does
grant execute on function bubble_sync.mapped_payload(jsonb, regclass, text[]) to service_role;

-- row_matches: whether a mapping's row filter p_where (a SQL condition on the row's columns, as in a WHERE
-- clause) holds for the row p_row; no filter holds for every row, and a filter that yields null does not
-- hold. The condition is the stack's own config (checked against the table at preview and before the trigger
-- is attached), evaluated on the row alone.
create or replace function bubble_sync.row_matches(p_row anyelement, p_where text)
returns boolean
language plpgsql
stable
set search_path = ''
as $fn$
declare
  v_matches boolean;
begin
  if p_where is null or p_where = '' then
    return true;
  end if;
  execute format('select (%s) is true from (select ($1).*) as r', p_where) into v_matches using p_row;
  return v_matches;
exception when others then
  -- A filter that stopped working (a column dropped since the stack checked it) must not fail the
  -- application's write: the row counts as matching, so a change is synced rather than lost, and the
  -- warning says why.
  raise warning 'bubble_sync: the row filter % fails (%): the row is synced as if it matched',
    p_where, sqlerrm;
  return true;
end;
$fn$;

revoke all on function bubble_sync.row_matches(anyelement, text) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.row_matches(anyelement, text) to service_role;

-- enqueue_mapped: the row trigger the stack attaches to a mapped table (AFTER INSERT OR UPDATE OR DELETE ...
-- FOR EACH ROW), one per mapping, named bubble_sync_<mapping>. Its one argument is the mapping as the trigger
-- needs it (components/mappings.py, Mapping.trigger_argument): {"key", "columns", "where", "operations"}.
-- What it queues (docs/mappings.md, "What is queued"):
--   INSERT of a row matching `where`                       INSERT
--   UPDATE, matching before and after, a column changed    UPDATE (nothing when no mapped column changed)
--   UPDATE, matching now and not before                    INSERT (or UPDATE when inserts are not synced)
--   UPDATE, matching before and not now                    DELETE
--   UPDATE changing the key                                DELETE of the old key, INSERT of the new one
--   DELETE of a row matching `where`                       DELETE (the payload from OLD)
-- each only when `operations` lists it. The payload is mapped_payload of the mapped columns. A row whose key is
-- NULL (a unique column allows it) cannot be synced: skipped with a warning rather than failing the write.
-- SECURITY DEFINER, as enqueue_change: the roles writing the table have, rightly, no access to the queue.
create or replace function bubble_sync.enqueue_mapped()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
  v_spec        jsonb;
  v_key         text;
  v_columns     text[];
  v_where       text;
  v_operations  text[];
  v_table       text := bubble_sync.queue_table_name(tg_table_schema, tg_table_name);
  v_new         jsonb;
  v_old         jsonb;
  v_new_key     text;
  v_old_key     text;
  v_new_matches boolean := false;
  v_old_matches boolean := false;
begin
  if tg_when <> 'AFTER' or tg_level <> 'ROW' then
    raise exception 'bubble_sync.enqueue_mapped: attach it AFTER ... FOR EACH ROW, not % %', tg_when, tg_level;
  end if;
  v_spec := tg_argv[0]::jsonb;
  v_key := coalesce(nullif(v_spec ->> 'key', ''), 'id');
  v_columns := array(select jsonb_array_elements_text(v_spec -> 'columns'));
  v_where := nullif(v_spec ->> 'where', '');
  v_operations := array(select upper(jsonb_array_elements_text(v_spec -> 'operations')));

  if tg_op in ('INSERT', 'UPDATE') then
    v_new := to_jsonb(new);
    v_new_key := v_new ->> v_key;
    v_new_matches := v_new_key is not null and bubble_sync.row_matches(new, v_where);
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    v_old := to_jsonb(old);
    v_old_key := v_old ->> v_key;
    v_old_matches := v_old_key is not null and bubble_sync.row_matches(old, v_where);
  end if;
  if (v_new is not null and v_new_key is null) or (v_old is not null and v_old_key is null) then
    raise warning 'bubble_sync.enqueue_mapped: %.% row has no % (NULL or no such column): not synced',
      tg_table_schema, tg_table_name, quote_ident(v_key);
  end if;

  if tg_op = 'UPDATE' and v_old_key is distinct from v_new_key then
    if v_old_matches and 'DELETE' = any(v_operations) then
      perform bubble_sync.enqueue(v_table, v_old_key, 'DELETE',
                                  bubble_sync.mapped_payload(v_old, tg_relid, v_columns));
    end if;
    v_old_matches := false;  -- the new key is a record of its own: it enters the synced rows
  end if;

  if v_new_matches and not coalesce(v_old_matches, false) and tg_op <> 'DELETE' then
    if 'INSERT' = any(v_operations) or (tg_op = 'UPDATE' and 'UPDATE' = any(v_operations)) then
      perform bubble_sync.enqueue(v_table, v_new_key,
                                  case when 'INSERT' = any(v_operations) then 'INSERT' else 'UPDATE' end,
                                  bubble_sync.mapped_payload(v_new, tg_relid, v_columns));
    end if;
  elsif v_new_matches and v_old_matches then
    if 'UPDATE' = any(v_operations)
       and bubble_sync.change_payload(v_new, v_columns) is distinct from bubble_sync.change_payload(v_old, v_columns)
    then
      perform bubble_sync.enqueue(v_table, v_new_key, 'UPDATE',
                                  bubble_sync.mapped_payload(v_new, tg_relid, v_columns));
    end if;
  elsif v_old_matches and 'DELETE' = any(v_operations) then
    perform bubble_sync.enqueue(v_table, v_old_key, 'DELETE',
                                bubble_sync.mapped_payload(v_old, tg_relid, v_columns));
  end if;
  return null;
end;
$fn$;

revoke all on function bubble_sync.enqueue_mapped() from public, anon, authenticated, service_role;
