"""The HTTP server: one thread per connection, each request routed (routes.py) to its handler
against the server's one `State`, and logged as one JSON line."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from fake_platforms.protocol import (
    MAX_BODY_BYTES,
    BadRequest,
    Drop,
    Outcome,
    Reply,
    Request,
    rfc3339_ms,
)
from fake_platforms.routes import Route, resolve
from fake_platforms.state import State


class JsonLog:
    """One JSON object per line; writes from many threads never interleave."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        if self._stream is None:
            return
        line = json.dumps({"ts": rfc3339_ms(time.time()), **fields})
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Rust clients expect
    server_version = "fake-platforms/1.0"
    server: FakePlatformsServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        route, params, allowed = resolve(self.command, url.path)
        area = route.area if route else None
        try:
            outcome = self._outcome(route, params, allowed, url.path, url.query)
        except Exception as e:  # a bug here must not take the server down
            self.server.log.write(level="error", msg="handler failed", path=url.path,
                                  error=f"{type(e).__name__}: {e}")
            outcome = Reply(500, {"error": "internal error in the fake"})
        fields: dict[str, Any] = {"method": self.command, "path": url.path, "platform": area}
        if isinstance(outcome, Drop):
            self._drop()
            fields.update(status=None, outcome="dropped")
        else:
            fields.update(status=outcome.status, outcome=self._send(outcome))
        fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.server.log.write(level="info", msg="request", **fields)

    def _outcome(
        self, route: Route | None, params: dict[str, str], allowed: list[str], path: str, query: str
    ) -> Outcome:
        try:
            body = self._read_body(route.max_body if route else MAX_BODY_BYTES)
        except BadRequest as e:
            self.close_connection = True
            return Reply(400, {"error": str(e)})
        if route is None:
            if allowed:
                return Reply(405, {"error": f"{self.command} not allowed on {path}"},
                             {"Allow": ", ".join(allowed)})
            return Reply(404, {"error": f"no such endpoint: {self.command} {path}"})
        lists = parse_qs(query, keep_blank_values=True)
        req = Request(
            method=self.command,
            path=path,
            query={k: v[0] for k, v in lists.items()},
            headers=self.headers,
            body=body,
            host=self.headers.get("Host") or "%s:%s" % self.server.server_address[:2],
            params=params,
            query_lists=lists,
        )
        try:
            return route.handler(self.server.state, req)
        except BadRequest as e:
            return Reply(400, {"error": str(e)})

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if not 0 <= length <= limit:
            raise BadRequest(f"the body must be at most {limit} bytes")
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BadRequest(f"the body must be at most {limit} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, reply: Reply) -> str:
        raw = isinstance(reply.body, bytes)  # a page: sent as is, its headers name its type
        data = reply.body if raw else b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if reply.body is not None and not raw:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            return "answered"
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return "client gone"  # e.g. it timed out during an injected latency

    def _drop(self) -> None:
        """Close the connection without a byte of response: the answer is lost."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    # The default access log prints the raw request line, query string (and so Graph API
    # access tokens) included: requests are logged by `_handle` instead.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        self.server.log.write(level="warning", msg="protocol error", detail=format)


class FakePlatformsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog of 5 resets bursts of publishers

    def __init__(self, address: tuple[str, int], log_stream: TextIO | None) -> None:
        self.state = State()
        self.log = JsonLog(log_stream)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        self.log.write(level="warning", msg="connection error", error=type(error).__name__)


def make_server(
    host: str = "127.0.0.1", port: int = 0, log_stream: TextIO | None = sys.stderr
) -> FakePlatformsServer:
    """A bound server (port 0 picks a free one); call `serve_forever()` to run it.
    `log_stream=None` silences the request log."""
    return FakePlatformsServer((host, port), log_stream)
