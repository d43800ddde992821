-- bubble-sync: putting changes into the queue (the producer's side).
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
-- The replacement is a delete plus an insert, so the dispatch trigger sees an insert and wakes the worker. A
-- row already claimed is left alone; the change then gets a new row of its own.
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
  v_now  timestamptz := coalesce(p_now, clock_timestamp());
  v_prev record;
  v_row  public.sync_queue;
begin
  if p_operation is null or p_operation not in ('INSERT', 'UPDATE') then
    raise exception 'bubble_sync.enqueue: operation must be INSERT or UPDATE, got %',
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

  with replaced as (
    delete from public.sync_queue q
     where q.table_name = p_table_name
       and q.record_id = p_record_id
       and q.status = 'pending'
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
          coalesce(v_prev.create_operation, p_operation),
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
