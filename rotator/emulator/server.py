"""The thin HTTP layer: a threaded HTTP/1.1 keep-alive server with optional TLS / mTLS.

It only reads requests, applies injected faults, records requests, and writes what
:class:`~rotator.emulator.routes.AccessApp` returns. Every response goes out in a single write
with ``Content-Length`` (none for 204), on sockets with ``TCP_NODELAY``, so kept-alive clients
never wait on Nagle/delayed-ACK (the classic 40 ms stall).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import struct
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from rotator.emulator.faults import Fault, FaultInjector, RecordedRequest, RequestLog
from rotator.emulator.routes import AccessApp, Request, Response, decode_body

log = logging.getLogger(__name__)

_MAX_BODY = 10 * 1024 * 1024
_HANDSHAKE_TIMEOUT = 10.0


def make_server_ssl_context(
    certfile: str, keyfile: str | None = None, client_ca_file: str | None = None
) -> ssl.SSLContext:
    """A server-side TLS context; with ``client_ca_file`` clients must present a cert it signed (mTLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    if client_ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca_file)
    return context


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded server that tracks open connections so :meth:`close_connections` can end them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        app: AccessApp,
        faults: FaultInjector,
        request_log: RequestLog,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app, self.faults, self.request_log, self.ssl_context = app, faults, request_log, ssl_context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.accepted_count = 0  # TCP connections accepted since start
        super().__init__(address, AccessRequestHandler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (finish_request), so a slow or
            # silent client cannot block the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._connections_lock:
            self._connections.add(sock)
            self.accepted_count += 1
        return sock, address

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(_HANDSHAKE_TIMEOUT)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return  # e.g. mTLS without a client certificate: the connection is just closed
        super().finish_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> list[socket.socket]:
        """Server-side sockets of the connections currently open (diagnostics and tests)."""
        with self._connections_lock:
            return list(self._connections)

    def close_connections(self) -> None:
        """Shut down every open connection so kept-alive handler threads exit now."""
        for sock in self.open_connections():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # Never print tracebacks to stderr: they could carry request data. Debug level only.
        log.debug("error while serving a connection", exc_info=True)


class AccessRequestHandler(BaseHTTPRequestHandler):
    """Parses one request at a time on a kept-alive connection and writes the rendered answer."""

    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "JFrog-Access-Emulator/1"
    sys_version = ""
    disable_nagle_algorithm = True  # StreamRequestHandler.setup() sets TCP_NODELAY as well
    timeout = 120  # idle kept-alive connections are closed after this many seconds

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError as err:
            self.close_connection = True
            self._write(Response.access_error(400, str(err)), record=None)
            return
        url = urlsplit(self.path)
        json_body, form, body_error = decode_body(self.headers.get("Content-Type"), body)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            json=json_body,
            form=form,
            body_error=body_error,
        )
        fault = self.server.faults.take(request.method, request.path)
        if fault is not None and fault.kind is not None:
            self._serve_kind(fault, request)
            return
        response = self._fault_response(fault)
        if response is None:
            response = self._handle(request)
        self._write(response, record=request)

    def _handle(self, request: Request) -> Response:
        try:
            return self.server.app.handle(request)
        except Exception:  # a bug in the emulator must still answer, and not leak details
            log.debug("emulator failure", exc_info=True)
            return Response.access_error(500, "Internal emulator error", "INTERNAL_SERVER_ERROR")

    def _fault_response(self, fault: Fault | None) -> Response | None:
        if fault is None:
            return None
        if fault.stall:
            time.sleep(fault.stall)
        if fault.status is None:
            return None
        if fault.body is not None:
            kind = "application/json" if fault.body.lstrip().startswith(("{", "[")) else "text/plain"
            response = Response(fault.status, fault.body.encode(), kind)
        elif fault.status in (204, 304):
            response = Response(fault.status)
        else:
            response = Response.access_error(fault.status, f"Injected fault: {HTTPStatus(fault.status).phrase}")
        if fault.retry_after is not None:
            response.headers.append(("Retry-After", f"{fault.retry_after:g}"))
        return response

    def _serve_kind(self, fault: Fault, request: Request) -> None:
        """The faults of :data:`~rotator.emulator.faults.FAULT_KINDS`."""
        if fault.kind == "reset":
            if fault.stall:
                time.sleep(fault.stall)
            self._record(request, 0)
            self._drop_connection()
        elif fault.kind == "lost":
            self._handle(request)  # JFrog acts on it ...
            self._record(request, 0)
            if fault.stall:
                time.sleep(fault.stall)
            self._drop_connection()  # ... and its answer never arrives
        elif fault.kind == "revoked":
            response = self._handle(request)
            if response.status == 200 and response.content_type == "application/json":
                value = json.loads(response.body).get("access_token")
                if isinstance(value, str):
                    self.server.app.model.kill_value(value)
            self._write(response, record=request)
        elif fault.kind == "garbled":
            response = self._handle(request)
            if response.body:
                response.body = response.body[: max(1, len(response.body) - 2)]
            self._write(response, record=request)
        else:  # fake-jwt
            if fault.stall:
                time.sleep(fault.stall)
            self._write(Response.json(200, fake_token_answer()), record=request)

    def _drop_connection(self) -> None:
        """Close this connection without an answer, with a TCP reset (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _record(self, record: Request, status: int) -> None:
        self.server.request_log.append(
            RecordedRequest(
                method=record.method,
                path=record.path,
                query=record.query,
                headers=dict(self.headers.items()),
                body=record.body,
                json=record.json,
                form=record.form,
                status=status,
            )
        )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
                if sum(map(len, chunks)) > _MAX_BODY:
                    raise ValueError("Request body too large")
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise ValueError("Invalid or too large Content-Length")
        return self.rfile.read(int(length))

    def _write(self, response: Response, *, record: Request | None) -> None:
        if record is not None:
            # Recorded before the bytes leave, so a client that got its answer finds the record.
            self._record(record, response.status)
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        no_body = response.status in (204, 304) or 100 <= response.status < 200
        if not no_body:
            if response.content_type:
                lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines += [f"{name}: {value}" for name, value in response.headers]
        if self.close_connection:
            lines.append("Connection: close")
        payload = b"" if no_body or self.command == "HEAD" else response.body
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        log.debug("%s %s -> %s", self.command, urlsplit(getattr(self, "path", "")).path, response.status)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (bad request line, oversized headers...) get an Access error body."""
        self.close_connection = True
        if getattr(self, "command", None) is None:
            self.command = ""
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = "Error"
        self._write(Response.access_error(code, text), record=None)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silent: the stdlib would print request lines to stderr; we never log token values."""


def fake_token_answer() -> dict:
    """A create/refresh answer whose token looks like a JWT but was never issued (``fake-jwt``)."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    token_id = str(uuid.uuid4())
    now = int(time.time())
    jwt = ".".join((part({"ver": "2", "typ": "JWT", "alg": "RS256", "kid": "fake"}),
                    part({"sub": "jfac@fake/users/nobody", "scp": "applied-permissions/user", "aud": "*@*",
                          "iss": "jfac@fake", "exp": now + 3600, "iat": now, "jti": token_id}),
                    base64.urlsafe_b64encode(uuid.uuid4().bytes * 8).decode().rstrip("=")))
    return {"token_id": token_id, "access_token": jwt, "refresh_token": str(uuid.uuid4()), "expires_in": 3600,
            "scope": "applied-permissions/user", "token_type": "Bearer"}
