"""The daemon's operations endpoint: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Off unless a listen address is given; loopback by default. Read-only routes need no
credentials (they expose no secret); routes that change something authenticate per request
(see ``rotator.triggers``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any) -> Response:
        return cls(status, (json.dumps(data, indent=2) + "\n").encode())


#: A route handler gets the request (method, path, headers, body) and answers.
Handler = Callable[["Request"], Response]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client: str


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[v6]:PORT`` -> (host, port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address must be HOST:PORT, not {listen!r}")
    return host, int(port)


class OpsServer:
    """A small threaded HTTP server with exact-path and prefix routes."""

    def __init__(self, listen: str) -> None:
        self.host, self.port = parse_listen(listen)
        self.routes: dict[tuple[str, str], Handler] = {}
        self.prefix_routes: list[tuple[str, str, Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, path: str, handler: Handler, *, prefix: bool = False) -> None:
        if prefix:
            self.prefix_routes.append((method, path, handler))
        else:
            self.routes[(method, path)] = handler

    def start(self) -> OpsServer:
        server_class = _V6Server if ":" in self.host else ThreadingHTTPServer
        self._server = server_class((self.host, self.port), _handler_class(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)
        self._thread.start()
        log.info("operations endpoint listening on %s", self.url)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def dispatch(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            for method, prefix, candidate in self.prefix_routes:
                if request.method == method and request.path.startswith(prefix):
                    handler = candidate
                    break
        if handler is None:
            known = {p for _, p in self.routes} | {p + "..." for _, p, _ in self.prefix_routes}
            allowed = any(p == request.path for _, p in self.routes) or any(
                request.path.startswith(p) for _, p, _ in self.prefix_routes)
            if allowed:
                return Response.json(405, {"error": f"method {request.method} not allowed on {request.path}"})
            return Response.json(404, {"error": f"no such endpoint {request.path}", "endpoints": sorted(known)})
        try:
            return handler(request)
        except Exception:  # an endpoint bug must not kill the server thread
            log.exception("operations endpoint %s %s failed", request.method, request.path)
            return Response.json(500, {"error": "internal error (see the daemon's log)"})


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(ops: OpsServer) -> type[BaseHTTPRequestHandler]:
    class OpsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "jfrog-rotator"
        sys_version = ""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            request = Request(self.command, urlsplit(self.path).path, dict(self.headers.items()), body,
                              self.client_address[0])
            response = ops.dispatch(request)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
            log.debug("ops %s %s", self.address_string(), format % args)

    return OpsHandler
