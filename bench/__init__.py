"""End-to-end benchmark of bubble-sync on the local stack (`python -m bench`; see bench/README.md).

Not a test: it measures. Each profile gets its own PostgreSQL cluster (real pg_cron), pg_net worker
double, Bubble double (with latency and a rate limit) and Deno function host, the stack SQL applied with the
profile's settings; then signups arrive at a steady rate and in a burst, and the run reports throughput,
signup-to-Bubble latency and Bubble requests per synced row.
"""
