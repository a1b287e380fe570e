"""``POST /v1/trigger/<target>`` on the daemon's operations endpoint.

The caller presents ``X-Vault-Token``. The daemon asks Vault what *that* token may do on the
target's metadata path (``sys/capabilities-self``, as the caller) and accepts only ``patch``,
``update``, ``sudo`` or ``root``; it then sets the ``rotate_requested`` flag with the caller's
own token, so the request is recorded in Vault (and its audit log) under the caller's name, and
wakes the reconcile loop for that target (on a standby replica the flag alone reaches the leader,
at its next pass). The daemon never uses its own rights to decide for a caller. Answers: 202
accepted, 401 no token, 403 not allowed, 404 unknown target, 409 not a Vault KV v2 target, 429
too soon after the last accepted trigger, 502 Vault failed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import datetime, timezone

from backends.base import BackendError
from rotator.core.record import utc_iso
from rotator.core.redact import register
from rotator.ops.control import DaemonControl
from rotator.ops.server import OpsServer, Request, Response
from rotator.triggers.capability import takes_requests

log = logging.getLogger(__name__)

PREFIX = "/v1/trigger/"
ALLOWED = frozenset({"patch", "update", "sudo", "root"})
MIN_INTERVAL = 5.0  # seconds between accepted triggers of one target
_MAX_TOKEN = 4096
_TOKEN_SHAPE = re.compile(r"[!-~]{1,%d}" % _MAX_TOKEN)


class RateLimit:
    """At most one accepted trigger per target every ``interval`` seconds."""

    def __init__(self, interval: float = MIN_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        with self._lock:
            last = self._last.get(key)
            return 0.0 if last is None else max(0.0, last + self.interval - time.monotonic())

    def note(self, key: str) -> None:
        with self._lock:
            self._last[key] = time.monotonic()


def mount_trigger_route(server: OpsServer, daemon: DaemonControl, limit: RateLimit | None = None) -> None:
    """Add ``POST /v1/trigger/<target>`` to ``server``."""
    limit = limit or RateLimit()

    def trigger(request: Request) -> Response:
        name = request.path[len(PREFIX):].strip("/")
        config = daemon.config
        target = config.by_name.get(name)
        if target is None:
            return Response.json(404, {"error": f"no target named {name!r}"})
        backend = config.backends[target.backend]
        if not takes_requests(backend):
            return Response.json(409, {"error": f"target {name!r} is not in a Vault KV v2 store"})
        token = request.headers.get("X-Vault-Token") or request.headers.get("x-vault-token") or ""
        if not token:
            return Response.json(401, {"error": "present your Vault token in X-Vault-Token"})
        if not _TOKEN_SHAPE.fullmatch(token):  # Vault would refuse it too; no reason to ask, nor to say 502
            return Response.json(401, {"error": "X-Vault-Token is not a Vault token (printable ASCII without "
                                                f"spaces, at most {_MAX_TOKEN} characters)"})
        register(token)
        try:
            capabilities = backend.caller_capabilities(token, target.path)
        except BackendError as exc:
            log.warning("trigger %s: cannot check the caller's capabilities: %s", name, exc, extra={"target": name})
            return Response.json(502, {"error": "Vault did not answer the capability check"})
        if not ALLOWED & set(capabilities):
            log.info("trigger %s refused: the caller's token has %s on the metadata path", name,
                     sorted(capabilities) or "no capability", extra={"target": name, "client": request.client})
            return Response.json(403, {"error": f"your token may not request a rotation of {name!r} "
                                                f"(needs patch on {backend.flag_location(target.path)})"})
        wait = limit.retry_after(name)
        if wait > 0:
            return Response(429, json.dumps({"error": "too many triggers", "retry_after_seconds": round(wait, 1)})
                            .encode(), headers={"Retry-After": str(max(1, round(wait)))})
        reason = _reason(request.body)
        requested_by = backend.caller_name(token) or f"http:{request.client}"
        try:
            backend.request_rotation(target.path, token=token, reason=reason, requested_by=requested_by,
                                     at=utc_iso(datetime.now(timezone.utc)))
        except BackendError as exc:
            log.warning("trigger %s: setting the flag failed: %s", name, exc, extra={"target": name})
            return Response.json(502, {"error": "Vault refused or failed to record the request"})
        limit.note(name)
        log.info("trigger %s accepted from %s", name, requested_by, extra={"target": name, "reason": reason})
        # A standby does not wake itself: the flag just set in the store is what the leader serves.
        leader = daemon.is_leader()
        if leader:
            threading.Thread(target=daemon.reconcile_now, args=(name,), name=f"wake-{name}", daemon=True).start()
        return Response.json(202, {"accepted": True, "target": name, "requested_by": requested_by,
                                   "served_by": "this replica" if leader else "the leader, at its next reconcile pass"})

    server.route("POST", PREFIX, trigger, prefix=True)


def _reason(body: bytes) -> str:
    if not body:
        return "http trigger"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or '[[[[...' nested past Python's limit
        return "http trigger"
    reason = data.get("reason") if isinstance(data, dict) else None
    return str(reason)[:200] if reason else "http trigger"
