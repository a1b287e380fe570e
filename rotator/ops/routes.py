"""The routes the daemon serves on its operations endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotator.ops.metrics import CONTENT_TYPE
from rotator.ops.server import OpsServer, Request, Response

if TYPE_CHECKING:
    from rotator.daemon import RotationDaemon


def mount_routes(daemon: RotationDaemon) -> OpsServer:
    server = OpsServer(daemon.listen or "127.0.0.1:0")

    def healthz(request: Request) -> Response:
        return Response.json(200, {"alive": True})

    def readyz(request: Request) -> Response:
        ok, detail = daemon.ready()
        return Response.json(200 if ok else 503, detail)

    def metrics(request: Request) -> Response:
        return Response(200, daemon.metrics.render(), CONTENT_TYPE)

    def status(request: Request) -> Response:
        return Response.json(200, daemon.status())

    server.route("GET", "/healthz", healthz)
    server.route("GET", "/readyz", readyz)
    server.route("GET", "/metrics", metrics)
    server.route("GET", "/status", status)
    for mount in getattr(daemon, "extra_routes", []):
        mount(server)
    return server.start()
