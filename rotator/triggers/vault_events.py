"""Vault Enterprise event notifications as a wake-up call for the reconcile loop (optional).

With ``events: true`` on a Vault backend, the daemon subscribes over WebSocket to
``kv-v2/data-write`` and ``kv-v2/metadata-patch`` and, for an event on a target's path (or on a
request under the request prefix), runs that target's reconcile check at once. Events are only
a shortcut: they can be missed (a known Enterprise issue; reconnect gaps), so the reconcile loop
stays the ground truth. OpenBao and Vault Community have no event stream: the subscription
answers 404 "unsupported path", the listener logs that once and switches itself off.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from backends.base import EventStream, RotationRequests
from rotator.ops.control import DaemonControl

log = logging.getLogger(__name__)

EVENT_TYPES = ("kv-v2/data-write", "kv-v2/metadata-patch")
BACKOFF_START, BACKOFF_MAX = 1.0, 60.0


def event_path(frame: Any) -> tuple[str, str] | None:
    """``(mount, path inside the mount)`` of a KV v2 event frame, or None.

    Understands both shapes Vault has sent: the 1.13 frame
    ``{"event": {"metadata": {"path": "data/x"}}, "eventType": ..., "pluginInfo": {"mountPath": "secret/"}}``
    and the CloudEvents envelope of 1.15+ (``{"data": {"event": ..., "plugin_info": {"mount_path": ...}}}``),
    where ``metadata.data_path`` may also carry ``<mount>/data/<path>``.
    """
    if isinstance(frame, (str, bytes)):
        try:
            frame = json.loads(frame)
        except ValueError:
            return None
    if not isinstance(frame, dict):
        return None
    body = frame.get("data") if isinstance(frame.get("data"), dict) and "event" in frame["data"] else frame
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    plugin = body.get("plugin_info") or body.get("pluginInfo") or {}
    mount = str(plugin.get("mount_path") or plugin.get("mountPath") or "").strip("/")
    path = str(metadata.get("path") or "")
    if not path and metadata.get("data_path"):
        data_path = str(metadata["data_path"])
        if mount and data_path.startswith(mount + "/"):
            path = data_path[len(mount) + 1:]
    for prefix in ("data/", "metadata/"):
        if path.startswith(prefix):
            return mount, path[len(prefix):]
    return None


def target_for(daemon: DaemonControl, backend_name: str, mount: str, path: str) -> str | None:
    """The target a KV path belongs to: the target's own path, or a request under the prefix."""
    config = daemon.config
    backend = config.backends.get(backend_name)
    if not isinstance(backend, EventStream) or (mount and mount != backend.mount):
        return None
    for target in config.targets:
        if target.backend == backend_name and target.path.strip("/") == path.strip("/"):
            return target.name
    prefix = backend.request_prefix + "/"
    if path.startswith(prefix):
        name = path[len(prefix):].split("/", 1)[0]
        return name if name in config.by_name else None
    return None


def _reconcile_interval(backend: object) -> int | str:
    """The store's reconcile interval, for a message ("?" when it cannot say)."""
    return backend.reconcile_interval if isinstance(backend, RotationRequests) else "?"


class EventListener:
    """One WebSocket subscription; reconnects with back-off, stops for good on 404."""

    def __init__(self, daemon: DaemonControl, backend_name: str, event_type: str) -> None:
        self.daemon, self.backend_name, self.event_type = daemon, backend_name, event_type
        self._stop = threading.Event()
        self._socket: Any = None
        self.disabled_reason: str | None = None
        self._last_problem: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"events-{backend_name}-{event_type}", daemon=True)

    def start(self) -> EventListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass

    def _run(self) -> None:
        import websocket  # websocket-client; only needed when events are switched on

        delay = BACKOFF_START
        while not self._stop.is_set():
            backend = self.daemon.config.backends.get(self.backend_name)
            if not isinstance(backend, EventStream):  # removed (or replaced) by a reload
                return
            try:
                url, headers = backend.event_subscription(self.event_type)
                self._socket = websocket.create_connection(url, header=headers, timeout=30)
                log.info("subscribed to Vault events %s on %s", self.event_type, self.backend_name,
                         extra={"backend": self.backend_name})
                delay, self._last_problem = BACKOFF_START, None
                self._receive()
            except websocket.WebSocketBadStatusException as exc:
                body = getattr(exc, "resp_body", b"") or b""
                if exc.status_code == 404 or b"unsupported path" in body:
                    self.disabled_reason = "this Vault has no event notifications (OpenBao or Vault Community)"
                    log.warning("events on %s switched off: %s; the reconcile loop (every %ss) still finds "
                                "every request", self.backend_name, self.disabled_reason,
                                _reconcile_interval(backend), extra={"backend": self.backend_name})
                    return
                hint = (" (the daemon's policy needs read and, on Vault Enterprise, subscribe on "
                        "sys/events/subscribe/kv-v2/*)" if exc.status_code == 403 else "")
                self._warn_once(f"subscription refused (HTTP {exc.status_code}){hint}", delay)
            except Exception as exc:  # network errors, Vault restarts: reconnect with back-off
                if self._stop.is_set():
                    return
                self._warn_once(str(exc), delay)
            finally:
                self._socket = None
            if self._stop.wait(delay):
                return
            delay = min(BACKOFF_MAX, delay * 2)

    def _warn_once(self, problem: str, delay: float) -> None:
        """Warn the first time a problem shows up; repeats of the same one go to debug."""
        level = logging.DEBUG if problem == self._last_problem else logging.WARNING
        self._last_problem = problem
        log.log(level, "events on %s: %s; retrying in %.0fs", self.backend_name, problem, delay,
                extra={"backend": self.backend_name})

    def _receive(self) -> None:
        while not self._stop.is_set():
            frame = self._socket.recv()
            if not frame:
                raise ConnectionError("the event stream closed")
            self.handle(frame)

    def handle(self, frame: Any) -> str | None:
        """Wake the target an event frame is about; returns its name (None: not ours)."""
        located = event_path(frame)
        if located is None:
            return None
        name = target_for(self.daemon, self.backend_name, *located)
        if name is not None:
            self.daemon.reconcile_now(name)
        return name


def start_listeners(daemon: DaemonControl) -> list[EventListener]:
    """One started listener per event type for every store with ``events: true``."""
    listeners = []
    for name, backend in daemon.config.backends.items():
        if isinstance(backend, EventStream) and backend.events:
            for event_type in EVENT_TYPES:
                listeners.append(EventListener(daemon, name, event_type).start())
    return listeners
