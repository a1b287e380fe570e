"""What the ops routes and the Vault triggers may ask of the running daemon.

:class:`DaemonControl` is the whole surface: ``rotator.ops`` and ``rotator.triggers`` depend on
this protocol, never on ``rotator.daemon``, so the daemon (a higher layer) can use them without an
import cycle. :class:`rotator.daemon.RotationDaemon` implements it. See ``docs/daemon.md`` and
``docs/vault-triggers.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from rotator.config import Config
from rotator.ops.metrics import Metrics
from rotator.ops.server import OpsServer

#: Adds routes to the operations endpoint before it starts (the HTTP trigger is one).
RouteMount = Callable[[OpsServer], None]


@runtime_checkable
class DaemonControl(Protocol):
    """The running daemon as its endpoint and its triggers see it."""

    # -- what the operations endpoint serves ---------------------------------------------------
    metrics: Metrics
    extra_routes: list[RouteMount]

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether the daemon is ready (``/readyz``), and the last contact with each remote."""

    def status(self) -> list[dict[str, Any]]:
        """One entry per target: the store's state, the daemon's own errors, the next run (``/status``)."""

    # -- what the triggers use -------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        """True once a stop was asked for: take no new work."""

    @property
    def config(self) -> Config:
        """The config running now (it changes on a reload)."""

    def run_now(self, name: str, reason: str, *, only_if_version: Any = None,
                requests: Sequence[str] = ()) -> bool:
        """Run the target's job now, rotating only if the store still holds ``only_if_version``;
        ``requests`` are deleted once served. False for an unknown target."""

    def reconcile_now(self, name: str) -> bool:
        """Look at one target's Vault state now (an accepted HTTP trigger, an event); False when it
        is not a target in a store that takes rotation requests, or this replica is a standby."""

    def is_leader(self) -> bool:
        """Whether this replica does the work now (it holds the leader lease, or there is none)."""

    def set_foreign(self, name: str, problem: str | None) -> None:
        """Mark (or clear) a target whose current value was written by hand and cannot be adopted."""

    def verify_token(self, access_token: str) -> None:
        """Check with JFrog that ``access_token`` works; raises ``JFrogError`` when it does not."""

    def schedule_every(self, job_id: str, job: Callable[..., Any], *, seconds: float, jitter: float = 0.0,
                       args: Sequence[Any] = (), name: str | None = None) -> None:
        """Run ``job(*args)`` every ``seconds`` (give or take ``jitter``), the first time right away;
        replaces the job with the same id."""

    def unschedule(self, job_id: str) -> None:
        """Remove the job ``job_id`` (nothing happens when there is none)."""
