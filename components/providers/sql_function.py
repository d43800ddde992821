"""A PostgreSQL function managed from its `create or replace function` text, with EXECUTE granted exactly.

Why not `pulumi_postgresql.Function`: it cannot emit `set search_path`, swallows it on read (so drift in
it is invisible) and mangles dollar-quoted bodies (pulumi-facts §1).

Live state compared with the definition (see `function_definition`): the body (`prosrc`), the settings
(`proconfig`), `security definer`, the language, and which roles hold EXECUTE. Drift repaired by
`update`: the function dropped, its body edited, `search_path` changed or reset, security definer
flipped, EXECUTE granted to `anon`, `authenticated` or PUBLIC by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.providers._base import PostgresProvider, changed, inputs_of, is_unknown
from components.providers.function_definition import (
    DefinitionError,
    FunctionDefinition,
    canonical_config,
    parse_function_definition,
)

__all__ = ["SqlFunction", "SqlFunctionArgs", "SqlFunctionProvider"]

INPUT_KEYS = ("schema", "name", "identity_args", "definition", "execute_grants")
REPLACE_KEYS = ("schema", "name", "identity_args")
# Supabase's Data API roles. Default privileges grant them EXECUTE on every new function in `public`.
API_ROLES = ("anon", "authenticated")

_LOCATE = """
select p.oid
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
 where n.nspname = %s and p.proname = %s and pg_catalog.pg_get_function_identity_arguments(p.oid) = %s
"""
_CANDIDATES = """
select pg_catalog.pg_get_function_identity_arguments(p.oid)
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
 where n.nspname = %s and p.proname = %s
 order by 1
"""
# A NULL acl means the default: the owner and PUBLIC may execute.
_LIVE = """
select p.prosrc, p.proconfig, p.prosecdef, l.lanname, pg_catalog.pg_get_userbyid(p.proowner),
       array(select distinct case when a.grantee = 0 then 'public'
                                  else pg_catalog.pg_get_userbyid(a.grantee) end
               from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
              where a.privilege_type = 'EXECUTE'
              order by 1)
  from pg_catalog.pg_proc p
  join pg_catalog.pg_language l on l.oid = p.prolang
 where p.oid = %s::oid
"""


@dataclass
class SqlFunctionArgs:
    """A function in `schema` called `name`, created by `definition`.

    `identity_args` is the argument list exactly as `pg_get_function_identity_arguments` prints it (e.g.
    `p_limit integer, p_now timestamp with time zone`, or `` for none). `definition` is one
    `create or replace function schema.name(...) ... as $fn$ ... $fn$;` statement that pins
    `search_path`. `execute_grants` lists the roles that must hold EXECUTE besides the owner; everyone
    else (PUBLIC, anon, authenticated included) is revoked.
    """

    schema: pulumi.Input[str]
    name: pulumi.Input[str]
    identity_args: pulumi.Input[str]
    definition: pulumi.Input[str]
    execute_grants: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)


class SqlFunctionProvider(PostgresProvider):
    kind = "function"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**news, "execute_grants": news.get("execute_grants", [])}
        failures = []
        for key in ("schema", "name", "identity_args", "definition"):
            value = inputs.get(key)
            if not is_unknown(value) and not isinstance(value, str):
                failures.append(CheckFailure(key, f"{key} must be a string"))
        for key in ("schema", "name", "definition"):
            if isinstance(inputs.get(key), str) and not inputs[key].strip():
                failures.append(CheckFailure(key, f"{key} must not be empty"))
        grants = inputs["execute_grants"]
        if not is_unknown(grants) and (
            not isinstance(grants, list | tuple) or not all(isinstance(g, str) and g for g in grants)
        ):
            failures.append(CheckFailure("execute_grants", "execute_grants must be a list of role names"))
        definition = inputs.get("definition")
        if isinstance(definition, str) and definition.strip():
            try:
                parsed = parse_function_definition(definition)
            except DefinitionError as exc:
                failures.append(CheckFailure("definition", str(exc)))
            else:
                failures += _check_parsed(parsed, inputs)
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props)
        return CreateResult(id_=_signature_text(props), outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.session(_signature_text(props), "read") as conn:
            oid = _locate(conn, props)
            if oid is None:
                return ReadResult(id_="", outs={})
            live = _live(conn, oid)
        inputs = inputs_of(props, INPUT_KEYS)
        # Keep the stored spelling of the grant list when it means the same, so refresh shows no noise.
        if _grant_set(inputs.get("execute_grants"), live["owner"]) == _grant_set(
            live["execute_grants"], live["owner"]
        ):
            live["execute_grants"] = inputs.get("execute_grants")
        return ReadResult(id_=id_ or _signature_text(props), outs={**inputs, **live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed(olds, news, REPLACE_KEYS)
        changes = bool(replaces) or bool(changed(olds, news, ("definition",)))
        if not changes:
            try:
                expected = parse_function_definition(news["definition"])
            except (DefinitionError, KeyError, TypeError):
                changes = True
            else:
                changes = bool(_drift(expected, news.get("execute_grants"), olds))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with self.session(_signature_text(props), "drop", transaction=True) as conn:
            conn.execute(sql.SQL("drop function if exists {}").format(_signature(props)))

    # -- internals ---------------------------------------------------------------------------------------

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Runs the definition and sets EXECUTE, in one transaction, then checks the catalog shows what
        the definition declares (so a definition the parser misreads fails now, not as endless drift)."""
        label = _signature_text(props)
        try:
            expected = parse_function_definition(props["definition"])
        except DefinitionError as exc:
            raise self.fail(label, f"cannot read the definition: {exc}") from None
        failures = _check_parsed(expected, props)
        if failures:
            raise self.fail(label, "; ".join(f.reason for f in failures))
        grants = list(props.get("execute_grants") or [])

        with self.session(label, "create or replace", transaction=True) as conn:
            try:
                with conn.transaction():  # a savepoint, so we can fall back below
                    conn.execute(props["definition"])
            except psycopg.errors.InvalidFunctionDefinition:
                # "cannot change return type of existing function" and kin: same identity, so drop and
                # re-create in this transaction; fails cleanly if something depends on the function.
                conn.execute(sql.SQL("drop function {}").format(_signature(props)))
                conn.execute(props["definition"])
            oid = _locate(conn, props)
            if oid is None:
                found = [r[0] for r in conn.execute(_CANDIDATES, (props["schema"], props["name"]))]
                raise self.fail(
                    label,
                    "the definition created no function with these identity arguments; "
                    f"pg_get_function_identity_arguments() shows {found!r}: set identity_args to one of them",
                )
            _set_grants(conn, props, oid, grants)
            live = _live(conn, oid)
            problems = _drift(expected, grants, live)
            if problems:
                raise self.fail(
                    label,
                    f"after running the definition the catalog differs in {', '.join(problems)} "
                    f"(live: {', '.join(f'{k}={live[k]!r}' for k in problems if k != 'body')}); "
                    "the definition must use plain `set name = value` clauses",
                )
        return {**inputs_of(props, INPUT_KEYS), **live, "execute_grants": grants}


def _check_parsed(parsed: FunctionDefinition, inputs: Mapping[str, Any]) -> list[CheckFailure]:
    failures = []
    for key, value in (("schema", parsed.schema), ("name", parsed.name)):
        want = inputs.get(key)
        if isinstance(want, str) and want != value:
            failures.append(
                CheckFailure("definition", f"the definition creates {key} {value!r}, not {want!r}")
            )
    if not any(entry.startswith("search_path=") for entry in parsed.config):
        failures.append(
            CheckFailure("definition", "the definition must pin the search path (set search_path = '')")
        )
    return failures


def _drift(expected: FunctionDefinition, grants: Any, live: Mapping[str, Any]) -> list[str]:
    """Which live fields differ from what the definition and grant list declare."""
    problems = [
        key
        for key, want in (
            ("body", expected.body),
            ("config", expected.config),
            ("security_definer", expected.security_definer),
            ("language", expected.language),
        )
        if live.get(key) != want
    ]
    if is_unknown(grants) or _grant_set(grants, live.get("owner")) != _grant_set(
        live.get("execute_grants"), live.get("owner")
    ):
        problems.append("execute_grants")
    return problems


def _grant_set(roles: Any, owner: Any) -> frozenset[str] | None:
    """Roles holding EXECUTE, besides the owner (who always may), or None when unknown/malformed."""
    if not isinstance(roles, list | tuple):
        return None
    return frozenset(str(r) for r in roles) - {owner}


def _locate(conn: psycopg.Connection[Any], props: Mapping[str, Any]) -> int | None:
    row = conn.execute(_LOCATE, (props["schema"], props["name"], props["identity_args"])).fetchone()
    return None if row is None else int(row[0])


def _live(conn: psycopg.Connection[Any], oid: int) -> dict[str, Any]:
    row = conn.execute(_LIVE, (oid,)).fetchone()
    assert row is not None
    body, proconfig, secdef, language, owner, grants = row
    return {
        "body": body,
        "config": canonical_config(proconfig),
        "security_definer": bool(secdef),
        "language": language,
        "owner": owner,
        "execute_grants": list(grants),
    }


def _set_grants(conn: psycopg.Connection[Any], props: Mapping[str, Any], oid: int, grants: list[str]) -> None:
    """EXECUTE for exactly the owner and `grants`: revoke PUBLIC and the API roles first (Supabase's
    default privileges gave it to them), then anyone else not wanted, then grant."""
    signature = _signature(props)
    api_roles = [
        r[0]
        for r in conn.execute(
            "select rolname from pg_catalog.pg_roles where rolname = any(%s)", (list(API_ROLES),)
        )
    ]
    conn.execute(
        sql.SQL("revoke all on function {} from {}").format(
            signature, sql.SQL(", ").join([sql.SQL("public"), *map(sql.Identifier, api_roles)])
        )
    )
    live = _live(conn, oid)
    unwanted = sorted(set(live["execute_grants"]) - set(grants) - {live["owner"], "public"})
    if unwanted:
        conn.execute(
            sql.SQL("revoke all on function {} from {}").format(
                signature, sql.SQL(", ").join(map(_role, unwanted))
            )
        )
    if grants:
        conn.execute(
            sql.SQL("grant execute on function {} to {}").format(
                signature, sql.SQL(", ").join(map(_role, grants))
            )
        )


def _role(name: str) -> sql.Composable:
    return sql.SQL("public") if name.lower() == "public" else sql.Identifier(name)


def _signature(props: Mapping[str, Any]) -> sql.Composable:
    # identity_args is program-supplied SQL, like the definition itself.
    return sql.SQL("{}.{}({})").format(
        sql.Identifier(props["schema"]), sql.Identifier(props["name"]), sql.SQL(props["identity_args"])
    )


def _signature_text(props: Mapping[str, Any]) -> str:
    return f"{props.get('schema')}.{props.get('name')}({props.get('identity_args')})"


class SqlFunction(Resource, module="bubblesync", name="SqlFunction"):
    """A function created from its definition text, with drift detection on body, settings, security and
    EXECUTE grants. Its id is `schema.name(identity_args)`."""

    schema: pulumi.Output[str]
    name: pulumi.Output[str]
    identity_args: pulumi.Output[str]
    definition: pulumi.Output[str]
    execute_grants: pulumi.Output[list[str]]
    body: pulumi.Output[str]
    config: pulumi.Output[list[str]]
    security_definer: pulumi.Output[bool]
    language: pulumi.Output[str]
    owner: pulumi.Output[str]

    def __init__(
        self, resource_name: str, args: SqlFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "schema": args.schema,
            "name": args.name,
            "identity_args": args.identity_args,
            "definition": args.definition,
            "execute_grants": args.execute_grants,
            # outputs only (None: set by the provider)
            "body": None,
            "config": None,
            "security_definer": None,
            "language": None,
            "owner": None,
        }
        super().__init__(SqlFunctionProvider(), resource_name, props, opts)
