"""The one table of stack config keys: each key's type, default, range, whether it is a secret, and the Edge
Function's variable that carries it. `Pulumi.yaml`'s `config:` schema mirrors it (tests/test_config.py),
`components/config.py` validates by it, and `components/function_env.py` makes the function's settings
from it.

Every key lives in the project namespace `bubble-sync` (`pulumi config set batchSize 100` writes
`bubble-sync:batchSize`). Pure data: nothing happens at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["KEYS", "PROJECT", "REQUESTS_PER_ROW_MAX", "KeySpec"]

PROJECT = "bubble-sync"

# The most Bubble requests one queue row can need in a row (the Edge Function gets it from settings.ts).
REQUESTS_PER_ROW_MAX = 4


@dataclass(frozen=True)
class KeySpec:
    """One stack config key as `Pulumi.yaml` declares it (`default=None`: no default, so required).

    `array` keys hold structured config (`items`: the type of their elements; the default `()` is `[]` in
    `Pulumi.yaml`): `pulumi config set --path 'bubble-sync:mappings[0].table' public.profiles` writes YAML in
    the stack file, and the program gets the value as JSON text. The CLI checks only that it is a list of
    `items`; the program validates the rest.

    `secret`: the value must be stored encrypted (`pulumi config set --secret`); the program refuses a plain
    one. `Pulumi.yaml` says `secret: true` only for required secrets (`schema_secret`): the CLI applies a
    default as a plain value and then refuses it as not encrypted, so an optional secret key that carried
    `secret: true` would stop every stack that leaves it unset.
    """

    name: str
    type: Literal["string", "integer", "boolean", "array"]
    description: str
    default: str | int | bool | tuple[()] | None = None
    secret: bool = False
    #: inclusive bounds of an integer key
    range: tuple[int, int] | None = None
    #: the bubble_sync Edge Function's environment variable carrying the value (components/function_env.py)
    env: str | None = None
    #: the type of an array key's elements
    items: Literal["object"] | None = None

    @property
    def schema_secret(self) -> bool:
        """Whether `Pulumi.yaml` declares the key `secret: true` (the CLI then enforces encryption)."""
        return self.secret and self.default is None


# Optional keys get a default ("" means "not set") because the Pulumi CLI rejects a stack that lacks a
# schema-declared key with no default ("Stack 'x' is missing configuration value 'y'").
KEYS: tuple[KeySpec, ...] = (
    KeySpec("projectRef", "string", "Supabase project ref: the 20 lowercase letters in <ref>.supabase.co"),
    KeySpec(
        "databaseUrl", "string",
        "postgresql://user:password@host:port/dbname?sslmode=require. Either this or dbHost + dbPassword. "
        "From IPv4-only CI use the session pooler: aws-0-<region>.pooler.supabase.com:5432, "
        "user postgres.<projectRef>",
        default="", secret=True,
    ),
    KeySpec("dbHost", "string", "db.<projectRef>.supabase.co (IPv6) or aws-0-<region>.pooler.supabase.com",
            default=""),
    KeySpec("dbPort", "integer", "5432 (direct, or pooler session mode)", default=5432, range=(1, 65535)),
    KeySpec("dbUser", "string", "postgres (direct) or postgres.<projectRef> (pooler)", default="postgres"),
    KeySpec("dbPassword", "string", "database password (with dbHost)", default="", secret=True),
    KeySpec("dbName", "string", "database name", default="postgres"),
    KeySpec("dbSslMode", "string", "disable | require | verify-ca | verify-full", default="require"),
    KeySpec("supabaseUrl", "string", "API URL; default https://<projectRef>.supabase.co", default=""),
    KeySpec("serviceRoleKey", "string", "service_role key (JWT or sb_secret_...), stored in Vault",
            secret=True),
    KeySpec("supabaseAccessToken", "string",
            "Management API token for the Edge Function deploy; or env SUPABASE_ACCESS_TOKEN",
            default="", secret=True),
    KeySpec("managementApiUrl", "string",
            "Management API base URL; default env SUPABASE_MANAGEMENT_API_URL, else https://api.supabase.com",
            default=""),
    KeySpec("deployEdgeFunction", "boolean",
            "deploy the bubble_sync Edge Function and its secrets (false: you deploy it with the CLI)",
            default=True),
    KeySpec("bubbleBaseUrl", "string",
            "https://<app>.bubbleapps.io/api/1.1 (live) or .../version-test/api/1.1 (development)",
            env="BUBBLE_BASE_URL"),
    KeySpec("bubbleApiToken", "string", "Bubble Data API token", secret=True, env="BUBBLE_API_TOKEN"),
    KeySpec("bubbleDataType", "string", "Bubble data type signups are written to", default="user",
            env="BUBBLE_DATA_TYPE"),
    KeySpec("bubbleExternalKeyField", "string",
            "Bubble field holding the signup's stable external key (looked up before a create)",
            default="supabase_id", env="BUBBLE_EXTERNAL_KEY_FIELD"),
    KeySpec("bubbleBulkCreate", "boolean", "create backlogs through Bubble's bulk endpoint", default=False,
            env="BUBBLE_BULK_CREATE"),
    # 240 s: Bubble may take up to 4 minutes over a bulk call (manual); the run's time budget may cut it.
    KeySpec("bubbleBulkTimeoutSeconds", "integer",
            "timeout of a bulk create call (10..400); each call carries as many lines as Bubble can finish "
            "in it, at most 1,000, and never outlasts the run's time budget", default=240, range=(10, 400),
            env="BUBBLE_BULK_TIMEOUT_SECONDS"),
    # false: Bubble does not document whether PATCH /obj/user may change the built-in email and password.
    KeySpec("bubbleModifyUserCredentials", "boolean",
            "send email and password when modifying a Bubble user (off: an UPDATE, or linking an existing "
            "user, leaves them out; Bubble does not document whether a modify may change them)",
            default=False, env="BUBBLE_MODIFY_USER_CREDENTIALS"),
    # 300 s: Bubble may take up to 4 minutes over a bulk create, and stores what it finishes after we gave up.
    KeySpec("bubbleSettleSeconds", "integer",
            "after a create whose outcome is unknown (timeout, dropped connection, missing bulk line), "
            "seconds before the row is looked up again: Bubble may still be storing it (0..3600)",
            default=300, range=(0, 3600), env="BUBBLE_SETTLE_SECONDS"),
    KeySpec("processorSchedule", "string", "cron schedule of bubble-sync-processor", default="* * * * *"),
    KeySpec("retrySchedule", "string", "cron schedule of bubble-sync-retry", default="*/5 * * * *"),
    KeySpec("maintenanceSchedule", "string", "cron schedule of the maintenance job bubble_sync.purge",
            default="17 3 * * *"),
    # Hourly, off the hour: a difference made in Bubble is found within the hour, one search per 100 records.
    KeySpec("verifySchedule", "string",
            "cron schedule of the scheduled verification bubble_sync.verify (a sample of each mapping "
            "checked against Bubble)", default="7 * * * *"),
    # 100: one `in` search per mapping and run; half the most recently synced records, half older ones.
    KeySpec("verifySample", "integer",
            "records of each mapping a scheduled verification checks: the most recently synced half, and "
            "older ones at random (1..10000)", default=100, range=(1, 10_000),
            env="BUBBLE_SYNC_VERIFY_SAMPLE"),
    # Optional: without it the alerts are still evaluated (status shows them) but never posted. A secret,
    # since a Slack webhook URL is a credential; stored in Vault as alert_webhook_url.
    KeySpec("alertWebhookUrl", "string",
            "Slack-compatible webhook the database posts alerts to (stored in Vault as alert_webhook_url); "
            "\"\": none posted", default="", secret=True),
    # 10 min: a breaker that closes again within minutes (a Bubble deploy, a blip) is nobody's business.
    KeySpec("alertAfterMinutes", "integer",
            "an alert is posted when Bubble's circuit breaker has been open this long (1..1440)", default=10,
            range=(1, 1440)),
    # 15 min: longer than the processor's minute and a few retries; status's own limit is 10.
    KeySpec("alertBacklogMinutes", "integer",
            "an alert is posted when the oldest pending change has waited this long (1..1440)", default=15,
            range=(1, 1440)),
    KeySpec("batchSize", "integer", "rows claimed per edge-function run (1..1000)", default=50,
            range=(1, 1000), env="BUBBLE_SYNC_BATCH_SIZE"),
    # 0: concurrency follows bubbleRateLimitPerMinute and Bubble's answer time, so a plan's limit is reached
    # without tuning (15,000/min at 150 ms needs about 50 requests in flight; the legacy 1,000/min, 3).
    KeySpec("concurrency", "integer",
            "parallel Bubble requests: 0 = as many as bubbleRateLimitPerMinute needs at Bubble's measured "
            "answer time (2..200 a run, in parallel runs when a batch is too few); 1..500 = fixed, one run "
            "at a time", default=0, range=(0, 500),
            env="BUBBLE_SYNC_CONCURRENCY"),
    # Bubble's documented floor for legacy plans; set your plan's figure. The function spaces its requests at
    # this rate: over it Bubble answers 429 and the rest of the backlog waits for the next wake.
    KeySpec("bubbleRateLimitPerMinute", "integer",
            "Bubble requests per minute the function may send (your plan's limit; 0 = unpaced)",
            default=1000, range=(0, 1_000_000), env="BUBBLE_RATE_LIMIT_PER_MINUTE"),
    # 20 %: a reconcile reads 100 things a request, so a fifth of the limit compares 100,000 records in under
    # 5 minutes on a 25,000/min plan, and the live sync keeps four fifths. An integer percent, not a 0..1
    # share: Pulumi.yaml's config types have no number (string, integer, boolean, array, object: the Pulumi
    # SDK's go/common/workspace/project.json, SimpleConfigType), so a fraction would go unchecked by the CLI.
    # Read by `python -m components reconcile` only (the function never sees it).
    KeySpec("reconcileRatePercent", "integer",
            "the share of bubbleRateLimitPerMinute `python -m components reconcile` may take, in percent "
            "(1..100); the live sync keeps the rest", default=20, range=(1, 100)),
    # 3: the default of the user's existing sync_queue.max_retries, kept so adopted rows behave as before.
    KeySpec("maxRetries", "integer",
            "times a worker may die holding a row before it fails permanently (0..50); Bubble's transient "
            "failures retry until retryHorizonHours instead", default=3, range=(0, 50)),
    # 24 h: rides out any Bubble outage short of a day without a person; trusted job systems retry for days.
    KeySpec("retryHorizonHours", "integer",
            "hours a row keeps retrying Bubble's transient failures (5xx, 408, timeouts) before it fails "
            "permanently (1..720)", default=24, range=(1, 720)),
    # 10: a Bubble that fails one request in six (tests/test_faults.py) is not down; ten in a row is.
    KeySpec("bubbleBreakerFailures", "integer",
            "Bubble's transient failures in a row (5xx, 408, timeouts) that open the circuit breaker: then "
            "only one probe request per bubbleProbeSeconds goes to Bubble (1..1000)", default=10,
            range=(1, 1000)),
    KeySpec("bubbleProbeSeconds", "integer",
            "while the circuit breaker is open, seconds between probe requests to Bubble (5..3600)",
            default=30, range=(5, 3600)),
    # 180 s: longer than an Edge Function may run on the Free plan (150 s wall clock), so a worker that
    # is still alive never loses its rows to another.
    KeySpec("leaseSeconds", "integer", "how long a claim is held (30..900); must exceed 4 x httpTimeoutMs",
            default=180, range=(30, 900), env="BUBBLE_SYNC_LEASE_SECONDS"),
    # pg_net's own default; the function answers at once and works in the background. Supabase answers 504
    # after 150 s without a response, so longer waits buy nothing.
    KeySpec("httpTimeoutMs", "integer", "timeout of each HTTP call, pg_net and Bubble (1000..150000)",
            default=5000, range=(1000, 150_000), env="BUBBLE_SYNC_HTTP_TIMEOUT_MS"),
    KeySpec("runDetailsRetentionDays", "integer", "days of cron.job_run_details kept for our jobs",
            default=7, range=(1, 365)),
    KeySpec("completedRetentionDays", "integer", "days completed sync_queue rows are kept", default=30,
            range=(1, 3650)),
    KeySpec("dispatchMode", "string", "immediate (trigger + cron safety net) | cron (cron only)",
            default="immediate"),
    KeySpec("manageExtensions", "boolean",
            "enable pg_cron and pg_net with pulumi-postgresql (false: enabled in the dashboard, checked)",
            default=True),
    KeySpec("dropExtensionsOnDestroy", "boolean",
            "drop pg_cron/pg_net on destroy (deletes EVERY cron job in the database)", default=False),
    KeySpec("dropQueueOnDestroy", "boolean", "drop sync_queue and its rows on destroy", default=False),
    # Structured: validated by components/mapping_config.py, in the function's env as BUBBLE_SYNC_MAPPINGS
    # only when there are mappings (function_env.py), so a stack without them runs as before.
    KeySpec("mappings", "array",
            "tables synced to Bubble types, each {name, table, key, dataType, keyField, fields, where, "
            "operations, onDelete} (docs/mappings.md); none: what your code queues goes to bubbleDataType",
            default=(), items="object"),
)  # fmt: skip
