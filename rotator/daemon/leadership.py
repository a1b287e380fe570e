"""One leader among the daemon replicas, elected through a lease kept in the store.

``daemon.leader: {backend, path, ttl}`` turns it on (docs/daemon.md, "Running several replicas").
The store does the locking with its own compare-and-set (``backends.base.LeaderLease``: a KV v2
secret written with ``cas``, a Secrets Manager label moved with ``RemoveFromVersionId``, a
``flock``); this module decides when to take, renew and give up the lease:

* every replica runs :meth:`Leadership.tick` every third of the TTL: the leader renews (a
  compare-and-set on the version it holds), a standby reads the lease;
* a standby takes the lease when nobody holds it (never taken, or released by a clean stop), or
  when it has seen the *same version* for a whole TTL by its own monotonic clock: its holder stopped
  renewing. No clock is compared between machines (as in Kubernetes' client-go leader election);
* the leader counts itself leader until one TTL after it *sent* its last successful renewal. A
  standby takes over no earlier than one TTL after it *saw* that renewal, which is later; so two
  replicas never both count themselves leader while their clocks run at the same rate.

Fencing: a leader paused past its lease (SIGSTOP, a long GC, a frozen VM) must not act on stale
leadership when it wakes, so before each mint :class:`MintGuard` checks the lease by its version
(:meth:`Leadership.confirm`), then claims the target in its store (``backends.base.RotationClaims``)
as a second line: of two replicas rotating one target from one version, one mints. A refresh
(JFrog refresh tokens are single-use) runs only under a claim.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from backends.base import (
    BackendError,
    CASConflict,
    LeaderLease,
    LeaseRecord,
    RotationClaims,
    Unsupported,
)
from rotator.core.record import utc_iso
from rotator.core.target import Target
from rotator.engine import RotationError, RotationStep
from rotator.engine.current import Current

log = logging.getLogger("rotator.daemon")  # one logger name for the daemon (it is in every log line)

_NOT_HELD = object()


class Leadership:
    """The lease of one replica: :meth:`start` runs the election loop in a thread of its own (a busy
    scheduler must not delay a renewal); tests call :meth:`tick` with a clock they move."""

    def __init__(self, store: LeaderLease, *, path: str, ttl: float, replica: str,
                 on_elected: Callable[[], None] = lambda: None, on_deposed: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, holder: str | None = None) -> None:
        self.store = store
        self.path = path
        self.ttl = float(ttl)
        self.interval = self.ttl / 3
        self.replica = replica
        # The replica's name plus a nonce: two processes never share an identity, even with one
        # replica_id in a config every replica reads, or a restarted process on the same host.
        self.holder = holder or f"{replica}/{secrets.token_hex(4)}"
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.clock = clock
        self.term = 0  # elections won by this replica
        self.seen_holder: str | None = None  # who held the lease at the last read
        self._held: Any = _NOT_HELD  # the lease version this replica holds
        self._valid_until = 0.0
        self._observed: tuple[str | None, Any] | None = None
        self._observed_at = 0.0
        self._announced = False
        self._failing = False
        self._lock = threading.RLock()  # renewals and fencing checks, one at a time
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state ----------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """True while this replica holds the lease and its last renewal is less than a TTL old."""
        return self._held is not _NOT_HELD and self.clock() < self._valid_until

    @property
    def held_version(self) -> Any:
        """The lease version this replica holds (``None`` when it holds none)."""
        return None if self._held is _NOT_HELD else self._held

    def describe(self) -> dict[str, Any]:
        """What ``/readyz`` shows: this replica, whether it leads, who held the lease at the last read."""
        leading = self.leading
        return {"replica": self.replica, "holder": self.holder, "leading": leading,
                "lease_holder": self.holder if leading else self.seen_holder, "term": self.term}

    # -- lifecycle ------------------------------------------------------------------------------
    def check(self) -> LeaseRecord:
        """Read the lease once: :class:`~backends.base.Unsupported` when the store cannot hold one
        (a KV v1 mount), so the daemon refuses to start instead of never leading."""
        return self.store.read_lease(self.path)

    def start(self) -> Leadership:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the loop and release the lease (a standby then takes it at its next read)."""
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl + 10)
        with self._lock:
            if self._held is not _NOT_HELD:
                try:
                    self.store.release_lease(self.path, self.holder, held=self._held)
                    log.info("released the leader lease", extra={"replica": self.replica})
                except BackendError as exc:  # it expires by itself after its TTL
                    log.warning("could not release the leader lease: %s", exc, extra={"replica": self.replica})
                self._held, self._valid_until = _NOT_HELD, 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive anything a store raises
                log.exception("leader election round failed")
            self.announce()
            self._wakeup.wait(self.interval)
            self._wakeup.clear()

    def announce(self) -> None:
        """Call ``on_elected``/``on_deposed`` when leading changed since the last call."""
        leading = self.leading
        if leading != self._announced:
            self._announced = leading
            (self.on_elected if leading else self.on_deposed)()

    # -- one round ------------------------------------------------------------------------------
    def tick(self) -> None:
        """The leader renews; a standby reads the lease and takes it when free or expired."""
        with self._lock:
            if self._held is not _NOT_HELD:
                self._renew()
            else:
                self._try_take()

    def _fields(self) -> dict[str, str]:
        return {"replica": self.replica, "renewed_at": utc_iso_now(), "ttl": f"{self.ttl:g}"}

    def _renew(self) -> None:
        sent = self.clock()
        try:
            version = self.store.renew_lease(self.path, self.holder, self._fields(), held=self._held)
        except CASConflict:
            record = self._read_quietly()
            if record is not None and record.holder == self.holder:
                self._held = record.version  # an earlier renewal of ours landed after all
                return
            self._lose(record, "it was taken over")
            return
        except BackendError as exc:
            if not self._failing:
                log.warning("cannot renew the leader lease: %s", exc, extra={"replica": self.replica})
            self._failing = True
            if self.clock() >= self._valid_until:
                self._lose(None, "it could not be renewed within its TTL")
            return
        self._failing = False
        self._held, self._valid_until = version, sent + self.ttl

    def _try_take(self) -> None:
        try:
            record = self.store.read_lease(self.path)
        except BackendError as exc:
            if not self._failing:
                log.warning("cannot read the leader lease: %s", exc, extra={"replica": self.replica})
            self._failing = True
            return
        self._failing = False
        now = self.clock()
        key = (record.holder, record.version)
        if key != self._observed:
            self._observed, self._observed_at = key, now
        self.seen_holder = record.holder
        if record.holder == self.holder:  # our take landed, but its answer was lost
            self._held = record.version
            self._renew()
            return
        unchanged = now - self._observed_at
        if record.holder is not None and not (self.store.lease_expires and unchanged >= self.ttl):
            return  # held, and renewed within the TTL (or a lock that ends only with its holder)
        sent = self.clock()
        try:
            version = self.store.take_lease(self.path, self.holder, self._fields(), expected=record.version)
        except CASConflict:
            return  # another standby was first: the next read shows who
        except BackendError as exc:  # an unknown outcome shows up at the next read (holder == us)
            log.warning("cannot take the leader lease: %s", exc, extra={"replica": self.replica})
            return
        self._held, self._valid_until = version, sent + self.ttl
        self.term += 1
        self.seen_holder = self.holder
        how = "it was free" if record.holder is None else \
            f"{record.holder} left it unrenewed for {unchanged:.1f}s (ttl {self.ttl:g}s)"
        log.info("this replica is the leader now (%s)", how, extra={"replica": self.replica, "term": self.term})

    def _lose(self, record: LeaseRecord | None, why: str) -> None:
        self._held, self._valid_until = _NOT_HELD, 0.0
        if record is not None:
            self._observed, self._observed_at = (record.holder, record.version), self.clock()
            self.seen_holder = record.holder
        log.warning("this replica is not the leader any more: %s%s", why,
                    f" (lease held by {record.holder})" if record is not None and record.holder else "",
                    extra={"replica": self.replica})
        self._wakeup.set()  # announce it now

    def _read_quietly(self) -> LeaseRecord | None:
        try:
            return self.store.read_lease(self.path)
        except BackendError:
            return None

    # -- fencing --------------------------------------------------------------------------------
    def confirm(self) -> str | None:
        """Before a mint: ``None`` while this replica still leads, checked in the store by the
        lease's version; otherwise why not (it then steps down). ``BackendError`` when the store
        cannot tell."""
        with self._lock:
            if self._held is _NOT_HELD:
                return "this replica is not the leader"
            record = self.store.read_lease(self.path)
            if record.holder != self.holder or record.version != self._held:
                self._lose(record, "the lease moved on")
                return f"not the leader any more: the lease is held by {record.holder or 'nobody'}"
            if self.clock() >= self._valid_until:  # paused past the TTL: renewing proves nobody took over
                self._renew()
                if not self.leading:
                    return "not the leader any more: the lease could not be renewed in time"
        return None


class MintGuard:
    """The engine's ``before_mint`` for replicas: fencing by the lease, then the target's claim."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership
        self._claims: dict[str, tuple[RotationClaims, str, Any]] = {}  # rotation id -> the claim it took
        self._claims_lock = threading.Lock()

    def settle(self, rotation_id: str, stored: bool) -> None:
        """The engine's ``after_rotation``: a rotation that claimed and did not store gives the claim
        back, so the next leader need not wait out its ``ttl`` (the version it claims stays current)."""
        with self._claims_lock:
            claim = self._claims.pop(rotation_id, None)
        if claim is None or stored:
            return
        backend, path, version = claim
        try:
            backend.release_rotation(path, version, holder=self.leadership.holder)
        except BackendError as exc:  # it ends by itself after its ttl
            log.warning("could not give back the rotation claim on %s: %s", path, exc)

    def __call__(self, target: Target, current: Current, rotation_id: str) -> str | None:
        try:
            refused = self.leadership.confirm()
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.MINT, f"cannot check the leader lease: {exc}") from None
        if refused:
            log.warning("%s: nothing minted: %s", target.name, refused,
                        extra={"target": target.name, "rotation_id": rotation_id, "outcome": "skipped"})
            return refused
        refresh = target.strategy == "refresh" and current.record is not None and bool(current.record.refresh_token)
        backend = current.backend
        if not isinstance(backend, RotationClaims):
            if refresh:
                raise RotationError(target.name, RotationStep.MINT, f"a refresh runs only under a rotation claim, "
                                                                    f"and store {backend.name} cannot hold one")
            return None
        holder = self.leadership.holder
        try:
            who = backend.claim_rotation(target.path, current.version, holder=holder, rotation_id=rotation_id,
                                         ttl=self.leadership.ttl)
        except Unsupported as exc:
            if refresh:
                raise RotationError(target.name, RotationStep.MINT,
                                    f"a refresh runs only under a rotation claim: {exc}") from None
            return None  # a KV v1 mount: the lease alone keeps replicas apart
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.MINT, f"cannot claim the rotation: {exc}") from None
        if who != holder:
            log.info("%s: another replica (%s) claimed this rotation; nothing minted", target.name, who,
                     extra={"target": target.name, "rotation_id": rotation_id, "outcome": "skipped"})
            return f"another replica ({who}) claimed this rotation"
        with self._claims_lock:
            self._claims[rotation_id] = (backend, target.path, current.version)
        return None


def utc_iso_now() -> str:
    return utc_iso(datetime.now(timezone.utc))
