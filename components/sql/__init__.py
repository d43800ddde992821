"""The SQL tooling: what the files under the repository's `sql/` hold and how a stack applies them.

* `templates`: the files, `{{ name }}` rendering, SQL literals, the cron jobs.
* `params`: the template parameters, their defaults and the stack config keys that set them.
* `parser`: statements read by PostgreSQL's own parser (pglast).
* `catalogue`: every function the files define, with its signature and grants.
* `plan`: a stack's database objects as ordered SQL units (what the Pulumi program and the script apply).
* `render`: those units as one psql setup script.

Nothing is imported here, so `components.sql.templates` stays importable on the standard library alone.
"""
