"""A TEST DOUBLE of Bubble.io's Data API, for tests, the local dev stack and benchmarks only.

This is NOT Bubble and NOT a client of Bubble: no product code may import or depend on it. It serves
the subset of the Data API that bubble-sync uses, shaped after the Bubble manual and the notes in
`reference/supabase-facts.md` §6, plus knobs to make it slow, rate-limited or faulty on purpose.

Environments: `/api/1.1/...` is "live" and `/version-test/api/1.1/...` is "test"; each has its own data
store, as on Bubble. Tests: tests/test_bubble_double.py and tests/test_bubble_mappings_double.py (several
types, field types, relations, deletes, `/meta`, edits behind the client's back), each naming its source.

| Request                                       | Answer                                                     |
|-----------------------------------------------|------------------------------------------------------------|
| `POST   <prefix>/obj/<type>` JSON object      | 201 `{"status": "success", "id": "<id>"}`                  |
| `GET    <prefix>/obj/<type>/<id>`             | 200 `{"response": {...fields, "_id": ...}}`                |
| `PATCH  <prefix>/obj/<type>/<id>` JSON object | 204, merges the fields                                     |
| `PUT    <prefix>/obj/<type>/<id>` JSON object | 204, replaces the fields                                   |
| `DELETE <prefix>/obj/<type>/<id>`             | 204 (knob `delete_status`: 200), no body                   |
| `GET    <prefix>/obj/<type>?constraints=[..]` | 200 `{"response": {cursor, results, count, remaining}}`    |
| `POST   <prefix>/obj/<type>/bulk` text/plain  | 200 text/plain, one `{"status": ...}` line per input line  |
| `GET    <prefix>/meta`                        | 200 `{"get", "post", "types", "app_data"}` (see `meta.py`) |

An id no thing of the type has answers 404 `MISSING_DATA` ("Missing object of type <type>: object with id <id>
does not exist", the manual's example) to a GET, a modify and a delete.

* IDs look like Bubble's: `<13-digit ms timestamp>x<18 digits>`. Records carry `_id`, `Created Date` and
  `Modified Date` (ISO 8601, UTC, milliseconds) next to their fields; clients may not set those three.
* Search: `constraints` is a JSON array of `{"key", "constraint_type", "value"}`. Supported types:
  `equals`, `not equal`, `is_empty`, `is_not_empty`, `in`, `not in`, `text contains`, `not text contains`,
  `greater than`, `less than`, `contains`, `not contains`. `limit` defaults to 100 and is capped at 100;
  `cursor` is the 0-based start. Results come in creation order unless `sort_field` (and
  `descending=true`) is given; `additional_sort_fields` is ignored. `count` is the page size and
  `remaining` the number of matches after this page.
* Bulk: at most 1,000 lines; a failing line (bad JSON, not an object, duplicate email, ...) gets
  `{"status": "error", "message": ...}` and the other lines still succeed.
* Type `user` (manual, "Creating users"): a create needs `email` (and may carry `password`); the email must
  look like an email and be unique per environment, ignoring case. A user is stored, and read back, with its
  email under `authentication.email.email` (no plain `email` field) and never with its password. A search
  constraint with key `email` reaches that built-in email (knob `user_email_search`).
* Schema (knob `schema`, `{type: [display names]}` (text fields) or `{type: {display name: kind}}`): an app
  that knows its types. A kind is `text`, `number`, `boolean`, `date`, `image`, `file`,
  `geographic_address`, another type of the schema (a relation: `user`, `listing`, or Bubble's spelling
  `custom.listing`), or `list.` and one of those (`list.user`); e.g. `{"user": ["First Name"], "listing":
  {"Title": "text", "Price": "number", "Host": "user", "Guests": "list.user"}}`. Another type answers 404
  `NOT_FOUND`; a create or modify body with another key (a field id such as `supabase_id_text` included)
  answers 400 `{"status": "ERROR", "message": "Unrecognized field: <key>"}` (manual); search constraints
  accept the display name and Bubble's id (`<name, spaces as _>_<kind, dots as _>`: `host_user`). Values
  must fit the field (manual: "Must match field type"): a wrong type answers 400 `INVALID_DATA` "Invalid data
  for field <name>: ..." (wording UNCONFIRMED); a relation takes the `_id` of an existing thing of its type
  in the same environment, else 400 `INVALID_DATA` "... object with id <id> of type <type> does not exist"
  (manual silent; UNCONFIRMED); a date is an ISO 8601 string or milliseconds since 1970 and reads back as
  Bubble writes dates (`2026-12-05T09:13:51.123Z`). Without a schema any type, field and value is accepted.
* Null: a create leaves a null field empty; a modify (PATCH, PUT) with null empties the field (knob
  `null_modify`, below). Empty fields are left out of what a GET or search returns, as Bubble does.
* Every `/obj` request needs `Authorization: Bearer <token>`, compared in constant time; without it the
  answer is 401 with Bubble's own body `{"error_class": "Unauthorized", "args", "message": null,
  "translation"}`. Bubble's `?api_token=` alternative is not accepted (it is only redacted from the log).

Errors use the envelope from the Bubble manual, `{"statusCode": 404, "body": {"status": "MISSING_DATA",
"message": "..."}}`. `MISSING_DATA` and `ERROR` (400, an unrecognized field) are quoted from Bubble; the other
status strings are this double's choice and UNCONFIRMED: `INVALID_DATA` (400; a real app's answer to an
unknown option-set value), `NOT_VALID_EMAIL` (400), `USED_EMAIL` (400, duplicate email;
see `used_email_answer`), `TOO_MANY_REQUESTS` (429), `NOT_FOUND` (404, no such route or type),
`METHOD_NOT_ALLOWED` (405), `PAYLOAD_TOO_LARGE` (413); injected faults use the HTTP status name, e.g.
`SERVICE_UNAVAILABLE`.

Knobs, settable at construction, with `configure(...)` or `POST /_double/config`:

* `latency_ms`, `latency_jitter_ms`: each `/obj` request sleeps latency plus a uniform 0..jitter.
* `rate_limit_per_minute` (0 = off), `rate_limit_burst`: a token bucket refilled at rate/60 per second
  holding at most `burst` tokens (default `max(1, rate/60)`). Without a token the answer is 429 with an
  integer `Retry-After` (seconds until a token is available, at least 1); nothing is stored. A bulk call
  is one request.
* `faults`: a list of rules `{"kind": "status" | "hang" | "close_after_store", "status": 503,
  "hang_seconds": 30, "probability": 1, "count": N, "method": "POST", "path_regex": "..."}`. Rules are
  tried in order and at most one applies per request. `count` limits how many times a rule fires (then it
  is spent); `path_regex` is searched in the path without the query. `status` answers that status and
  stores nothing; `hang` sleeps, then processes normally; `close_after_store` processes the request
  (storing what it stores) and closes the connection without any response. Note: Deno's fetch re-sends
  a request once when a *pooled* keep-alive connection closes before the response (denoland/deno#32566),
  so from Deno this fault usually shows up as a second request, not as an error.
* `outage_status` (null = off): Bubble is down. Every `/obj` request answers this status (500..599, e.g.
  503 `SERVICE_UNAVAILABLE`) after its latency, whatever its API token, stores nothing and takes nothing
  from the rate limit's bucket; its log entry has `fault: "outage"`. A `status` fault rule comes after the
  rate limit (with the bucket empty a request gets 429 instead); while an outage is set, nothing gets any
  other answer.
* Where Bubble's manual is silent the double answers each documented-plausible way (a test runs the client
  against each): `used_email_answer` — `code` (400, `body.status` USED_EMAIL), `message` (400 INVALID_DATA,
  USED_EMAIL in the message), `worded` (400, no code at all), `conflict` (409); `user_email_search` —
  `builtin` (matches the built-in email, ignoring case), `empty` (finds nothing), `refused` (404
  NOT_FOUND); `user_email_patch` — `refuse` (default: a PATCH of a user's email or password is 400) or
  `accept`; `retry_after` on a 429 — `seconds`, `date` (an HTTP date) or `absent`; `null_modify` — `clear`
  (default: a modify with null empties the field, as a public client saw a real app do) or `refuse` (400);
  `delete_status` — `204` (default, as a third-party OpenAPI says) or `200`, no body either way.
* `meta_exposed` (default true): false makes `/meta` answer 404 `NOT_FOUND`, an app that does not describe
  itself, so a caller's fallback (probing the Data API) can be tested. An app without a schema answers 404
  there too. `/meta` lists every type of the schema (all exposed), fields as `{id, display, type}` with
  Bubble's ids and types, then the built-ins (`Created Date`, `Modified Date`, `Created By` but on User,
  `_id` shown as `unique ID`); `app_data.use_captions_for_get` is true. It answers without a token (a real
  app does), refuses a wrong one (401), and meets latency, outage, rate limit and faults like `/obj`.
* `bulk_ms_per_line`: a bulk call takes this long per line before answering (Bubble: up to 4 minutes for
  1,000 lines). Fault kind `bulk_capacity`: a bulk call answers 200 with ONE error line and stores nothing
  (manual: a capacity or system failure gives one error, no per-line results).
* `seed`: seeds the random choices (fault probabilities, jitter) so tests are deterministic.
* `token`: the API token (never echoed back).

Order of a `/obj` (or `/meta`) request: latency, outage, auth (401), rate limit (429), fault, operation.
Faults and the rate limit therefore never consume anything for unauthorised requests (nor during an outage).

Admin endpoints under `/_double/` (no auth; bind to localhost only; table in `admin.py`): `GET health`,
`GET records?env=live|test&type=user` (and `GET`, `PATCH`, `DELETE records/<id>?...`, `POST records?...`:
things edited behind the client's back), `GET requests`, `GET config`, `POST config` (JSON knobs),
`POST reset` (clears data, log, faults and an outage; keeps the other knobs). In Python the same edits are
`bubble.add(type, fields, env="live") -> id`, `bubble.modify(type, id, fields, env=...)` (a PATCH: a null
empties a field; Modified Date moves), `bubble.delete(type, id, env=...)`, `bubble.record(type, id, env=...)`
(a copy, or None) and `bubble.records(type, env=...)`. They take no token, latency, rate limit or fault and
are not logged, but the app's rules hold: a refusal raises ValueError with Bubble's message.

Request log entries, oldest first, hold `time` (when answered), `method`, `path`, `query`, `env`, `type`
(null for `/meta`), `status`, `responded` (false when the connection was dropped), `fault` (`outage` or the
rule's kind), `duration_ms`, `body_bytes`, `body` (the first 200 characters) and `connection` (a serial per
TCP connection, to check keep-alive); never the Authorization header.

Run it from the command line with `python -m devstack.bubble_double --port 0`, the token in
`BUBBLE_DOUBLE_TOKEN` (or `--token`, which wins but shows up in `ps`). Once listening it prints one line,
`BUBBLE_URL=http://127.0.0.1:<port>`, and it exits cleanly on SIGTERM or SIGINT.

The package, one module per part (at run time each imports only from those listed above it):

* `replies.py`: `BubbleError` (the error envelope), the `Request` / `Reply` values and reply helpers.
* `schema.py`: the `schema` knob's data types, field types, Bubble's field ids and the value checks.
* `things.py`: a stored thing's environments, id, built-in fields and dates; where a user's email sits.
* `app_rules.py`: `AppRules`, the app's schema and the answers the manual leaves open.
* `search.py`: search constraints (`parse_constraints`, `Constraint`) and the paging parameters.
* `store.py`: `Store`, the per-environment data store.
* `knobs.py`: `FaultRule`, knob validation (`validated_knobs`) and `TokenBucket`, the rate limiter.
* `meta.py`: the `/meta` document, with its sources.
* `server.py`: HTTP plumbing, `Server` and `_Handler` (bodies, keep-alive, dropping connections).
* `admin.py`: the `/_double/` admin endpoints.
* `double.py`: `BubbleDouble`, routing and the handling of Data API requests and `/meta`.
* `cli.py` and `__main__.py`: the command line, `main`.

`BubbleDouble`, `FaultRule` and `main` are importable from `devstack.bubble_double` itself.
"""

from __future__ import annotations

from devstack.bubble_double.cli import main
from devstack.bubble_double.double import BubbleDouble
from devstack.bubble_double.knobs import FaultRule
from devstack.bubble_double.things import user_email

__all__ = ["BubbleDouble", "FaultRule", "main", "user_email"]
