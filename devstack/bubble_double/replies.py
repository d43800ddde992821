"""Errors and replies of the Bubble double: `BubbleError` (Bubble's `{"statusCode", "body"}` error envelope),
the `Request` and `Reply` values passed between the HTTP plumbing (`server.py`) and the double
(`double.py`), and small helpers that build replies and `INVALID_DATA` errors and read a JSON body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


class BubbleError(Exception):
    """An error answered with Bubble's `{"statusCode", "body": {"status", "message"}}` envelope."""

    def __init__(self, status_code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status = status
        self.message = message

    def envelope(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "body": {"status": self.status, "message": self.message}}


def status_name(code: int) -> str:
    try:
        return HTTPStatus(code).name
    except ValueError:
        return "ERROR"


def invalid_data(message: str) -> BubbleError:
    return BubbleError(400, "INVALID_DATA", message)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Set by the close_after_store fault: the handler closes the socket instead of answering.
    drop: bool = False


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def error_reply(error: BubbleError, headers: dict[str, str] | None = None) -> Reply:
    return Reply(error.status_code, json.dumps(error.envelope()).encode(), headers=headers or {})


@dataclass
class Request:
    method: str
    path: str
    query: str
    authorization: str | None
    content_type: str
    body: bytes
    connection: int


def json_body(request: Request) -> Any:
    """The request's JSON body ({} when empty), or a 400 when it is not JSON."""
    if not request.body.strip():
        return {}
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise invalid_data(f"the body is not valid JSON: {exc}") from exc
