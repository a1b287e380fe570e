"""The reconcile loop: read each Vault target's KV v2 metadata and rotate when Vault asks.

Per backend, every ``reconcile_interval`` (with jitter): one LIST for pending requests, then one
metadata GET per target (never the secret), a few at a time. A target is rotated when

* an object waits under ``<mount>/<request_prefix>/<target>/<id>`` (reason ``request:<id>``; the
  object's ``requested_by``/``reason`` go into ``last_reason``; the object is deleted after);
* ``custom_metadata.rotate_requested`` is ``true`` (reason ``vault-flag``; the rotation's own
  write sets it back to ``false``);
* ``now >= expires_at - renew_before`` (reason ``near-expiry``).

Each rotation names the version it saw (``only_if_version``): however many daemons see one
request, the store's compare-and-set lets it be served once. A current version the rotator did
not write (``custom_metadata.rotator_version`` behind ``current_version``) is a manual
overwrite: it is adopted when it is a valid record whose token works, otherwise reported on
``/status`` and in metrics and never overwritten by a scheduled run.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from backends.base import BackendError
from rotator.config import Target
from rotator.core.record import RecordError, SecretRecord, parse_time, utc_iso
from rotator.jfrog.errors import JFrogError
from rotator.ops.control import DaemonControl
from rotator.triggers.capability import takes_requests

log = logging.getLogger(__name__)

#: Metadata reads in flight during a reconcile pass of a backend.
READERS = 4


@dataclass(frozen=True)
class Decision:
    """What one look at a target's metadata concluded."""

    reason: str | None = None           # why to rotate now, or None
    version: Any = None                 # the version the decision was made on
    requests: tuple[str, ...] = ()      # request ids this rotation serves
    foreign: str | None = None          # a manual overwrite that cannot be adopted
    served: tuple[str, ...] = ()        # requests a rotation after them served already: delete only


def _may_take_requests(backend: object) -> bool:
    """:func:`takes_requests`, or True while the store cannot tell: knowing needs Vault's KV
    version, and a daemon starting while Vault is unreachable must still start (each pass asks again)."""
    try:
        return takes_requests(backend)
    except BackendError:
        return True


class VaultReconciler:
    """Installs one reconcile job per Vault KV v2 backend on the daemon's scheduler.

    ``passes`` counts passes started and ``passes_done`` passes finished (all backends); with
    ``asked`` they say what the loop did, for tests and debugging."""

    def __init__(self, daemon: DaemonControl, rng: random.Random | None = None) -> None:
        self.daemon = daemon
        self.rng = rng or random.Random()
        self._installed: set[str] = set()
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.passes = 0
        self.passes_done = 0
        self.asked: list[tuple[int, str, str]] = []  # (pass, target, reason) of the last rotations asked for

    # -- jobs -------------------------------------------------------------------------------
    def install(self) -> None:
        """(Re)install the jobs for the daemon's current config (also after a reload)."""
        config = self.daemon.config
        wanted = {}
        for name, backend in config.backends.items():
            if not _may_take_requests(backend):
                continue
            if not any(t.backend == name for t in config.targets):
                continue
            wanted[name] = backend
        with self._lock:
            for name in self._installed - wanted.keys():
                self._remove(name)
            for name, backend in wanted.items():
                interval = backend.reconcile_interval
                self.daemon.schedule_every(f"reconcile:{name}", self.reconcile_backend, seconds=interval,
                                           jitter=interval / 10, args=[name], name=f"reconcile {name}")
            self._installed = set(wanted)

    def uninstall(self) -> None:
        """Remove every reconcile job (a replica that stopped leading)."""
        with self._lock:
            for name in self._installed:
                self._remove(name)
            self._installed = set()

    def _remove(self, name: str) -> None:
        self.daemon.unschedule(f"reconcile:{name}")

    # -- one pass -----------------------------------------------------------------------------
    def reconcile_backend(self, backend_name: str) -> int:
        """One pass over a backend's targets; returns how many rotations were asked for."""
        config = self.daemon.config
        backend = config.backends.get(backend_name)
        if backend is None or not takes_requests(backend):
            return 0
        targets = [t for t in config.targets if t.backend == backend_name]
        with self._count_lock:
            self.passes += 1
        try:
            pending = backend.pending_requests()
        except BackendError as exc:
            log.warning("reconcile %s: cannot list requests: %s", backend_name, exc, extra={"backend": backend_name})
            pending = {}
        def one(target: Target) -> int:
            return 0 if self.daemon.stopping else self.check(target, pending.get(target.name, []))

        try:
            if len(targets) < 2 * READERS:
                return sum(map(one, targets))
            # A few reads in flight: Vault answers one while this process reads the last answer
            # (bench/reconcile.py: a pass over 10,000 targets in a few seconds, not ~14).
            with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix=f"reconcile-{backend_name}") as pool:
                return sum(pool.map(one, targets))
        finally:
            with self._count_lock:
                self.passes_done += 1

    def wake(self, target_name: str) -> bool:
        """Look at one target now (HTTP trigger, events): False when it is not a Vault target."""
        config = self.daemon.config
        target = config.by_name.get(target_name)
        if target is None or not takes_requests(config.backends[target.backend]):
            return False
        backend = config.backends[target.backend]
        try:
            requests = backend.requests_for(target_name)
        except BackendError:
            requests = []
        self.check(target, requests)
        return True

    def check(self, target: Target, requests: list[str]) -> int:
        backend = self.daemon.config.backends[target.backend]
        try:
            decision = self.decide(target, backend, requests, datetime.now(timezone.utc))
        except (BackendError, RecordError, ValueError) as exc:
            log.warning("reconcile %s: %s", target.name, exc, extra={"target": target.name})
            return 0
        self.daemon.set_foreign(target.name, decision.foreign)
        if decision.served:
            self._delete_served(target, backend, decision.served)
        if decision.reason is None:
            return 0
        with self._count_lock:
            self.asked = [*self.asked[-99:], (self.passes, target.name, decision.reason)]
        self.daemon.run_now(target.name, decision.reason, only_if_version=decision.version,
                            requests=decision.requests)
        return 1

    def decide(self, target: Target, backend: Any, requests: list[str], now: datetime) -> Decision:
        meta = backend.read_metadata(target.path)
        if meta is None:  # nothing stored yet: only an explicit request bootstraps it here
            if requests:
                return Decision(self._request_reason(backend, target, requests), None, tuple(requests))
            return Decision()
        version = int(meta.get("current_version") or 0)
        written = meta.get("rotator_version")
        if written is not None and written != str(version):
            foreign = self._foreign_write(target, backend, meta, version)
            if foreign:
                return Decision(foreign=foreign)
        if requests:
            waiting = self._not_yet_served(backend, target, requests, meta)
            if waiting:
                return Decision(self._request_reason(backend, target, waiting), version, tuple(requests))
            return Decision(served=tuple(requests))
        if meta.get("rotate_requested") == "true":
            who = meta.get("requested_by")
            why = meta.get("requested_reason")
            detail = f" by {who}" if who else ""
            detail += f": {why}" if why else ""
            return Decision(f"vault-flag{detail}", version)
        if self._near_expiry(meta, backend, now):
            return Decision("near-expiry", version)
        return Decision()

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _not_yet_served(backend: Any, target: Target, requests: list[str], meta: dict[str, str]) -> list[str]:
        """The requests made before the current version was written are served by the rotation
        that wrote it (another replica may not have deleted them yet): by Vault's own clock, so a
        request is served once however many daemons see it."""
        written = vault_time(meta.get("current_version_created"))
        if written is None:
            return list(requests)
        waiting = []
        for request_id in requests:
            made = vault_time(backend.request_created(target.name, request_id))
            if made is None or made >= written:
                waiting.append(request_id)
        return waiting

    @staticmethod
    def _delete_served(target: Target, backend: Any, requests: tuple[str, ...]) -> None:
        for request_id in requests:
            try:
                backend.delete_request(target.name, request_id)
            except BackendError as exc:  # deleted by the replica that served it, or left for the next pass
                log.debug("%s: could not delete served request %s: %s", target.name, request_id, exc)

    @staticmethod
    def _request_reason(backend: Any, target: Target, requests: list[str]) -> str:
        first = requests[0]
        try:
            fields = backend.read_request(target.name, first)
        except BackendError:
            fields = {}
        reason = f"request:{first}"
        if fields.get("requested_by"):
            reason += f" by {fields['requested_by']}"
        if fields.get("reason"):
            reason += f": {fields['reason']}"
        return reason

    @staticmethod
    def _near_expiry(meta: dict[str, str], backend: Any, now: datetime) -> bool:
        expires, issued = meta.get("expires_at"), meta.get("issued_at")
        if not expires or expires == "never":
            return False
        expires_at = parse_time(expires, "expires_at")
        seconds, fraction = backend.renew_before
        if fraction is not None:
            if not issued:
                return False
            window = (expires_at - parse_time(issued, "issued_at")).total_seconds() * fraction
        else:
            window = seconds or 0
        return now >= expires_at - timedelta(seconds=window)

    def _foreign_write(self, target: Target, backend: Any, meta: dict[str, str], version: int) -> str | None:
        """Adopt a current version the rotator did not write if it is a valid record whose token
        works (its metadata is brought up to date); otherwise say what is wrong with it."""
        stored = backend.read(target.path)
        if stored.version != version:
            return None  # it moved while we looked: decide on the next pass
        if stored.text is None:
            return f"version {version} was written by hand and holds no value (deleted)"
        try:
            record = SecretRecord.loads(stored.text)
        except RecordError as exc:
            return f"version {version} was written by hand and is not a usable record ({exc})"
        if record.target and record.target != target.name:
            return f"version {version} was written by hand and belongs to target {record.target!r}"
        try:
            self.daemon.verify_token(record.access_token)
        except JFrogError as exc:
            return f"version {version} was written by hand and its token does not work ({exc})"
        backend.patch_metadata(target.path, {**record.metadata(), "rotator_version": str(version),
                                             "last_reason": "adopted a manual write",
                                             "adopted_at": utc_iso(datetime.now(timezone.utc))})
        log.info("%s: adopted version %d written by hand (token %s)", target.name, version, record.token_id,
                 extra={"target": target.name})
        return None


_VAULT_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def vault_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Vault writes it (nanoseconds, trailing zeros cut); ``None`` if absent."""
    found = _VAULT_TIME.fullmatch(text or "")
    if not found:
        return None
    whole, fraction, zone = found.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    return datetime.fromisoformat(f"{whole}.{micros}{'+00:00' if zone == 'Z' else zone}")
