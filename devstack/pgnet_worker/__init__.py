"""TEST DOUBLE of pg_net 0.20's background worker (supabase/pg_net 0.20.4: src/worker.c, src/core.c,
src/errors.c), for the double extension in devstack/extensions/pg_net--0.20.4.sql.

What it mirrors:
  * the loop: wait for a wake (here a NOTIFY from `net.wake()`, which PostgreSQL delivers only when the
    requesting transaction commits); then, in ONE transaction, delete up to batch_size responses older
    than the TTL, `DELETE ... RETURNING` up to batch_size queue rows ordered by id, send them all at
    once, insert one `net._http_response` row per request, commit; sleep up to 1 s (a wake cuts it
    short) and repeat while the batch took requests or expired responses, then wait for the next wake.
    After every (re)start it processes the backlog first, as pg_net does;
  * the settings: `pg_net.batch_size` and `pg_net.ttl` are read for every batch when set in the
    database (ALTER SYSTEM / ALTER DATABASE ... SET), else the constructor's values apply;
  * the tables are locked with NOWAIT first, so a batch is skipped, not blocked, while the extension
    is being dropped; a missing extension is skipped the same way;
  * libcurl's behaviour where callers can see it: a TOTAL timeout per request (CURLOPT_TIMEOUT_MS,
    0 = none) measured from the start of the batch; redirects followed (at most 30); the request
    headers (`key: value` lines from the jsonb, a line with an empty value is not sent and suppresses
    curl's own header of that name, `User-Agent: pg_net/0.20.4` appended, `Accept: */*` and, with a
    body, `Content-Type: application/x-www-form-urlencoded` unless given); bodies cut at the first NUL;
  * the response row exactly as pg_net fills it. Success: status_code and Content-Type of the last
    response, headers (jsonb, name as sent, last duplicate wins) of the FIRST response of a redirect
    chain (pg_net asks curl for request 0), content NULL when empty, timed_out false, error_msg NULL.
    Timeout: timed_out true and pg_net's "Timeout of N ms reached. Total time: ... (DNS time: ...,
    TCP/SSL handshake time: ..., HTTP Request/Response time: ...)". Other failures: timed_out false
    and the curl_easy_strerror text curl would give, e.g. "Couldn't connect to server";
  * the curl_easy_strerror texts are libcurl 7.88's (Debian 12); newer curl words some differently
    ("Could not connect to server"), and pg_net's own tests accept either.

What it doesn't mirror:
  * it is a client connection (application_name 'pg_net double worker'), not a background worker: it
    serves the one database in its DSN and must be started by the devstack;
  * HTTP goes through httpx (HTTP/1.1 only, no proxies from the environment, certifi's CA bundle)
    instead of libcurl. So DNS time is not measured separately (it is counted in the TCP handshake),
    malformed response headers that curl tolerates (spaces in names, control characters) end as
    "Weird server reply", and request headers h11 refuses to send (bad names, CR/LF in values) end as
    a double-only error_msg starting with "pg_net double worker:";
  * response bytes that are not UTF-8 are stored with U+FFFD instead of raw;
  * where pg_net's worker dies with an ERROR and is restarted into it again, the double logs the
    problem and keeps going: a negative timeout_milliseconds gets curl's "A libcurl function was given
    a bad argument", an invalid pg_net.ttl or pg_net.batch_size falls back to the constructor's value,
    and a `headers` value that is not a JSON object fails every batch, leaving the queue stuck as in
    pg_net;
  * `net.worker_restart()` makes it reconnect at once; pg_net's worker comes back after 1 s.

Header values are never logged: they carry the service-role key.

Run it in the foreground with `python -m devstack.pgnet_worker --dsn DSN`; SIGTERM stops it. Modules:
`worker` (the loop and its transactions), `curl` (one request sent and recorded the way pg_net drives
libcurl), `cli` (the command line).
"""

from __future__ import annotations

from devstack.pgnet_worker.cli import main
from devstack.pgnet_worker.worker import WAKE_CHANNEL, NetWorker

__all__ = ["WAKE_CHANNEL", "NetWorker", "main"]
