"""`up --config-file` on a devstack that is already running: the `local` stack applied again with the merged
config (what earlier `up`s set, then the new values), so tables made after the first `up` can be mapped.

In this order, so a failure leaves the devstack running and says what it got to:

1. the merged config is validated, with the mappings checked against the tables as `preview` checks them;
   the way the devstack was applied is kept (`pulumi up` again on the same workspace and state, or psql
   again: switching would leave objects the other way knows nothing about);
2. the new values are set on the workspace's `local` stack (`pulumi config set`, structured values with
   `set-all --json`), as a user would before `pulumi up`;
3. the function host is restarted on its port when the function's settings change (`BUBBLE_SYNC_MAPPINGS`,
   the batch size, ...): its workers get their environment from it, fixed when it starts (on Supabase, new
   secrets reach the function's next workers). Before the apply, because a new mapping's trigger queues rows
   as soon as it exists and immediate dispatch hands them to the function at once: a host on the old settings
   would send them as rows of no mapping, to `bubbleDataType`;
4. `pulumi up` (or the stack's SQL with psql, after dropping the trigger and row of each mapping no longer in
   the config, as `pulumi up` deletes their resources: the SQL only creates).

The state file records the merged config and the new host before the apply, so if the apply fails, the
devstack's record, the workspace's config and the function's settings agree, and `up --config-file` again
(with the file fixed) finishes the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from components.config import ConfigError, StackConfig
from components.mapping_check import check_mappings
from components.mappings import Mapping as SyncMapping
from components.sql.plan import mapping_unit
from devstack.assembly import (
    LOCAL_STACK,
    LOCAL_STACK_NAME,
    StackError,
    function_host_env,
    local_config,
    split_secrets,
    start_function_host,
)
from devstack.processes import stop
from devstack.pulumi_engine import Engine, find_engine
from devstack.stack import StackInfo, local_workspace, progress, save, step
from devstack.stack_pulumi import set_config, up_stack
from devstack.stack_sql import apply_stack_sql

__all__ = ["apply_again"]


def apply_again(
    state_dir: Path, info: StackInfo, *, config: Mapping[str, object], engine: Engine | bool = True
) -> StackInfo:
    """Applies the `local` stack of the running devstack `info` again, with `config` (bare keys) merged over
    what it was applied with; restarts the function host if its settings change. Raises StackError naming
    the step that failed (the devstack keeps running).

    engine: True finds the engine (needed when the devstack was applied with `pulumi up`), False asks for psql
    (refused on a devstack applied with `pulumi up`), an Engine uses that one."""
    state_dir = state_dir.resolve()
    merged = {**info.config, **config}
    new_values, new_secrets = split_secrets(config)
    # A bad value, or a mapping that does not fit the tables, fails here, before anything changes.
    wanted = local_config(*split_secrets(merged))
    previous = local_config(*split_secrets(info.config))
    _check_mappings(info.database_url, wanted)
    pulumi_engine = _engine_for(info, engine, new_secrets)

    if pulumi_engine is not None:
        workspace = local_workspace(state_dir, pulumi_engine)
        with step(f"pulumi config set on stack {LOCAL_STACK_NAME}"):
            set_config(workspace, LOCAL_STACK_NAME, values=new_values, secret_values=new_secrets)

    old_env = _host_env(info, info.config)
    new_env = _host_env(info, merged)
    if new_env != old_env:
        with step("edge function host (Deno), restarted with the new settings"):
            stop(info.processes["functions_host"])
            port = urlsplit(info.supabase_url).port
            assert port is not None
            info.processes["functions_host"], _ = start_function_host(
                state_dir / "logs", port=port, env=new_env
            )
    else:
        progress("edge function host: its settings are unchanged; kept running")
    info.config = merged
    save(state_dir, info)

    if pulumi_engine is not None:
        version = pulumi_engine.version()
        with step(f"bubble-sync database objects: pulumi up (stack {LOCAL_STACK_NAME}, {version})"):
            up_stack(workspace, LOCAL_STACK_NAME)
        info.applied_with = f"pulumi up ({version})"
    else:
        with step(f"bubble-sync database objects: psql (stack {LOCAL_STACK_NAME})"):
            _drop_removed_mappings(info.database_url, before=previous.mappings, after=wanted.mappings)
            apply_stack_sql(
                LOCAL_STACK,
                overrides=split_secrets(merged)[0],
                dsn=info.database_url,
                variables={"supabase_url": info.supabase_url, "service_role_key": info.service_role_key},
            )
    save(state_dir, info)
    return info


def _check_mappings(database_url: str, config: StackConfig) -> None:
    """The mappings against the devstack's tables, as `preview` checks them (components/mapping_check.py):
    the psql path has no preview, and the function host is not restarted for a stack that cannot apply."""
    if not config.mappings:
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        problems = check_mappings(conn, config.mappings)
    if problems:
        raise StackError(f"the mappings do not fit the devstack's tables: {ConfigError(problems)}")


def _drop_removed_mappings(
    database_url: str, *, before: Sequence[SyncMapping], after: Sequence[SyncMapping]
) -> None:
    """What `pulumi up` does for a mapping no longer in the config, which the stack's SQL cannot (it only
    creates): its trigger dropped and its row deleted, by the statements `destroy` runs. A mapping moved to
    another table counts as removed from the first."""
    kept = {(m.name, m.qualified_table) for m in after}
    gone = [m for m in before if (m.name, m.qualified_table) not in kept]
    if not gone:
        return
    with psycopg.connect(database_url) as conn, conn.transaction():
        for mapping in gone:
            unit = mapping_unit(mapping, tuple(before))
            try:
                with conn.transaction():
                    conn.execute(unit.trigger.drop_sql)
            except psycopg.errors.UndefinedTable:
                pass  # the table was dropped, and its trigger with it
            conn.execute(unit.record.drop_sql)
    progress(
        f"  mapping {', '.join(m.name for m in gone)}: no longer in the config; trigger dropped, row deleted"
    )


def _engine_for(info: StackInfo, engine: Engine | bool, new_secrets: Mapping[str, str]) -> Engine | None:
    """The engine to apply the devstack again with, None for psql: the way it was applied first."""
    if not info.applied_with.startswith("pulumi"):
        if new_secrets:
            raise StackError(
                f"--config {', '.join(sorted(new_secrets))}: this devstack was applied with psql, which takes"
                " no secret from the stack config (`./dev down`, then `./dev up` with the Pulumi engine)"
            )
        return None
    if engine is False:
        raise StackError(
            "--no-engine: this devstack was applied with `pulumi up`, and is applied again the same way (psql"
            " would leave objects its Pulumi state does not know about); leave out --no-engine, or"
            " `./dev down` first"
        )
    found = engine if isinstance(engine, Engine) else find_engine()
    if found is None:
        raise StackError(
            "this devstack was applied with `pulumi up`, and this machine has no Pulumi engine now"
            " (scripts/setup builds it when Go is installed)"
        )
    return found


def _host_env(info: StackInfo, config: Mapping[str, object]) -> dict[str, str]:
    return function_host_env(
        supabase_url=info.supabase_url,
        database_url=info.database_url,
        service_role_key=info.service_role_key,
        bubble_base=info.bubble_base_url,
        bubble_token=info.bubble_token,
        config=config,
    )
