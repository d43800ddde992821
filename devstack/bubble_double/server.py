"""HTTP plumbing of the Bubble double: `Server`, a threading HTTP server that tracks its connections so
`stop()` can drop keep-alive ones, and `_Handler`, which reads a request (Content-Length or chunked body,
size-capped), hands it to `BubbleDouble.handle` as a `Request` and writes the `Reply` back (or closes
the connection when a fault says so).
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devstack.bubble_double.replies import BubbleError, Reply, Request, error_reply, invalid_data

if TYPE_CHECKING:
    from devstack.bubble_double.double import BubbleDouble

MAX_BODY_BYTES = 16 * 1024 * 1024  # far above any real payload; only guards against runaway clients


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], double: BubbleDouble) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._connection_serial = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, sock: socket.socket) -> int:
        with self._connections_lock:
            self._connections.add(sock)
            self._connection_serial += 1
            return self._connection_serial

    def untrack(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(sock)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise go on being served after stop().
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or disconnect mid-request are expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _BodyError(Exception):
    def __init__(self, error: BubbleError) -> None:
        super().__init__(error.message)
        self.error = error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    server_version = "BubbleDouble/1.0"
    timeout = 120  # idle keep-alive limit; longer than Deno's (hyper's) 90 s pool idle timeout
    server: Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every response stalls for ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_number = self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the double keeps its own request log

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as exc:
            # The rest of the stream cannot be trusted, so answer and close.
            self.close_connection = True
            self._send(error_reply(exc.error, {"Connection": "close"}))
            return
        request = Request(
            method=self.command,
            path=split.path,
            query=split.query,
            authorization=self.headers.get("Authorization"),
            content_type=self.headers.get("Content-Type", ""),
            body=body,
            connection=self.connection_number,
        )
        reply = self.server.double.handle(request)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if not raw_length:
            return b""
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise _BodyError(invalid_data(f"bad Content-Length {raw_length!r}")) from exc
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BodyError(BubbleError(413, "PAYLOAD_TOO_LARGE", f"body of {length} bytes refused"))
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BodyError(invalid_data("malformed chunked body")) from exc
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers, unused
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(BubbleError(413, "PAYLOAD_TOO_LARGE", "chunked body too large"))
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            # A 204 has no body and, per RFC 9110, no Content-Length.
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status != 204 and reply.body:
                self.wfile.write(reply.body)
        except OSError:
            # The client gave up (e.g. timed out during a hang); nothing left to tell it.
            self.close_connection = True
