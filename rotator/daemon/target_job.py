"""One run of a target's job: check the target is still due, rotate it, say when to run next.

The store is the truth: another replica may have rotated the target since the job was planned,
so the job reads the target's state again before it rotates. A failed rotation is retried with
exponential back-off. See ``docs/daemon.md`` (how jobs work).
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from rotator.config import Config, Target
from rotator.core.record import utc_iso
from rotator.core.schedule import jittered
from rotator.daemon.contacts import Contacts
from rotator.engine import Engine
from rotator.engine.status import TargetStatus, target_status
from rotator.ops.metrics import Metrics

log = logging.getLogger("rotator.daemon")  # one logger name for the daemon (it is in every log line)

DUE_SLACK = timedelta(seconds=1)  # a job firing this close to the due time counts as due
RETRY_BASE, RETRY_MAX = 15.0, 600.0  # back-off after a failed rotation, seconds
NEVER = timedelta(days=3650)  # "next run" of a target its schedule never makes due

#: Reasons that rotate only when the target is due; any other reason (a Vault flag or request) rotates.
SCHEDULED_REASONS = ("schedule", "missed", "wake")


@dataclass
class TargetState:
    """What the daemon knows about a target besides the store."""

    failures: int = 0
    last_error: str | None = None
    retry_at: datetime | None = None
    in_flight: bool = False
    foreign: str | None = None  # a manual overwrite the rotator must not clobber
    runs: int = 0  # job runs finished since the daemon started


def target_job_id(name: str) -> str:
    """The scheduler's id of a target's job."""
    return f"target:{name}"


def next_run(target: Target, status: TargetStatus, now: datetime, rng: random.Random) -> datetime:
    """When to run the target's job next, from what the store says about it."""
    if status.state in ("missing", "expired", "error", "out-of-sync"):
        return now  # rotate (or sync the outputs) at once; a failure is retried by the job with back-off
    if status.next_due is None:
        return now + NEVER  # nothing to do by this schedule (non-expiring token)
    return max(now, jittered(status.next_due, target.schedule.jitter, rng))


def observe_status(metrics: Metrics, target: Target, status: TargetStatus) -> None:
    """Put what the store says about a target into the metrics (expiry, retired tokens waiting,
    which outputs hold the current token)."""
    if status.token_id is not None:
        metrics.observe_state(target.name, expires_at=status.expires_at.timestamp()
                              if status.expires_at else None, retired=status.retired_waiting)
    if status.outputs:
        metrics.observe_outputs(target.name, {o.output: o.state == "in-sync" for o in status.outputs})


class TargetJob:
    """The check-and-rotate step of a target's job (the daemon owns scheduling and locking)."""

    def __init__(self, metrics: Metrics, contacts: Contacts, rng: random.Random) -> None:
        self.metrics = metrics
        self.contacts = contacts
        self.rng = rng

    def run(self, config: Config, engine: Engine, target: Target, state: TargetState, reason: str,
            only_if_version: Any = None, requests: tuple[str, ...] = ()) -> datetime:
        """Rotate ``target`` if ``reason`` calls for it now; returns when the job should run next."""
        now = datetime.now(timezone.utc)
        status = target_status(config, target, now)
        scheduled = reason in SCHEDULED_REASONS
        due = status.state in ("missing", "expired", "error") or (
            status.next_due is not None and status.next_due <= now + DUE_SLACK)
        if scheduled and state.foreign:
            log.warning("%s: not rotated: %s", target.name, state.foreign,
                        extra={"target": target.name, "outcome": "foreign-write"})
            return now + timedelta(seconds=RETRY_MAX)  # the reconcile loop clears it once fixed
        if scheduled and not due and status.state == "out-of-sync":
            return self._sync(config, engine, target, state, status, reason, now)
        if scheduled and not due:
            self.metrics.rotations.labels(target.name, "skipped").inc()
            log.info("%s: not due (rotated elsewhere); next due %s", target.name, status.next_due,
                     extra={"target": target.name, "outcome": "skipped"})
            return next_run(target, status, now, self.rng)
        if not scheduled and state.retry_at is not None and now < state.retry_at:
            log.info("%s: %s waits for the retry back-off (until %s)", target.name, reason,
                     utc_iso(state.retry_at), extra={"target": target.name})
            return state.retry_at
        result = engine.rotate(target, reason=reason, only_if_version=None if scheduled else only_if_version)
        if requests and result.outcome in ("rotated", "skipped", "lost-race"):
            self._delete_requests(config, target, requests)
        return self._after(config, target, state, result, now)

    def _sync(self, config: Config, engine: Engine, target: Target, state: TargetState, status: TargetStatus,
              reason: str, now: datetime) -> datetime:
        """Not due, but an output does not hold the current token (a rotation that did not reach it):
        write it there, minting nothing; retried with back-off like a failed rotation."""
        if state.retry_at is not None and now < state.retry_at:
            return state.retry_at
        log.info("%s: not due, but output(s) %s do not hold its token; syncing them", target.name,
                 ", ".join(o.output for o in status.outputs_behind), extra={"target": target.name})
        return self._after(config, target, state, engine.sync_outputs(target, reason=reason), now)

    def _after(self, config: Config, target: Target, state: TargetState, result: Any, now: datetime) -> datetime:
        """Count a rotation's (or a sync's) result and plan the next run: back-off after a failure."""
        self.metrics.observe_rotation(result)
        self.contacts.record_rotation(result)
        if result.outcome == "failed":
            state.failures += 1
            state.last_error = result.error
            delay = min(RETRY_MAX, RETRY_BASE * 2 ** (state.failures - 1))
            state.retry_at = now + timedelta(seconds=delay)
            log.error("%s: rotation failed (attempt %d, retry in %.0fs): %s", target.name, state.failures, delay,
                      result.error, extra={"target": target.name, "step": result.step,
                                           "rotation_id": result.rotation_id, "outcome": "failed"})
            return state.retry_at
        state.failures, state.last_error, state.retry_at = 0, None, None
        after = target_status(config, target, datetime.now(timezone.utc))
        observe_status(self.metrics, target, after)
        if after.state == "out-of-sync":  # the store still says so: look again after a pause, not at once
            return datetime.now(timezone.utc) + timedelta(seconds=RETRY_BASE)
        planned = next_run(target, after, datetime.now(timezone.utc), self.rng)
        if result.outcome == "skipped":  # another replica claimed it (or leads): look again, not at once
            return max(planned, now + timedelta(seconds=RETRY_BASE))
        return planned

    @staticmethod
    def _delete_requests(config: Config, target: Target, requests: tuple[str, ...]) -> None:
        backend = config.backends[target.backend]
        for request_id in requests:
            try:
                backend.delete_request(target.name, request_id)
            except Exception as exc:  # a leftover request is served (as skipped) on the next pass
                log.warning("%s: could not delete request %s: %s", target.name, request_id, exc,
                            extra={"target": target.name})


def presigned(method: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function calling ``method`` with its signature computed once: APScheduler checks a
    job's arguments against ``inspect.signature`` on every add, the bulk of adding 10,000 jobs."""

    def job(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    job.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    job.__name__ = job.__qualname__ = method.__name__
    return job
