"""bubble-sync: the Supabase side of syncing new signups to Bubble, for one stack.

Wiring only: read and validate the stack config, and the mappings against the database (every problem is
reported before any resource is declared), connect pulumi-postgresql to the project's database, declare the
BubbleSync component, export what an operator needs. See Pulumi.yaml for the config keys and components/
for everything else.
"""

import pulumi
import pulumi_postgresql as postgresql

from components.bubble_sync import BubbleSync, BubbleSyncArgs
from components.config import from_pulumi
from components.mapping_preview import verify_mappings

config = from_pulumi()
# The mappings against the database, before any change (skipped with a warning when it cannot be reached).
verify_mappings(config, pulumi.Config().get, pulumi.log.warn)
database = config.database
assert database is not None  # from_pulumi requires a connection

# pulumi-postgresql enables the extensions; without them (manageExtensions false) it is not needed at all.
postgres = (
    postgresql.Provider(
        "supabase-postgres",
        host=database.host,
        port=database.port,
        username=database.user,
        password=database.password,  # a secret Output
        database=database.dbname,
        sslmode=database.sslmode,
        # On Supabase `postgres` is not a superuser; the provider must not act like one.
        superuser=False,
    )
    if config.manage_extensions
    else None
)

sync = BubbleSync("bubble-sync", BubbleSyncArgs(config=config, postgres_provider=postgres))

pulumi.export("projectRef", config.project_ref)
pulumi.export("supabaseUrl", config.supabase_url)
pulumi.export("bubbleEnvironment", config.bubble_environment)
pulumi.export("databaseHost", database.host)
pulumi.export("queueTable", sync.queue_table)
pulumi.export("dispatchMode", sync.dispatch_mode)
pulumi.export("mappings", sync.mapping_names)
pulumi.export("cronJobs", sync.cron_job_names)
pulumi.export("functions", sync.function_names)
pulumi.export("vaultSecrets", sync.secret_names)
pulumi.export("edgeFunction", sync.edge_function_slug)
pulumi.export("healthCheck", "select * from bubble_sync.health();")
