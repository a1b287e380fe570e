"""``jfrog-rotator daemon``: rotates every target on its schedule until stopped.

How jobs work: each target has one APScheduler job whose trigger is a date (plus jitter): the
target's next due time, computed from what the store says (``rotator.core.schedule.next_due``).
When the job fires it checks again that the target is still due (another replica may have
rotated it meanwhile; the store is the truth), rotates through the engine, and schedules the
next run from the new state. So ``every`` counts from the last issue, ``cron`` fires at the
first slot after it, and ``before_expiry`` follows each new token's expiry. Several daemons on
one config therefore rotate each target once per due time; if two check at the same instant,
the engine's compare-and-set lets one win and the loser revokes its token.

Signals: SIGTERM/SIGINT stop taking new work, let in-flight rotations finish (bounded), exit 0;
SIGHUP reloads the config (a bad one is refused and the old one keeps running).
"""

from __future__ import annotations

import inspect
import logging
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor as FuturesPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from backends.base import LocalStore
from rotator.config import Config, load_config
from rotator.core.target import Target
from rotator.engine import Engine, StepHook
from rotator.ops.metrics import Metrics
from rotator.core.options import ConfigError
from rotator.core.record import utc_iso
from rotator.core.schedule import jittered
from rotator.config.wiring import build_engine
from rotator.engine.status import TargetStatus, target_status

log = logging.getLogger(__name__)

DUE_SLACK = timedelta(seconds=1)  # a job firing this close to the due time counts as due
RETRY_BASE, RETRY_MAX = 15.0, 600.0  # back-off after a failed rotation, seconds


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


@dataclass
class TargetState:
    failures: int = 0
    last_error: str | None = None
    retry_at: datetime | None = None
    in_flight: bool = False
    foreign: str | None = None  # a manual overwrite the rotator must not clobber


@dataclass
class DaemonState:
    """What ``/readyz`` and ``/status`` report besides the store."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    targets: dict[str, TargetState] = field(default_factory=dict)


class RotationDaemon:
    def __init__(self, config_path: str, *, listen: str | None = None, step_hook: StepHook | None = None,
                 shutdown_timeout: float = 30.0, auth_check_interval: float = 30.0,
                 health_interval: float = 30.0, rng: random.Random | None = None) -> None:
        self.config_path = config_path
        self.step_hook = step_hook
        self.shutdown_timeout = shutdown_timeout
        self.auth_check_interval = auth_check_interval
        self.health_interval = health_interval
        self.rng = rng or random.Random()
        self.metrics = Metrics()
        self.state = DaemonState()
        self.config: Config = load_config(config_path)
        self.engine: Engine = build_engine(self.config, step_hook=step_hook)
        self.listen = listen or self.config.daemon.listen
        self.ops = None
        self._lock = threading.RLock()
        self._busy = threading.Condition()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._wake = threading.Event()
        self.scheduler = self._new_scheduler()
        self._job = _presigned(self._run_target)
        from rotator.triggers.http import mount_trigger_route
        from rotator.triggers.reconcile import VaultReconciler

        self.reconciler = VaultReconciler(self)
        self.extra_routes = [lambda server: mount_trigger_route(server, self)]

    # ------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------
    def _new_scheduler(self) -> BackgroundScheduler:
        settings = self.config.daemon
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=settings.max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace},
            timezone=timezone.utc,
        )
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        return scheduler

    def start(self) -> RotationDaemon:
        """Schedule every target from the store's state, start the periodic jobs and the endpoint."""
        self._warn_about_schedules(self.config)
        self._schedule_all(self.config.targets)  # before start(): jobs are then added in one batch
        self.scheduler.start()
        self.scheduler.add_job(self._sweep_all, IntervalTrigger(seconds=self.config.daemon.sweep_interval),
                               id="sweep", replace_existing=True)
        self.scheduler.add_job(self._keep_auth_alive, IntervalTrigger(seconds=self.auth_check_interval),
                               id="vault-auth", replace_existing=True)
        self.scheduler.add_job(self._probe_contacts, IntervalTrigger(seconds=self.health_interval),
                               id="health", replace_existing=True, next_run_time=datetime.now(timezone.utc))
        self.reconciler.install()
        self._start_event_listeners()
        if self.listen:
            from rotator.ops.routes import mount_routes  # the endpoint is optional

            self.ops = mount_routes(self)
        log.info("daemon started with %d target(s)", len(self.config.targets),
                 extra={"config": str(self.config.source)})
        return self

    def run_forever(self) -> int:
        """Block until SIGTERM/SIGINT (reloading on SIGHUP); returns the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            while not self._stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stop()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self._reload_requested.set()
        else:
            log.info("received %s: stopping after in-flight rotations", signal.Signals(signum).name)
            self._stopping.set()
        self._wake.set()

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def stop(self) -> int:
        """Take no new work, wait (bounded) for rotations in flight, shut down. Returns 0 when
        nothing was left running, 1 when the wait timed out."""
        self._stopping.set()
        try:
            self.scheduler.pause()
        except Exception:  # not running
            pass
        deadline = time.monotonic() + self.shutdown_timeout
        with self._busy:
            while self._in_flight and time.monotonic() < deadline:
                self._busy.wait(max(0.0, deadline - time.monotonic()))
            left = self._in_flight
        try:
            self.scheduler.shutdown(wait=False)
        except Exception:
            pass
        for listener in getattr(self, "event_listeners", []):
            listener.stop()
        if self.ops is not None:
            self.ops.stop()
        self.engine.jfrog.close()
        self.config.close()
        if left:
            log.error("stopped with %d rotation(s) still running after %.0fs", left, self.shutdown_timeout)
            return 1
        log.info("daemon stopped")
        return 0

    # ------------------------------------------------------------------------------------
    # reload
    # ------------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Load the config again; refuse a bad one (the running one stays). True when applied."""
        try:
            new_config = load_config(self.config_path)
            new_engine = build_engine(new_config, step_hook=self.step_hook)
        except ConfigError as exc:
            log.error("config reload refused, keeping the running config: %s", exc)
            return False
        except Exception as exc:  # anything else wrong with the new config is also a refusal
            log.error("config reload refused, keeping the running config: %s: %s", type(exc).__name__, exc)
            return False
        with self._lock:
            old_config, old_engine = self.config, self.engine
            old = {t.name: t for t in old_config.targets}
            new = {t.name: t for t in new_config.targets}
            self.config, self.engine = new_config, new_engine
        for name in old.keys() - new.keys():
            self._unschedule(name)
            self.metrics.forget(name)
            self.state.targets.pop(name, None)
        changed = [t for name, t in new.items() if old.get(name) != t]
        self._warn_about_schedules(new_config)
        self._schedule_all(changed)
        self.scheduler.reschedule_job("sweep", trigger=IntervalTrigger(seconds=new_config.daemon.sweep_interval))
        self.reconciler.install()
        for listener in getattr(self, "event_listeners", []):
            listener.stop()
        self._start_event_listeners()
        # In-flight jobs still hold the old engine and config: close them once they are idle.
        threading.Thread(target=self._close_when_idle, args=(old_config, old_engine), daemon=True).start()
        log.info("config reloaded: %d target(s), %d added, %d removed, %d changed", len(new),
                 len(new.keys() - old.keys()), len(old.keys() - new.keys()),
                 len([t for t in changed if t.name in old]))
        return True

    def _close_when_idle(self, config: Config, engine: Engine) -> None:
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, timeout=self.shutdown_timeout)
        engine.jfrog.close()
        config.close()

    # ------------------------------------------------------------------------------------
    # scheduling
    # ------------------------------------------------------------------------------------
    def _schedule_all(self, targets: list[Target]) -> None:
        """Schedule ``targets`` from the store's state, reading the stores in parallel."""
        if not targets:
            return
        now = datetime.now(timezone.utc)
        remote = [t for t in targets if not isinstance(self.config.backends[t.backend], LocalStore)]
        statuses = {t.name: target_status(self.config, t, now) for t in targets if t not in remote}
        if remote:  # network stores: read them in parallel
            with FuturesPool(max_workers=min(16, len(remote))) as pool:
                statuses.update(zip((t.name for t in remote), pool.map(lambda t: target_status(self.config, t, now), remote)))
        for target in targets:
            status = statuses[target.name]
            self._observe_status(target, status)
            self._schedule(target, self._next_run(target, status, now))

    def _next_run(self, target: Target, status: TargetStatus, now: datetime) -> datetime:
        if status.state in ("missing", "expired", "error"):
            return now  # rotate at once (an error state is retried by the job with back-off)
        if status.next_due is None:
            return now + timedelta(days=3650)  # nothing to do by this schedule (non-expiring token)
        return max(now, jittered(status.next_due, target.schedule.jitter, self.rng))

    def _schedule(self, target: Target, when: datetime) -> None:
        self.scheduler.add_job(self._job, DateTrigger(run_date=when), args=[target.name],
                               id=_job_id(target.name), name=f"rotate {target.name}", replace_existing=True)

    def _unschedule(self, name: str) -> None:
        try:
            self.scheduler.remove_job(_job_id(name))
        except Exception:  # already gone (it was running or had fired)
            pass

    def wake(self, name: str, reason: str = "wake") -> bool:
        """Run the target's due check now; False for an unknown target."""
        return self.run_now(name, reason)

    def run_now(self, name: str, reason: str, *, only_if_version: Any = None,
                requests: tuple[str, ...] | list[str] = ()) -> bool:
        """Run the target's job now. ``reason`` ``schedule``/``missed``/``wake`` rotates only when
        due; any other reason (a Vault flag or request) rotates, but only if the store still holds
        ``only_if_version``. ``requests`` are deleted once served. False for an unknown target."""
        with self._lock:
            target = self.config.by_name.get(name)
        if target is None:
            return False
        self.scheduler.add_job(self._job, DateTrigger(run_date=datetime.now(timezone.utc)), args=[name],
                               kwargs={"reason": reason, "only_if_version": only_if_version,
                                       "requests": tuple(requests)},
                               id=_job_id(name), name=f"rotate {name}", replace_existing=True)
        return True

    def set_foreign(self, name: str, problem: str | None) -> None:
        """Mark (or clear) a target whose current value was written by hand and cannot be adopted."""
        state = self.state.targets.setdefault(name, TargetState())
        if problem != state.foreign:
            if problem:
                log.warning("%s: %s; it is not rotated until fixed", name, problem,
                            extra={"target": name, "outcome": "foreign-write"})
            elif state.foreign:
                log.info("%s: the manual write was adopted or fixed", name, extra={"target": name})
        state.foreign = problem
        self.metrics.foreign.labels(name).set(1 if problem else 0)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """A target's run was missed by more than the misfire grace (the daemon was suspended):
        check it once now instead of losing the job (runs coalesce into one)."""
        if event.job_id.startswith("target:") and not self._stopping.is_set():
            name = event.job_id[len("target:"):]
            log.warning("%s: run missed by more than the misfire grace; checking it now", name,
                        extra={"target": name})
            self.wake(name, reason="missed")

    # ------------------------------------------------------------------------------------
    # the job
    # ------------------------------------------------------------------------------------
    def _run_target(self, name: str, reason: str = "schedule", only_if_version: Any = None,
                    requests: tuple[str, ...] = ()) -> None:
        if self._stopping.is_set():
            return
        with self._lock:
            config, engine = self.config, self.engine
            target = config.by_name.get(name)
        if target is None:
            return
        with self._busy:
            self._in_flight += 1
        state = self.state.targets.setdefault(name, TargetState())
        state.in_flight = True
        next_run: datetime | None = None
        try:
            next_run = self._check_and_rotate(config, engine, target, state, reason, only_if_version, requests)
        finally:
            state.in_flight = False
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()
            if not self._stopping.is_set() and next_run is not None:
                with self._lock:
                    current = self.config.by_name.get(name)
                if current == target:
                    self._schedule(target, next_run)
                elif current is not None:  # changed by a reload while we ran: plan with the new settings
                    self._schedule_all([current])

    def _check_and_rotate(self, config: Config, engine: Engine, target: Target, state: TargetState,
                          reason: str, only_if_version: Any = None, requests: tuple[str, ...] = ()) -> datetime:
        now = datetime.now(timezone.utc)
        status = target_status(config, target, now)
        scheduled = reason in ("schedule", "missed", "wake")
        due = status.state in ("missing", "expired", "error") or (
            status.next_due is not None and status.next_due <= now + DUE_SLACK)
        if scheduled and state.foreign:
            log.warning("%s: not rotated: %s", target.name, state.foreign,
                        extra={"target": target.name, "outcome": "foreign-write"})
            return now + timedelta(seconds=RETRY_MAX)  # the reconcile loop clears it once fixed
        if scheduled and not due:
            self.metrics.rotations.labels(target.name, "skipped").inc()
            log.info("%s: not due (rotated elsewhere); next due %s", target.name, status.next_due,
                     extra={"target": target.name, "outcome": "skipped"})
            return self._next_run(target, status, now)
        if not scheduled and state.retry_at is not None and now < state.retry_at:
            log.info("%s: %s waits for the retry back-off (until %s)", target.name, reason,
                     utc_iso(state.retry_at), extra={"target": target.name})
            return state.retry_at
        result = engine.rotate(target, reason=reason, only_if_version=None if scheduled else only_if_version)
        self.metrics.observe_rotation(result)
        self._record_contact(result)
        if requests and result.outcome in ("rotated", "skipped", "lost-race"):
            self._delete_requests(config, target, requests)
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
        self._observe_status(target, after)
        return self._next_run(target, after, datetime.now(timezone.utc))

    def _delete_requests(self, config: Config, target: Target, requests: tuple[str, ...]) -> None:
        backend = config.backends[target.backend]
        for request_id in requests:
            try:
                backend.delete_request(target.name, request_id)
            except Exception as exc:  # a leftover request is served (as skipped) on the next pass
                log.warning("%s: could not delete request %s: %s", target.name, request_id, exc,
                            extra={"target": target.name})

    def _start_event_listeners(self) -> None:
        from rotator.triggers.vault_events import start_listeners

        self.event_listeners = start_listeners(self)

    def _observe_status(self, target: Target, status: TargetStatus) -> None:
        if status.token_id is not None:
            self.metrics.observe_state(target.name, expires_at=status.expires_at.timestamp()
                                       if status.expires_at else None, retired=status.retired_waiting)

    # ------------------------------------------------------------------------------------
    # periodic jobs
    # ------------------------------------------------------------------------------------
    def _sweep_all(self) -> None:
        with self._lock:
            config, engine = self.config, self.engine
        for target in config.targets:
            if self._stopping.is_set():
                return
            result = engine.sweep(target)
            self.metrics.observe_sweep(result)
            for error in result.errors:
                log.warning("sweep: %s", error, extra={"target": target.name})
            if result.retired_revoked or result.orphans_revoked:
                log.info("%s: sweep revoked %d retired and %d orphan token(s)", target.name,
                         len(result.retired_revoked), len(result.orphans_revoked), extra={"target": target.name})
                self._observe_status(target, target_status(config, target))

    def _keep_auth_alive(self) -> None:
        """Renew the daemon's own Vault tokens before they expire; log in again when they cannot
        be renewed (AppRole, Kubernetes)."""
        with self._lock:
            backends = dict(self.config.backends)
        for name, backend in backends.items():
            refresh = getattr(backend, "refresh_auth", None)
            if refresh is None:
                continue
            try:
                action = refresh(min_ttl=int(self.auth_check_interval * 2) + 5)
                self.state.contacts.setdefault(f"backend:{name}", Contact()).record(True)
                if action != "ok":
                    log.info("vault auth for backend %s: %s", name, action, extra={"backend": name})
            except Exception as exc:
                self.state.contacts.setdefault(f"backend:{name}", Contact()).record(False, str(exc))
                log.error("vault auth for backend %s failed: %s", name, exc, extra={"backend": name})

    def _probe_contacts(self) -> None:
        with self._lock:
            config, engine = self.config, self.engine
        try:
            engine.jfrog.ping()
            self.state.contacts.setdefault("jfrog", Contact()).record(True)
        except Exception as exc:
            self.state.contacts.setdefault("jfrog", Contact()).record(False, str(exc))
        for name, backend in config.backends.items():
            try:
                backend.check()
                self.state.contacts.setdefault(f"backend:{name}", Contact()).record(True)
            except Exception as exc:
                self.state.contacts.setdefault(f"backend:{name}", Contact()).record(False, str(exc))

    def _record_contact(self, result: Any) -> None:
        if result.outcome in ("rotated", "lost-race"):
            self.state.contacts.setdefault("jfrog", Contact()).record(True)
        elif result.step in ("mint", "verify"):
            self.state.contacts.setdefault("jfrog", Contact()).record(False, result.error)

    # ------------------------------------------------------------------------------------
    # schedule sanity
    # ------------------------------------------------------------------------------------
    def _warn_about_schedules(self, config: Config) -> None:
        for target in config.targets:
            problem = schedule_problem(target)
            if problem:
                log.warning("%s: %s", target.name, problem, extra={"target": target.name})

    # ------------------------------------------------------------------------------------
    # status
    # ------------------------------------------------------------------------------------
    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            names = ["jfrog"] + [f"backend:{n}" for n in self.config.backends]
        contacts = {n: self.state.contacts.get(n, Contact()) for n in names}
        ok = not self._stopping.is_set() and all(c.ok for c in contacts.values())
        return ok, {"ready": ok, "config": str(self.config.source),
                    "contacts": {n: c.to_json() for n, c in contacts.items()}}

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            config = self.config
        now = datetime.now(timezone.utc)
        out = []
        for target in config.targets:
            status = target_status(config, target, now)
            daemon_state = self.state.targets.get(target.name)
            if daemon_state and daemon_state.last_error and not status.last_error:
                status.last_error = daemon_state.last_error
            if daemon_state and daemon_state.foreign:
                status.state, status.last_error = "foreign-write", daemon_state.foreign
            job = self.scheduler.get_job(_job_id(target.name))
            entry = status.to_json(now)
            entry["next_run"] = job.next_run_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
                if job and job.next_run_time else None
            out.append(entry)
        return out


def schedule_problem(target: Target) -> str | None:
    """A warning when the schedule lets the token expire before its next rotation:
    interval + jitter >= expiry - overlap."""
    expiry = target.token.expiry
    schedule = target.schedule
    if not expiry:  # platform default (1 year) or never: nothing to compare with
        return None
    if schedule.kind == "every":
        gap = (schedule.every or 0) + schedule.jitter
    elif schedule.kind == "cron":
        gap = cron_max_gap(schedule.cron or "", schedule.timezone) + schedule.jitter
    else:
        window = (schedule.before_expiry_seconds if schedule.before_expiry_seconds is not None
                  else expiry * (schedule.before_expiry_fraction or 0))
        if schedule.jitter >= window:
            return (f"jitter {schedule.jitter}s is not shorter than the before_expiry window {window:.0f}s: "
                    "the token may expire before it is rotated")
        return None
    if gap >= expiry - target.overlap:
        return (f"schedule {schedule.describe()} (+{schedule.jitter}s jitter) can leave {gap}s between rotations, "
                f"but the token lives {expiry}s and the old one stays {target.overlap}s: it may expire before the "
                "next rotation")
    return None


def cron_max_gap(cron: str, tz: str, samples: int = 50) -> int:
    """The longest gap between consecutive fire times of a crontab line over its next ``samples`` fires."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    now = datetime.now(trigger.timezone)
    fire = trigger.get_next_fire_time(None, now)
    longest = 0
    for _ in range(samples):
        if fire is None:
            break
        following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if following is None:
            break
        longest = max(longest, int((following - fire).total_seconds()))
        fire = following
    return longest


def _job_id(name: str) -> str:
    return f"target:{name}"


def _presigned(method: Any) -> Any:
    """A plain function calling ``method`` with its signature computed once: APScheduler checks a
    job's arguments against ``inspect.signature`` on every add, the bulk of adding 10,000 jobs."""

    def job(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    job.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    job.__name__ = job.__qualname__ = getattr(method, "__name__", "job")
    return job
