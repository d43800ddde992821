-- bubble-sync: does Bubble hold what Supabase holds? The one comparison rule, for `python -m components
-- reconcile` and the function's scheduled `verify` alike (docs/mappings.md; issue "Know that Bubble matches
-- Supabase").
--
-- A caller fetches Bubble's things for some records (by their key field, `in` searches) and hands them here
-- with the records' ids; the database reads the source rows itself, converts them as the trigger does
-- (mapped_payload), and says what differs. Only mapped tables can be compared: a mapping says which fields
-- Bubble must hold.

-- ---------------------------------------------------------------------------------------------------------
-- Values
-- ---------------------------------------------------------------------------------------------------------

-- same_value: whether Bubble's value p_bubble of a field holds the source's value p_source (as mapped_payload
-- converts it). Empty is empty: null, a missing field and '' are alike. Dates compare as instants to the
-- millisecond (Bubble keeps milliseconds and writes its own format), numbers as numbers (Bubble may answer 3
-- for 3.0), lists element by element in order, the rest (text, booleans) exactly.
create or replace function bubble_sync.same_value(p_source jsonb, p_bubble jsonb)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $fn$
declare
  v_iso constant text := '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$';
begin
  if coalesce(jsonb_typeof(p_source), 'null') = 'null' or p_source = '""'::jsonb then
    return coalesce(jsonb_typeof(p_bubble), 'null') = 'null' or p_bubble = '""'::jsonb
        or p_bubble = '[]'::jsonb;
  end if;
  if coalesce(jsonb_typeof(p_bubble), 'null') = 'null' then
    return p_source = '[]'::jsonb;
  end if;
  if jsonb_typeof(p_source) = 'number' and jsonb_typeof(p_bubble) in ('number', 'string')
     and (p_bubble #>> '{}') ~ '^-?\d+(\.\d+)?([eE][-+]?\d+)?$' then
    return (p_source #>> '{}')::numeric = (p_bubble #>> '{}')::numeric;
  end if;
  if jsonb_typeof(p_source) = 'string' and jsonb_typeof(p_bubble) = 'string'
     and (p_source #>> '{}') ~ v_iso and (p_bubble #>> '{}') ~ v_iso then
    return date_trunc('milliseconds', (p_source #>> '{}')::timestamptz)
         = date_trunc('milliseconds', (p_bubble #>> '{}')::timestamptz);
  end if;
  if jsonb_typeof(p_source) = 'array' and jsonb_typeof(p_bubble) = 'array' then
    return jsonb_array_length(p_source) = jsonb_array_length(p_bubble)
       and not exists (select 1
                         from jsonb_array_elements(p_source) with ordinality s(value, position)
                         join jsonb_array_elements(p_bubble) with ordinality b(value, position)
                           on b.position = s.position
                        where not bubble_sync.same_value(s.value, b.value));
  end if;
  return p_source = p_bubble;
end;
$fn$;

revoke all on function bubble_sync.same_value(jsonb, jsonb) from public, anon, authenticated, service_role;
grant execute on function bubble_sync.same_value(jsonb, jsonb) to service_role;

-- ---------------------------------------------------------------------------------------------------------
-- Records
-- ---------------------------------------------------------------------------------------------------------

-- compare_with_bubble: what differs between the source rows of mapping p_mapping (bubble_sync.mappings) whose
-- key is one of p_record_ids and Bubble's things p_things (a JSON array of things as the Data API returns
-- them, each with its _id and the mapping's key field: `<table>:<record id>`), one row per record that
-- differs (a record in sync gives none):
--   missing     the source row is synced (it exists and matches `where`) and Bubble has no thing with its key
--   stale       Bubble's thing differs in `fields` (the Bubble field names); a reference compares the linked
--               Bubble id of the record the column names (bubble_sync.links; unknown without a link: skipped)
--   orphaned    a thing carries the key of a record whose source row is gone or no longer matches `where`
--   duplicated  several things carry the record's key (bubble_ids: all of them); the first, or the one the
--               record is linked to, is also compared for staleness
-- Things whose key names a record outside p_record_ids are compared too (a search by key may find them). A
-- user's built-in email is read where Bubble keeps it (authentication.email.email) and compared ignoring case.
create or replace function bubble_sync.compare_with_bubble(p_mapping text, p_record_ids text[], p_things jsonb)
returns table (record_id text, difference text, fields text[], bubble_ids text[])
language plpgsql
stable
set search_path = ''
as $fn$
declare
  v_definition jsonb;
  v_table      regclass;
  v_key        text;
  v_columns    text[];
  v_prefix     text;
  v_key_field  text;
  v_by_record  jsonb;
  v_rows       jsonb;
  v_ids        text[];
  v_id         text;
  v_source     jsonb;
  v_things     jsonb;
  v_thing      jsonb;
  v_link       text;
  v_payload    jsonb;
  v_field      jsonb;
  v_expected   jsonb;
  v_actual     jsonb;
  v_stale      text[];
begin
  select m.definition into v_definition from bubble_sync.mappings m where m.name = p_mapping;
  if v_definition is null then
    raise exception 'bubble_sync.compare_with_bubble: no mapping %', coalesce(quote_literal(p_mapping), 'NULL')
      using errcode = '22023', hint = 'The stack''s mappings are in bubble_sync.mappings (pulumi up writes them).';
  end if;
  v_table := format('%I.%I', v_definition ->> 'schema', v_definition ->> 'sourceTable')::regclass;
  v_key := v_definition ->> 'key';
  v_columns := array(select f ->> 'column' from jsonb_array_elements(v_definition -> 'fields') f);
  v_prefix := (v_definition ->> 'table') || ':';
  v_key_field := v_definition ->> 'keyField';

  -- Bubble's things by the record their key names (ours only: the key starts with the table's name)
  select coalesce(jsonb_object_agg(k.record_id, k.things), '{}'::jsonb)
    into v_by_record
    from (select substr(t.value ->> v_key_field, length(v_prefix) + 1) as record_id,
                 jsonb_agg(t.value order by t.ordinality) as things
            from jsonb_array_elements(coalesce(p_things, '[]'::jsonb)) with ordinality t
           where starts_with(t.value ->> v_key_field, v_prefix)
           group by 1) k;
  v_ids := array(select distinct i
                   from unnest(coalesce(p_record_ids, '{}'::text[])
                               || array(select jsonb_object_keys(v_by_record))) i
                  where i is not null
                  order by 1);

  -- the source rows of those records, each with whether it matches the mapping's row filter
  execute format(
    'select coalesce(jsonb_object_agg(t.%1$I::text, jsonb_build_object(''row'', to_jsonb(t),'
    ' ''synced'', bubble_sync.row_matches(t, $2))), ''{}''::jsonb) from %2$s t where t.%1$I::text = any($1)',
    v_key, v_table)
    into v_rows using v_ids, v_definition ->> 'where';

  foreach v_id in array v_ids loop
    v_source := v_rows -> v_id;
    v_things := coalesce(v_by_record -> v_id, '[]'::jsonb);
    record_id := v_id;
    fields := null;
    bubble_ids := array(select t ->> '_id' from jsonb_array_elements(v_things) t);

    if v_source is null or not (v_source ->> 'synced')::boolean then
      if jsonb_array_length(v_things) > 0 then
        difference := 'orphaned';
        return next;
      end if;
      continue;
    end if;
    if jsonb_array_length(v_things) = 0 then
      difference := 'missing';
      bubble_ids := '{}';
      return next;
      continue;
    end if;
    select l.bubble_id into v_link
      from bubble_sync.links l
     where l.table_name = v_definition ->> 'table' and l.record_id = v_id;
    if jsonb_array_length(v_things) > 1 then
      difference := 'duplicated';
      return next;
    end if;
    -- the thing the record is linked to, else the first Bubble answered
    v_thing := coalesce((select t from jsonb_array_elements(v_things) t where t ->> '_id' = v_link limit 1),
                        v_things -> 0);

    v_payload := bubble_sync.mapped_payload(v_source -> 'row', v_table, v_columns);
    v_stale := '{}';
    for v_field in select f from jsonb_array_elements(v_definition -> 'fields') f loop
      v_expected := v_payload -> (v_field ->> 'column');
      if v_field ? 'refTable' and coalesce(jsonb_typeof(v_expected), 'null') <> 'null' then
        v_expected := (select to_jsonb(l.bubble_id)
                         from bubble_sync.links l
                        where l.table_name = v_field ->> 'refTable' and l.record_id = v_expected #>> '{}');
        continue when v_expected is null;  -- the record referred to has no link: not known here
      end if;
      v_actual := v_thing -> (v_field ->> 'field');
      if v_definition ->> 'dataType' = 'user' and v_field ->> 'field' = 'email' then
        v_actual := to_jsonb(lower(coalesce(v_thing #>> '{authentication,email,email}', v_thing ->> 'email')));
        v_expected := to_jsonb(lower(v_expected #>> '{}'));
      end if;
      if not bubble_sync.same_value(v_expected, v_actual) then
        v_stale := v_stale || (v_field ->> 'field');
      end if;
    end loop;
    if cardinality(v_stale) > 0 then
      difference := 'stale';
      fields := v_stale;
      bubble_ids := array[v_thing ->> '_id'];
      return next;
    end if;
  end loop;
end;
$fn$;

revoke all on function bubble_sync.compare_with_bubble(text, text[], jsonb)
  from public, anon, authenticated, service_role;
grant execute on function bubble_sync.compare_with_bubble(text, text[], jsonb) to service_role;
