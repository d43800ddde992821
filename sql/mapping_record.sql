-- bubble-sync: one mapping's row in bubble_sync.mappings (bubble-sync:mappings, docs/mappings.md).
--
-- Applied per mapping by the stack, after the queue layer. The row is what the operator tools read to know the
-- stack's mappings from the database alone, and what bubble_sync.claim reads to hold a row back behind the
-- records it refers to. The double-brace placeholders are filled in per mapping (components/sql_plan.py).

-- a table belongs to one mapping: a mapping renamed, or two swapping tables, must not trip the unique table
delete from bubble_sync.mappings m where m.table_name = {{ queue_table }} and m.name <> {{ mapping_name }};

-- the mapping as the Edge Function gets it (components/mappings.py, Mapping.definition)
insert into bubble_sync.mappings as m (name, table_name, definition)
values ({{ mapping_name }}, {{ queue_table }}, {{ definition }}::jsonb)
on conflict (name) do update
  set table_name = excluded.table_name, definition = excluded.definition, updated_at = now()
  where (m.table_name, m.definition) is distinct from (excluded.table_name, excluded.definition);
