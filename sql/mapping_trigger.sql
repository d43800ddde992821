-- bubble-sync: the trigger of one mapping on its source table (bubble-sync:mappings, docs/mappings.md).
--
-- Applied per mapping by the stack, in one transaction, after the queue layer; `destroy` drops the trigger and
-- leaves the table and its rows alone. The double-brace placeholders are filled in per mapping
-- (components/sql_plan.py): `table` and `trigger_name` as identifiers, the rest as literals.

-- Before anything is attached: the trigger must never fail the application's writes, so the table must have
-- the key and every mapped column, and the row filter must be a condition on its columns. Otherwise stop here,
-- naming every problem (`preview` checks the same against the database it can reach).
do $check$
declare
  v_missing text[];
begin
  select array_agg(quote_ident(c) order by c) into v_missing
    from unnest({{ columns }}::text[] || {{ key_column }}::text) c
   where not exists (select 1 from pg_catalog.pg_attribute a
                      where a.attrelid = {{ table_text }}::regclass and a.attname = c
                        and a.attnum > 0 and not a.attisdropped);
  if v_missing is not null then
    raise exception 'bubble_sync: mapping %: % has no column %', {{ mapping_name }}, {{ table_text }},
      array_to_string(v_missing, ', ')
      using hint = 'Fix the mapping''s key or fields, or add the columns, and apply again.';
  end if;
  if {{ row_filter }} is not null then
    begin
      -- WHERE takes a boolean condition only, as the trigger's evaluation does (bubble_sync.row_matches)
      execute format('select 1 from %s where (%s) limit 0', {{ table_text }}, {{ row_filter }});
    exception when others then
      raise exception 'bubble_sync: mapping %: where % does not work on %: %', {{ mapping_name }},
        {{ row_filter }}, {{ table_text }}, sqlerrm;
    end;
  end if;
end
$check$;

-- A trigger someone made by hand that queues this table's changes (bubble_sync.enqueue_change, or an earlier
-- enqueue_mapped under another name) is taken over: dropped here, in the same transaction as ours is made, so
-- the table never queues a change twice nor misses one.
do $adopt$
declare
  v_trigger name;
begin
  for v_trigger in
    select t.tgname
      from pg_catalog.pg_trigger t
      join pg_catalog.pg_proc f on f.oid = t.tgfoid
      join pg_catalog.pg_namespace n on n.oid = f.pronamespace
     where t.tgrelid = {{ table_text }}::regclass and not t.tgisinternal
       and n.nspname = 'bubble_sync' and f.proname in ('enqueue_change', 'enqueue_mapped')
       and t.tgname <> {{ trigger_text }}
  loop
    raise notice 'bubble_sync: mapping % takes over trigger % on % (it queued the same changes)',
      {{ mapping_name }}, quote_ident(v_trigger), {{ table_text }};
    execute format('drop trigger %I on %s', v_trigger, {{ table_text }});
  end loop;
end
$adopt$;

-- the mapping's trigger: what each change queues is bubble_sync.enqueue_mapped's comment
create or replace trigger {{ trigger_name }}
  after insert or update or delete on {{ table }}
  for each row
  execute function bubble_sync.enqueue_mapped({{ argument }});

-- a trigger disabled by hand is enabled again, whatever create or replace kept of its state
alter table {{ table }} enable trigger {{ trigger_name }};
