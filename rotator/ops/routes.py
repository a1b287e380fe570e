"""The routes the daemon serves on its operations endpoint (see ``docs/daemon.md``)."""

from __future__ import annotations

from rotator.ops.control import DaemonControl
from rotator.ops.metrics import CONTENT_TYPE
from rotator.ops.server import OpsServer, Request, Response


def mount_routes(control: DaemonControl, listen: str) -> OpsServer:
    """Start the endpoint on ``listen`` with ``/healthz``, ``/readyz``, ``/metrics``, ``/status`` and
    the daemon's extra routes."""
    server = OpsServer(listen)

    def healthz(request: Request) -> Response:
        return Response.json(200, {"alive": True})

    def readyz(request: Request) -> Response:
        ok, detail = control.ready()
        return Response.json(200 if ok else 503, detail)

    def metrics(request: Request) -> Response:
        return Response(200, control.metrics.render(), CONTENT_TYPE)

    def status(request: Request) -> Response:
        return Response.json(200, control.status())

    server.route("GET", "/healthz", healthz)
    server.route("GET", "/readyz", readyz)
    server.route("GET", "/metrics", metrics)
    server.route("GET", "/status", status)
    for mount in control.extra_routes:
        mount(server)
    return server.start()
