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

#: The largest request body the endpoint reads (a trigger's body is a short JSON reason).
MAX_BODY = 64 * 1024


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
        timeout = 10  # seconds a client may take to send its request: a stalled one frees its thread
        server_version = "jfrog-rotator"
        sys_version = ""

        def _serve(self) -> None:
            refused = self._refused_body()
            if refused is not None:
                self.close_connection = True  # what is left of the body must not be read as a request
                response = refused
            else:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = self.rfile.read(length) if length else b""
                except OSError:  # the client stopped sending (the socket timeout below): nobody to answer
                    self.close_connection = True
                    return
                if len(body) < length:
                    self.close_connection = True
                    return
                request = Request(self.command, urlsplit(self.path).path, dict(self.headers.items()), body,
                                  self.client_address[0])
                response = ops.dispatch(request)
            self._answer(response)

        def _refused_body(self) -> Response | None:
            """400 for a Content-Length that is not a number of bytes, 411 for a chunked body, 413 for
            one larger than :data:`MAX_BODY`: answered before anything is read."""
            if self.headers.get("Transfer-Encoding"):
                return Response.json(411, {"error": "send the body with a Content-Length, not Transfer-Encoding"})
            lengths = self.headers.get_all("Content-Length") or []
            if len(set(lengths)) > 1:
                return Response.json(400, {"error": "more than one Content-Length"})
            if lengths and not (lengths[0].strip().isascii() and lengths[0].strip().isdigit()):
                return Response.json(400, {"error": "Content-Length must be a number of bytes"})
            if lengths and int(lengths[0]) > MAX_BODY:
                return Response.json(413, {"error": f"request body larger than {MAX_BODY} bytes"})
            return None

        def _answer(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":  # no body follows; close so a client reading one is not left waiting
                self.close_connection = True
            else:
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (PATCH, HEAD, OPTIONS, FOO) is dispatched too, so it is answered 405
            # or 404 in JSON like the rest, not http.server's 501 HTML page.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
            log.debug("ops %s %s", self.address_string(), format % args)

    return OpsHandler
