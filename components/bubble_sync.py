"""`BubbleSync`: the pipeline of one environment as one component: the database side, then the Edge Function.

Children, and what each `depends_on` (so `up` creates them in this order and `destroy` removes them in
reverse: cron jobs are unscheduled before anything they call goes away):

    pg_cron, pg_net          pulumi_postgresql.Extension; kept on destroy unless dropExtensionsOnDestroy
                             (manageExtensions false: SqlObject checks that they are enabled, never drops)
    queue                    QueueSchema (public.sync_queue + private schema bubble_sync)    <- extensions
                             the table and its rows are kept on destroy unless dropQueueOnDestroy
    functions                SqlFunction per function in sql/ (sql.catalogue)  <- queue, previous function
    Vault secrets            VaultSecret supabase_url, service_role_key, and alert_webhook_url when
                             alertWebhookUrl is set                                   (Vault is built in)
    dispatch trigger         SqlObject, only when dispatchMode is `immediate`
                                                        <- queue, dispatch_wake, Vault secrets
    mappings                 per mapping of bubble-sync:mappings: a SqlObject for its row in
                             bubble_sync.mappings <- queue, and one for its trigger on the source table
                                                        <- queue, every function, its row, secrets, dispatch
                             (destroy drops the trigger and leaves the table and its rows alone)
    cron jobs                CronJob bubble-sync-processor, bubble-sync-retry, bubble_sync.purge,
                             bubble_sync.verify, bubble_sync.alerts
                                                        <- pg_cron, every function, secrets, trigger
    function secrets         FunctionSecrets BUBBLE_* (Management API)
                                                        <- queue, every function, Vault secrets
    edge function            EdgeFunction bubble_sync (Management API)
                                                        <- the same, and the function secrets

The last two only when `deployEdgeFunction` is true (the default; false for users who deploy the function
with the Supabase CLI). The function works through the queue's SQL API, so it comes after the database
objects; its secrets come before it, so its first run finds its configuration. The access token is never
an input: the providers read it from the stack config or `SUPABASE_ACCESS_TOKEN` themselves. The sources'
hash is computed here, when the program runs, so `pulumi preview` shows a changed function.

Every SQL text comes from `sql_plan.sql_plan(config)`, the same units `python -m components render-sql`
prints, so the Pulumi program and the generated script cannot disagree. Importing this module has no side
effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from components.config import StackConfig
from components.function_env import function_env
from components.providers import (
    CronJob,
    CronJobArgs,
    EdgeFunction,
    EdgeFunctionArgs,
    FunctionSecrets,
    FunctionSecretsArgs,
    FunctionSourceError,
    QueueSchema,
    QueueSchemaArgs,
    SqlFunction,
    SqlFunctionArgs,
    SqlObject,
    SqlObjectArgs,
    VaultSecret,
    VaultSecretArgs,
    function_source_hash,
)
from components.sql.plan import QUEUE_TABLE, ExtensionUnit, SqlObjectUnit, SqlPlan, sql_plan

__all__ = ["FUNCTION_ENTRYPOINT", "FUNCTION_SLUG", "FUNCTION_SOURCE_DIR", "BubbleSync", "BubbleSyncArgs"]

FUNCTION_SLUG = "bubble_sync"
#: relative to the project root (the directory `pulumi` runs in), as the Supabase CLI lays it out
FUNCTION_SOURCE_DIR = "supabase/functions/bubble_sync"
FUNCTION_ENTRYPOINT = "index.ts"


@dataclass
class BubbleSyncArgs:
    """`config`: the validated stack config. `postgres_provider`: the pulumi-postgresql provider for the
    extensions (None: the default provider, configured by the `postgresql:` config namespace). The dynamic
    providers find the database themselves, from the same stack config (components/connection.py)."""

    config: StackConfig
    postgres_provider: postgresql.Provider | None = None


class BubbleSync(pulumi.ComponentResource):
    """Extensions, queue, functions, Vault secrets, dispatch trigger and cron jobs of one environment."""

    #: pulumi_postgresql.Extension each, or with manageExtensions false a SqlObject checking it is enabled
    extensions: list[pulumi.CustomResource]
    queue: QueueSchema
    functions: list[SqlFunction]
    secrets: list[VaultSecret]
    dispatch_trigger: SqlObject | None
    #: per mapping: its row in bubble_sync.mappings, then its trigger
    mappings: list[tuple[SqlObject, SqlObject]]
    cron_jobs: list[CronJob]
    function_secrets: FunctionSecrets | None
    edge_function: EdgeFunction | None

    queue_table: pulumi.Output[str]
    function_names: pulumi.Output[list[str]]
    secret_names: pulumi.Output[list[str]]
    cron_job_names: pulumi.Output[list[str]]
    dispatch_mode: pulumi.Output[str]
    mapping_names: pulumi.Output[list[str]]
    edge_function_slug: pulumi.Output[str | None]

    def __init__(self, name: str, args: BubbleSyncArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = args.config
        if config.service_role_key is None or config.supabase_url is None:
            raise ValueError("BubbleSync needs a deploy config (load_config without for_sql=True)")
        plan = sql_plan(config, pulumi.get_stack())
        source_hash = None
        if config.deploy_edge_function:
            if config.supabase_access_token is None:
                # load_config reports this as a config problem first; this guards other callers.
                raise ValueError(
                    "deploying the Edge Function needs a Management API token: set "
                    "bubble-sync:supabaseAccessToken or SUPABASE_ACCESS_TOKEN, or deployEdgeFunction false"
                )
            try:
                source_hash = function_source_hash(FUNCTION_SOURCE_DIR, FUNCTION_ENTRYPOINT)
            except FunctionSourceError as exc:
                raise pulumi.RunError(f"bubble_sync Edge Function: {exc}") from None
        super().__init__("bubblesync:index:BubbleSync", name, None, opts)

        self.extensions = self._extensions(name, plan, config, args.postgres_provider)
        self.queue = QueueSchema(
            f"{name}-queue",
            QueueSchemaArgs(
                ddl=plan.queue.ddl,
                columns={column: list(types) for column, types in plan.queue.columns.items()},
                drop_table_on_delete=config.drop_queue_on_destroy,
            ),
            # After the extensions, so destroy removes our objects before an extension that may be dropped
            # (dropExtensionsOnDestroy), and `up` applies things in the script's order.
            pulumi.ResourceOptions(parent=self, depends_on=self.extensions),
        )
        self.functions = self._functions(name, plan)
        self.secrets = self._secrets(name, plan, config)
        self.dispatch_trigger = self._dispatch_trigger(name, plan)
        self.mappings = self._mappings(name, plan)
        self.cron_jobs = self._cron_jobs(name, plan)
        self.function_secrets = None
        self.edge_function = None
        if source_hash is not None:
            self.function_secrets, self.edge_function = self._edge_function(name, config, source_hash)

        self.queue_table = pulumi.Output.from_input(QUEUE_TABLE)
        self.function_names = pulumi.Output.from_input([unit.spec.signature for unit in plan.functions])
        self.secret_names = pulumi.Output.from_input([unit.name for unit in plan.secrets])
        self.cron_job_names = pulumi.Output.from_input([unit.name for unit in plan.cron_jobs])
        self.dispatch_mode = pulumi.Output.from_input(config.dispatch_mode)
        self.mapping_names = pulumi.Output.from_input([unit.mapping.name for unit in plan.mappings])
        self.edge_function_slug = pulumi.Output.from_input(FUNCTION_SLUG if self.edge_function else None)
        self.register_outputs(
            {
                "queue_table": self.queue_table,
                "function_names": self.function_names,
                "secret_names": self.secret_names,
                "cron_job_names": self.cron_job_names,
                "dispatch_mode": self.dispatch_mode,
                "mapping_names": self.mapping_names,
                "edge_function_slug": self.edge_function_slug,
            }
        )

    def _extensions(
        self, name: str, plan: SqlPlan, config: StackConfig, provider: postgresql.Provider | None
    ) -> list[pulumi.CustomResource]:
        extensions: list[pulumi.CustomResource] = []
        for unit in plan.extensions:
            if not unit.managed:
                extensions.append(self._required_extension(name, unit))
                continue
            extensions.append(
                postgresql.Extension(
                    f"{name}-{unit.name.replace('_', '-')}",
                    # Explicit name: the bridge would otherwise autoname it (pg_cron-1a2b3c4).
                    name=unit.name,
                    schema=unit.schema,
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        # The stack's connection (non-superuser, its sslmode), not an ambient default.
                        provider=provider,
                        # Dropping pg_cron deletes every cron job in the database, ours or not, and either
                        # extension may have been enabled before this stack: destroy leaves them in place
                        # unless dropExtensionsOnDestroy says otherwise.
                        retain_on_delete=not config.drop_extensions_on_destroy,
                    ),
                )
            )
        return extensions

    def _required_extension(self, name: str, unit: ExtensionUnit) -> SqlObject:
        """An extension enabled in the dashboard: `up` fails with what to do when it is missing, refresh
        reports it gone, and destroy leaves it."""
        return self._sql_object(
            f"{name}-requires-{unit.name.replace('_', '-')}",
            unit.requirement,
            pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _sql_object(resource_name: str, unit: SqlObjectUnit, opts: pulumi.ResourceOptions) -> SqlObject:
        args = SqlObjectArgs(
            name=unit.name,
            apply_sql=unit.apply_sql,
            drop_sql=unit.drop_sql,
            probe_sql=unit.probe_sql,
            expected=unit.expected,
        )
        return SqlObject(resource_name, args, opts)

    def _functions(self, name: str, plan: SqlPlan) -> list[SqlFunction]:
        functions: list[SqlFunction] = []
        for unit in plan.functions:
            # After the queue (functions return its row type) and after the functions before it in
            # the order of sql/ (SQL-language bodies are checked against what they call).
            after: list[pulumi.Resource] = [self.queue, *functions[-1:]]
            functions.append(
                SqlFunction(
                    f"{name}-fn-{unit.spec.schema}.{unit.spec.name}",
                    SqlFunctionArgs(
                        schema=unit.spec.schema,
                        name=unit.spec.name,
                        identity_args=unit.spec.identity_args,
                        definition=unit.definition,
                        execute_grants=unit.execute_grants,
                    ),
                    pulumi.ResourceOptions(parent=self, depends_on=after),
                )
            )
        return functions

    def _secrets(self, name: str, plan: SqlPlan, config: StackConfig) -> list[VaultSecret]:
        values: dict[str, pulumi.Input[str]] = {
            "supabase_url": config.supabase_url,  # type: ignore[dict-item]  # checked in __init__
            "service_role_key": config.service_role_key,  # type: ignore[dict-item]
        }
        if config.alert_webhook_url is not None:
            values["alert_webhook_url"] = config.alert_webhook_url
        secrets = []
        for unit in plan.secrets:
            secrets.append(
                VaultSecret(
                    f"{name}-secret-{unit.name}",
                    VaultSecretArgs(
                        name=unit.name,
                        # Secret in the state whatever the config gave (the resource also lists the output
                        # in additional_secret_outputs).
                        value=pulumi.Output.secret(values[unit.variable]),
                        description=unit.description,
                    ),
                    # Vault ships with every Supabase project; nothing of ours must exist first.
                    pulumi.ResourceOptions(parent=self),
                )
            )
        return secrets

    def _dispatch_trigger(self, name: str, plan: SqlPlan) -> SqlObject | None:
        unit = plan.dispatch_trigger
        if unit is None:
            return None
        wake = next(
            f for f, u in zip(self.functions, plan.functions, strict=True) if u.spec.name == "dispatch_wake"
        )
        return self._sql_object(
            f"{name}-dispatch-trigger",
            unit,
            # The trigger fires dispatch_wake, which reads the Vault secrets: all of them first, and on
            # destroy the trigger goes before them.
            pulumi.ResourceOptions(parent=self, depends_on=[self.queue, wake, *self.secrets]),
        )

    def _mappings(self, name: str, plan: SqlPlan) -> list[tuple[SqlObject, SqlObject]]:
        made = []
        for unit in plan.mappings:
            record = self._sql_object(
                f"{name}-mapping-{unit.mapping.name}",
                unit.record,
                pulumi.ResourceOptions(parent=self, depends_on=[self.queue]),
            )
            # The trigger queues changes the moment it exists: everything a queued row touches comes
            # first (enqueue and the trigger function, the dispatch trigger and the secrets it reads), and
            # on destroy it goes first, before anything it calls.
            needs: list[pulumi.Resource] = [self.queue, *self.functions, record, *self.secrets]
            if self.dispatch_trigger is not None:
                needs.append(self.dispatch_trigger)
            trigger = self._sql_object(
                f"{name}-trigger-{unit.mapping.name}",
                unit.trigger,
                pulumi.ResourceOptions(parent=self, depends_on=needs),
            )
            made.append((record, trigger))
        return made

    def _cron_jobs(self, name: str, plan: SqlPlan) -> list[CronJob]:
        # A job may run the moment it exists: everything it calls comes first, and destroy unschedules the
        # jobs before dropping any of it.
        needs: list[pulumi.Resource] = [*self.extensions, *self.functions, *self.secrets]
        if self.dispatch_trigger is not None:
            needs.append(self.dispatch_trigger)
        return [
            CronJob(
                f"{name}-job-{unit.name}",
                CronJobArgs(name=unit.name, schedule=unit.schedule, command=unit.command, active=True),
                pulumi.ResourceOptions(parent=self, depends_on=needs),
            )
            for unit in plan.cron_jobs
        ]

    def _edge_function(
        self, name: str, config: StackConfig, source_hash: str
    ) -> tuple[FunctionSecrets, EdgeFunction]:
        assert config.project_ref is not None and config.bubble_base_url is not None  # a deploy config
        assert config.bubble_api_token is not None
        # The function's configuration from the stack's (components/function_env.py). Every value is kept
        # secret in the state (the whole map is); the token is marked secret whatever form it came in.
        values: dict[str, pulumi.Input[str]] = dict(function_env(config))
        values["BUBBLE_API_TOKEN"] = pulumi.Output.secret(config.bubble_api_token)
        # The function claims and completes rows through the queue's SQL API: the queue, its functions and
        # the Vault secrets exist first, and on destroy the function goes before them.
        database: list[pulumi.Resource] = [self.queue, *self.functions, *self.secrets]
        secrets = FunctionSecrets(
            f"{name}-function-secrets",
            FunctionSecretsArgs(project_ref=config.project_ref, secrets=values),
            pulumi.ResourceOptions(parent=self, depends_on=database),
        )
        function = EdgeFunction(
            f"{name}-edge-function",
            EdgeFunctionArgs(
                project_ref=config.project_ref,
                slug=FUNCTION_SLUG,
                source_dir=FUNCTION_SOURCE_DIR,
                entrypoint=FUNCTION_ENTRYPOINT,
                # New sb_secret_ keys are not JWTs: the function checks the caller's key itself.
                verify_jwt=False,
                source_hash=source_hash,
            ),
            # Its secrets first, so the first run already finds its configuration.
            pulumi.ResourceOptions(parent=self, depends_on=[*database, secrets]),
        )
        return secrets, function
