"""The `/_double/` admin endpoints of the Bubble double (no auth; the double binds to localhost): health,
the request log, knobs, reset, and the things of a type, which a test lists, reads, adds, changes and
deletes behind the client's back as an editor or a workflow in Bubble would. Admin requests are not Data API
requests: they take no token, latency, rate limit or fault, and the request log does not show them.

| Request                                             | Answer                                              |
|-----------------------------------------------------|-----------------------------------------------------|
| `GET    health`                                     | 200 `{"status": "ok"}`                              |
| `GET    records?type=<type>&env=live\\|test`         | 200 `{"records": [...]}`, in creation order         |
| `GET    records/<id>?type=<type>&env=...`           | 200 `{"record": {...}}`, or 404 MISSING_DATA        |
| `POST   records?type=<type>&env=...` JSON fields    | 201 `{"id": "<id>"}`                                |
| `PATCH  records/<id>?type=<type>&env=...` JSON      | 200 `{"record": {...}}` (a null empties a field)    |
| `DELETE records/<id>?type=<type>&env=...`           | 200 `{"status": "ok"}`, or 404 MISSING_DATA         |
| `GET    requests`                                   | 200 `{"requests": [...], "dropped": n}`             |
| `GET    config` / `POST config` JSON knobs          | 200 `{"config": {...}}`                             |
| `POST   reset`                                      | 200 `{"status": "ok"}`                              |

`env` defaults to `live`. An edit Bubble's rules refuse (an unknown field, a wrong type, a relation to no
thing, a used email) answers as the Data API would, in Bubble's error envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from devstack.bubble_double.replies import (
    BubbleError,
    Reply,
    Request,
    error_reply,
    invalid_data,
    json_body,
    json_reply,
)
from devstack.bubble_double.things import ENVS, missing_data

if TYPE_CHECKING:
    from devstack.bubble_double.double import BubbleDouble


def handle_admin(double: BubbleDouble, request: Request) -> Reply:
    name = request.path[len("/_double/") :].rstrip("/")
    params = {key: values[0] for key, values in parse_qs(request.query).items()}
    try:
        if name == "records" or name.startswith("records/"):
            return _records(double, request, params, unquote(name[len("records/") :]) or None)
        return _control(double, request, name)
    except BubbleError as exc:
        return error_reply(exc)


def _control(double: BubbleDouble, request: Request, name: str) -> Reply:
    action = (request.method, name)
    if action == ("GET", "health"):
        return json_reply(200, {"status": "ok"})
    if action == ("GET", "requests"):
        entries, dropped = double.request_log()
        return json_reply(200, {"requests": entries, "dropped": dropped})
    if action == ("GET", "config"):
        return json_reply(200, {"config": double.config()})
    if action == ("POST", "config"):
        knobs = json_body(request)
        if not isinstance(knobs, dict):
            raise invalid_data("config needs a JSON object of knobs")
        try:
            double.configure(**knobs)
        except ValueError as exc:
            raise invalid_data(str(exc)) from exc
        return json_reply(200, {"config": double.config()})
    if action == ("POST", "reset"):
        double.reset()
        return json_reply(200, {"status": "ok"})
    raise _no_route(request)


def _records(double: BubbleDouble, request: Request, params: dict[str, str], thing_id: str | None) -> Reply:
    env, type_ = params.get("env", "live"), params.get("type")
    if env not in ENVS or not type_:
        raise invalid_data("records needs ?type=<type> and optionally env=live|test")
    method = request.method
    if thing_id is None and method == "GET":
        return json_reply(200, {"records": double.records(type_, env)})
    if thing_id is None and method == "POST":
        return json_reply(201, {"id": double.edit_create(type_, json_body(request), env)})
    if thing_id is not None and method == "GET":
        thing = double.record(type_, thing_id, env)
        if thing is None:
            raise missing_data(type_, thing_id)
        return json_reply(200, {"record": thing})
    if thing_id is not None and method == "PATCH":
        double.edit_modify(type_, thing_id, json_body(request), env)
        return json_reply(200, {"record": double.record(type_, thing_id, env)})
    if thing_id is not None and method == "DELETE":
        double.edit_delete(type_, thing_id, env)
        return json_reply(200, {"status": "ok"})
    raise _no_route(request)


def _no_route(request: Request) -> BubbleError:
    return BubbleError(404, "NOT_FOUND", f"no admin route {request.method} {request.path}")
