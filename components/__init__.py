"""bubble-sync's Pulumi building blocks: dynamic providers, the database connection settings, and the
components that wire them. Importing this package has no side effects (the dynamic-provider process
imports it to unpickle providers)."""
