"""One pg_net request sent the way pg_net drives libcurl, and its outcome as the `net._http_response` row
pg_net would insert: headers, redirects, timeouts, and curl's error texts."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from psycopg.types.json import Jsonb

# One logger for the whole double, the name its log lines had before it was split into modules.
log = logging.getLogger("devstack.pgnet_worker")

EXTVERSION = "0.20.4"
_MAX_REDIRECTS = 30  # curl's default CURLOPT_MAXREDIRS since 8.3

# curl_easy_strerror texts (libcurl 7.88.1)
UNSUPPORTED_PROTOCOL = "Unsupported protocol"
URL_MALFORMAT = "URL using bad/illegal format or missing URL"
COULDNT_RESOLVE_HOST = "Couldn't resolve host name"
COULDNT_CONNECT = "Couldn't connect to server"
WEIRD_SERVER_REPLY = "Weird server reply"
PARTIAL_FILE = "Transferred a partial file"
TOO_MANY_REDIRECTS = "Number of redirects hit maximum amount"
GOT_NOTHING = "Server returned nothing (no headers, no data)"
SEND_ERROR = "Failed sending data to the peer"
RECV_ERROR = "Failure when receiving data from the peer"
SSL_CONNECT_ERROR = "SSL connect error"
PEER_FAILED_VERIFICATION = "SSL peer certificate or SSH remote key was not OK"
BAD_FUNCTION_ARGUMENT = "A libcurl function was given a bad argument"


@dataclass(frozen=True)
class QueuedRequest:
    id: int
    method: str
    url: str
    timeout_ms: int
    header_lines: Sequence[str | None]
    body: bytes | None


@dataclass(frozen=True)
class ResponseRow:
    id: int
    status_code: int | None = None
    content: str | None = None
    headers: dict[str, str] | None = None
    content_type: str | None = None
    timed_out: bool = False
    error_msg: str | None = None

    def row(self) -> tuple[Any, ...]:
        headers = Jsonb(self.headers) if self.headers is not None else None
        return (
            self.id,
            self.status_code,
            self.content,
            headers,
            self.content_type,
            self.timed_out,
            self.error_msg,
        )


class _CurlFailure(Exception):
    """A request that fails before anything is sent, with curl's error text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=None,  # each request gets its own total deadline (CURLOPT_TIMEOUT_MS) in perform
        follow_redirects=True,
        max_redirects=_MAX_REDIRECTS,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),  # curl multi: no cap
        trust_env=False,
    )


async def perform(client: httpx.AsyncClient, request: QueuedRequest) -> ResponseRow:
    """Sends one request and describes the outcome as pg_net's insert_response() would. Never raises."""
    timings = _Timings()
    try:
        if request.timeout_ms < 0:
            log.warning(
                "request %d: negative timeout_milliseconds (pg_net's worker would crash-loop)", request.id
            )
            raise _CurlFailure(BAD_FUNCTION_ARGUMENT)
        prepared = _build_request(request, timings)
        deadline = request.timeout_ms / 1000 if request.timeout_ms > 0 else None
        async with asyncio.timeout(deadline):
            response = await client.send(prepared, stream=True)
            try:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
    except TimeoutError:
        result = ResponseRow(
            request.id, timed_out=True, error_msg=timings.timeout_message(request.timeout_ms)
        )
    except _CurlFailure as failure:
        result = ResponseRow(request.id, error_msg=failure.text)
    except Exception as exc:  # every failure becomes a response row, as in pg_net
        result = ResponseRow(request.id, error_msg=_curl_error_text(exc))
    else:
        result = _success(request.id, response, raw)
    log.debug(
        "request %d %s %s -> %s",
        request.id,
        request.method,
        _loggable_url(request.url),
        result.status_code if result.error_msg is None else result.error_msg,
    )
    return result


def _build_request(request: QueuedRequest, timings: _Timings) -> httpx.Request:
    url = _target_url(request.url)
    body = request.body.split(b"\0", 1)[0] if request.body is not None else None  # a C string to curl
    if request.method == "POST" and body is None:
        body = b""  # CURLOPT_POST with CURLOPT_POSTFIELDSIZE 0
    headers = _request_headers(request.header_lines, form_default=body is not None)
    return httpx.Request(
        request.method, url, headers=headers, content=body, extensions={"trace": timings.trace}
    )


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _target_url(raw: str) -> httpx.URL:
    """The URL as curl would take it from CURLOPT_URL, restricted to http and https."""
    match = _SCHEME.match(raw)
    if match is None:
        # curl guesses the scheme of a scheme-less URL ("localhost:6666" means http://localhost:6666)
        if raw.lower().startswith("ftp."):
            raise _CurlFailure(UNSUPPORTED_PROTOCOL)
        raw = "http://" + raw
    elif match.group(1).lower() not in ("http", "https"):
        raise _CurlFailure(UNSUPPORTED_PROTOCOL)  # CURLOPT_PROTOCOLS_STR "http,https"
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in raw):
        raise _CurlFailure(URL_MALFORMAT)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _CurlFailure(URL_MALFORMAT) from None
    if not url.host:
        raise _CurlFailure(URL_MALFORMAT)
    return url


def _request_headers(lines: Sequence[str | None], *, form_default: bool) -> list[tuple[bytes, bytes]]:
    """curl's header list: its own Accept (and form Content-Type when there is a body) unless the
    caller names them, then the caller's `name: value` lines and pg_net's User-Agent."""
    own = {b"accept": (b"Accept", b"*/*")}
    if form_default:
        own[b"content-type"] = (b"Content-Type", b"application/x-www-form-urlencoded")
    custom: list[tuple[bytes, bytes]] = []
    for line in [*lines, f"User-Agent: pg_net/{EXTVERSION}"]:
        if line is None:  # a JSON null header value
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name_bytes = name.strip().encode()
        own.pop(name_bytes.lower(), None)
        value = value.strip(" \t")
        if value:  # curl: "Name:" with nothing after it removes the header instead of sending it
            custom.append((name_bytes, value.encode()))
    return [*own.values(), *custom]


def _success(request_id: int, response: httpx.Response, raw: bytes) -> ResponseRow:
    # pg_net reads the headers of request 0 (the first response of a redirect chain) but the status
    # code and Content-Type of the last one
    first = response.history[0] if response.history else response
    headers: dict[str, str] = {}
    for name, value in first.headers.raw:
        headers[_text(name)] = _text(value)  # jsonb keeps the last of duplicate keys
    content_type = next((_text(v) for n, v in response.headers.raw if n.lower() == b"content-type"), None)
    body = raw.split(b"\0", 1)[0]  # stored from a C string
    return ResponseRow(
        request_id,
        status_code=response.status_code,
        content=_text(body) if body else None,
        headers=headers,
        content_type=content_type,
        timed_out=False,
    )


def _curl_error_text(exc: BaseException) -> str:
    """The curl_easy_strerror text for the curl error this httpx failure corresponds to."""
    if isinstance(exc, httpx.TooManyRedirects):
        return TOO_MANY_REDIRECTS
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UNSUPPORTED_PROTOCOL
    if isinstance(exc, httpx.ConnectError):
        causes = list(_causes(exc))
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            return PEER_FAILED_VERIFICATION
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return SSL_CONNECT_ERROR
        if any(isinstance(c, socket.gaierror) for c in causes):
            return COULDNT_RESOLVE_HOST
        return COULDNT_CONNECT
    if isinstance(exc, httpx.RemoteProtocolError):
        message = str(exc)
        if "without sending a response" in message:
            return GOT_NOTHING
        if "complete message body" in message:
            return PARTIAL_FILE
        return WEIRD_SERVER_REPLY
    if isinstance(exc, httpx.ReadError):
        return RECV_ERROR
    if isinstance(exc, httpx.WriteError):
        return SEND_ERROR
    if isinstance(exc, httpx.LocalProtocolError):
        # h11 refuses to send what curl would (a bad header name, CR/LF in a value); the message is
        # not passed on because it quotes the header
        return (
            "pg_net double worker: a request header cannot be sent over HTTP/1.1 (curl would send it as is)"
        )
    log.warning("unexpected %s while sending a request", type(exc).__name__)
    return f"pg_net double worker: unexpected {type(exc).__name__}"


class _Timings:
    """curl's per-transfer timings, approximated from httpx's trace events (seconds since start)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        self.marks.setdefault(event, time.monotonic() - self.start)

    def timeout_message(self, timeout_ms: int) -> str:
        """pg_net's detailed_timeout_strerror() (src/errors.c): which step the time went to."""
        total = time.monotonic() - self.start
        pretransfer = self.marks.get("http11.send_request_headers.started", 0.0)
        # httpx resolves and connects in one step: the DNS time is when connecting began
        namelookup = self.marks.get("connection.connect_tcp.started", pretransfer)
        connect = self.marks.get("connection.connect_tcp.complete", pretransfer)
        appconnect = self.marks.get("connection.start_tls.complete", 0.0)
        if namelookup == 0 and connect == 0:  # timed out resolving
            dns, handshake, http = total, 0.0, 0.0
        elif pretransfer == 0:  # timed out in the TCP or TLS handshake
            dns, handshake, http = namelookup, total - namelookup, 0.0
        else:  # timed out in the HTTP exchange
            dns = namelookup
            handshake = (connect - namelookup) + (appconnect - connect if appconnect > 0 else 0.0)
            http = total - pretransfer
        message = (
            f"Timeout of {timeout_ms} ms reached. Total time: {total * 1000:f} ms "
            f"(DNS time: {dns * 1000:f} ms, TCP/SSL handshake time: {handshake * 1000:f} ms, "
            f"HTTP Request/Response time: {http * 1000:f} ms)"
        )
        return message[:255]  # CURL_TIMEOUT_MSG_SIZE


def _causes(exc: BaseException) -> Sequence[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _loggable_url(url: str) -> str:
    """Scheme, host and path only: query strings can carry keys too."""
    return url.split("?", 1)[0].split("#", 1)[0]
