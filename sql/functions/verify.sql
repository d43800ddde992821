-- bubble-sync: the scheduled verification (issue "Know that Bubble matches Supabase", item 2).
--
-- The cron job bubble_sync.verify (schedule verifySchedule, hourly by default) calls invoke_verify, which asks
-- the edge function for the action `verify`. For each mapping the function knows (BUBBLE_SYNC_MAPPINGS) it
-- takes a sample of synced records (verify_sample), fetches their things from Bubble by key (`in` searches
-- through the shared gate), and hands both to record_verification, which compares them by the one rule
-- (bubble_sync.compare_with_bubble) and keeps the result in bubble_sync.verifications. health() and the
-- alerts read the last result of each mapping; `python -m components reconcile --mapping NAME --repair`
-- repairs what it found.

-- ---------------------------------------------------------------------------------------------------------
-- The sample
-- ---------------------------------------------------------------------------------------------------------

-- verify_sample: up to p_size records of mapping p_mapping for a verification: half of them the most
-- recently synced (bubble_sync.links by linked_at: where a fresh mistake shows first), the rest drawn at
-- random from its older links (where edits made in Bubble since, and purged history, hide). Cheap on a
-- million links: the recent ones through links_recent_idx; the random ones from a block sample of the table
-- (TABLESAMPLE SYSTEM, about three times the rows wanted and at least 32 pages), all of them in random order
-- when the mapping has few links. A block sample may give fewer than asked: the sample is then smaller.
create or replace function bubble_sync.verify_sample(p_mapping text, p_size integer)
returns table (record_id text)
language plpgsql
set search_path = ''
as $fn$
declare
  v_table   text;
  v_recent  text[];
  v_rest    integer;
  v_rows    bigint;
  v_pages   double precision;
  v_percent double precision;
begin
  if p_size is null or p_size < 1 or p_size > 10000 then
    raise exception 'bubble_sync.verify_sample: p_size must be between 1 and 10000, got %', p_size
      using errcode = '22023';
  end if;
  select m.table_name into v_table from bubble_sync.mappings m where m.name = p_mapping;
  if v_table is null then
    raise exception 'bubble_sync.verify_sample: no mapping %', coalesce(quote_literal(p_mapping), 'NULL')
      using errcode = '22023', hint = 'The stack''s mappings are in bubble_sync.mappings (pulumi up writes them).';
  end if;

  v_recent := array(select l.record_id
                      from bubble_sync.links l
                     where l.table_name = v_table
                     order by l.linked_at desc, l.record_id desc
                     limit ceil(p_size / 2.0)::integer);
  return query select unnest(v_recent);

  v_rest := p_size - cardinality(v_recent);
  select count(*) into v_rows from bubble_sync.links l where l.table_name = v_table;
  if v_rest < 1 or v_rows <= cardinality(v_recent) then
    return;
  end if;
  if v_rows <= 20000 then
    return query
      select l.record_id
        from bubble_sync.links l
       where l.table_name = v_table and l.record_id <> all (v_recent)
       order by random()
       limit v_rest;
    return;
  end if;
  select greatest(c.relpages, 1) into v_pages from pg_catalog.pg_class c where c.oid = 'bubble_sync.links'::regclass;
  v_percent := least(100, greatest(300.0 * v_rest / v_rows, 100.0 * 32 / v_pages));
  return query
    select l.record_id
      from bubble_sync.links l tablesample system (v_percent)
     where l.table_name = v_table and l.record_id <> all (v_recent)
     order by random()
     limit v_rest;
end;
$fn$;

revoke all on function bubble_sync.verify_sample(text, integer) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.verify_sample(text, integer) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- The result
-- ---------------------------------------------------------------------------------------------------------

-- record_verification: compares the records p_record_ids of mapping p_mapping with Bubble's things p_things
-- (bubble_sync.compare_with_bubble: the one rule) and keeps the result in bubble_sync.verifications, begun at
-- p_started_at and finished at p_now: the records checked, the count of each kind of difference, and as
-- examples up to five record ids of each kind and the Bubble fields found stale. With p_error (the sample
-- could not be fetched: Bubble unavailable, a refused token) nothing is compared: the row keeps the error.
create or replace function bubble_sync.record_verification(
  p_mapping    text,
  p_started_at timestamptz,
  p_record_ids text[],
  p_things     jsonb,
  p_error      text default null,
  p_now        timestamptz default null
)
returns bubble_sync.verifications
language plpgsql
set search_path = ''
as $fn$
declare
  v_now     timestamptz := coalesce(p_now, clock_timestamp());
  v_checked integer := cardinality(array(select distinct i from unnest(p_record_ids) i where i is not null));
  v_row     bubble_sync.verifications;
begin
  if not exists (select 1 from bubble_sync.mappings m where m.name = p_mapping) then
    raise exception 'bubble_sync.record_verification: no mapping %', coalesce(quote_literal(p_mapping), 'NULL')
      using errcode = '22023', hint = 'The stack''s mappings are in bubble_sync.mappings (pulumi up writes them).';
  end if;
  if p_error is not null then
    insert into bubble_sync.verifications (mapping, started_at, finished_at, checked, error)
    values (p_mapping, coalesce(p_started_at, v_now), v_now, 0, left(p_error, 1000))
    returning * into v_row;
    return v_row;
  end if;

  with d as materialized (
    select c.record_id, c.difference, c.fields
      from bubble_sync.compare_with_bubble(p_mapping, p_record_ids, p_things) c
  )
  insert into bubble_sync.verifications
    (mapping, started_at, finished_at, checked, missing, stale, orphaned, duplicated, examples)
  select p_mapping, coalesce(p_started_at, v_now), v_now, v_checked,
         count(*) filter (where d.difference = 'missing'),
         count(*) filter (where d.difference = 'stale'),
         count(*) filter (where d.difference = 'orphaned'),
         count(*) filter (where d.difference = 'duplicated'),
         jsonb_strip_nulls(jsonb_build_object(
           'missing', to_jsonb((array_agg(d.record_id order by d.record_id)
                                  filter (where d.difference = 'missing'))[1:5]),
           'stale', to_jsonb((array_agg(d.record_id order by d.record_id)
                                filter (where d.difference = 'stale'))[1:5]),
           'orphaned', to_jsonb((array_agg(d.record_id order by d.record_id)
                                   filter (where d.difference = 'orphaned'))[1:5]),
           'duplicated', to_jsonb((array_agg(d.record_id order by d.record_id)
                                     filter (where d.difference = 'duplicated'))[1:5]),
           'stale_fields', (select jsonb_agg(distinct f order by f)
                              from d s, unnest(s.fields) f
                             where s.difference = 'stale')))
    from d
  returning * into v_row;
  return v_row;
end;
$fn$;

-- The owner's only (the edge function connects as postgres, SUPABASE_DB_URL): it reads the source tables.
revoke all on function bubble_sync.record_verification(text, timestamptz, text[], jsonb, text, timestamptz)
  from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------
-- The cron job's command
-- ---------------------------------------------------------------------------------------------------------

-- invoke_verify: the command of the cron job bubble_sync.verify: asks the edge function to verify each
-- mapping (action `verify`, through pg_net with the Vault secrets, as the processor job does) and returns
-- pg_net's request id; when the stack deployed no mapping there is nothing to compare: says so, returns NULL.
create or replace function bubble_sync.invoke_verify()
returns bigint
language plpgsql
set search_path = ''
as $fn$
begin
  if not exists (select 1 from bubble_sync.mappings) then
    raise notice '[bubble_sync_verify] No mapping deployed: nothing to verify';
    return null;
  end if;
  return bubble_sync.invoke_function('verify');
end;
$fn$;

revoke all on function bubble_sync.invoke_verify() from public, anon, authenticated, service_role;
