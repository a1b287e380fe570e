"""The daemon's last contact with each remote (JFrog, every store): what ``/readyz`` reports.

Contacts are recorded by the periodic probe, by the renewal of the daemon's own Vault tokens and
by every rotation. See ``docs/daemon.md`` (operations endpoint).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import RenewableAuth, SecretBackend
from rotator.engine import Engine, RotationResult

log = logging.getLogger("rotator.daemon")  # one logger name for the daemon (it is in every log line)

JFROG = "jfrog"


def backend_contact(name: str) -> str:
    """The contact name of the store ``name`` (``backend:<name>``)."""
    return f"backend:{name}"


@dataclass
class Contact:
    """The last contact with one remote (JFrog or a backend): for ``/readyz``."""

    ok: bool | None = None
    at: float | None = None
    error: str | None = None

    def record(self, ok: bool, error: str | None = None) -> None:
        self.ok, self.at, self.error = ok, time.time(), None if ok else error

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": self.at, "error": self.error}


class Contacts:
    """The last :class:`Contact` with each remote, by contact name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Contact] = {}
        self._lock = threading.Lock()

    def record(self, name: str, ok: bool, error: str | None = None) -> None:
        with self._lock:
            contact = self._by_name.setdefault(name, Contact())
        contact.record(ok, error)

    def get(self, name: str) -> Contact:
        """The last contact with ``name`` (an empty one when there was none yet)."""
        with self._lock:
            return self._by_name.get(name) or Contact()

    def all_ok(self, names: Iterable[str]) -> tuple[bool, dict[str, Any]]:
        """Whether the last contact with each of ``names`` succeeded, and each as JSON."""
        contacts = {name: self.get(name) for name in names}
        return all(c.ok for c in contacts.values()), {n: c.to_json() for n, c in contacts.items()}

    def record_rotation(self, result: RotationResult) -> None:
        """A rotation talked to JFrog: a minted token says it answered, a failed mint or verify that it did not."""
        if result.outcome in ("rotated", "lost-race"):
            self.record(JFROG, True)
        elif result.step in ("mint", "verify"):
            self.record(JFROG, False, result.error)

    def probe(self, engine: Engine, backends: Mapping[str, SecretBackend]) -> None:
        """Ping JFrog and check every store."""
        try:
            engine.jfrog.ping()
            self.record(JFROG, True)
        except Exception as exc:
            self.record(JFROG, False, str(exc))
        for name, backend in backends.items():
            try:
                backend.check()
                self.record(backend_contact(name), True)
            except Exception as exc:
                self.record(backend_contact(name), False, str(exc))

    def keep_auth_alive(self, backends: Mapping[str, SecretBackend], *, min_ttl: int) -> None:
        """Renew the daemon's own Vault tokens before they expire; log in again when they cannot
        be renewed (AppRole, Kubernetes)."""
        for name, backend in backends.items():
            if not isinstance(backend, RenewableAuth):
                continue
            try:
                action = backend.refresh_auth(min_ttl=min_ttl)
                self.record(backend_contact(name), True)
                if action != "ok":
                    log.info("vault auth for backend %s: %s", name, action, extra={"backend": name})
            except Exception as exc:
                self.record(backend_contact(name), False, str(exc))
                log.error("vault auth for backend %s failed: %s", name, exc, extra={"backend": name})
