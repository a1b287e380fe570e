"""The rotation daemon: one scheduler job per target, periodic sweeps and checks, the endpoint.

It implements :class:`rotator.ops.control.DaemonControl`, the interface its operations endpoint
and its Vault triggers use. See ``docs/daemon.md``.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor as FuturesPool
from datetime import datetime, timezone
from functools import partial
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from backends.base import BackendError, LocalStore, SecretBackend, Unsupported
from rotator.config import Config, Target, load_config
from rotator.config.wiring import build_engine
from rotator.core.options import ConfigError
from rotator.daemon.contacts import JFROG, Contacts, backend_contact
from rotator.daemon.leadership import Leadership, MintGuard
from rotator.daemon.schedule_checks import warn_about_schedules
from rotator.daemon.target_job import TargetJob, TargetState, next_run, observe_status, presigned, target_job_id
from rotator.engine import Engine, StepHook
from rotator.engine.status import target_status
from rotator.ops.control import RouteMount
from rotator.ops.metrics import Metrics
from rotator.ops.routes import mount_routes
from rotator.ops.server import OpsServer
from rotator.triggers.http import mount_trigger_route
from rotator.triggers.reconcile import VaultReconciler
from rotator.triggers.vault_events import EventListener, start_listeners

log = logging.getLogger("rotator.daemon")  # one logger name for the daemon (it is in every log line)


class RotationDaemon:
    """``jfrog-rotator daemon``: :meth:`start`, then :meth:`run_forever` until a signal stops it.

    With ``daemon.leader`` the replicas elect one leader through a lease in the store
    (:mod:`.leadership`): only the leader schedules, reconciles and sweeps, and it checks the lease
    and claims the target before each mint; a standby serves the endpoint and watches the lease.
    Without it every daemon acts on every target (the store's compare-and-set keeps them safe)."""

    def __init__(self, config_path: str, *, listen: str | None = None, step_hook: StepHook | None = None,
                 shutdown_timeout: float = 30.0, auth_check_interval: float = 30.0,
                 health_interval: float = 30.0, rng: random.Random | None = None,
                 replica_id: str | None = None) -> None:
        self.config_path = config_path
        self.step_hook = step_hook
        self.shutdown_timeout = shutdown_timeout
        self.auth_check_interval = auth_check_interval
        self.health_interval = health_interval
        self.rng = rng or random.Random()
        self.metrics = Metrics()
        self.contacts = Contacts()
        self.targets: dict[str, TargetState] = {}
        self.config: Config = load_config(config_path)
        self.leadership, self._lease_store = self._new_leadership(replica_id)
        self.replica = self.leadership.replica if self.leadership else (replica_id or socket.gethostname())
        self.guard = MintGuard(self.leadership) if self.leadership else None
        self.engine: Engine = build_engine(self.config, step_hook=step_hook, before_mint=self.guard,
                                           fence=self.leadership.confirm if self.leadership else None)
        self.metrics.leader.labels(self.replica).set(0 if self.leadership else 1)
        self.listen = listen or self.config.daemon.listen
        self.ops: OpsServer | None = None
        self._lock = threading.RLock()
        self._busy = threading.Condition()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._stopped = False
        self._reload_requested = threading.Event()
        self._wake = threading.Event()
        self._role_lock = threading.RLock()  # taking up and dropping the leader's work, one at a time
        self.scheduler = self._new_scheduler()
        self._target_job = TargetJob(self.metrics, self.contacts, self.rng)
        self._job = presigned(self._run_target)
        self.reconciler = VaultReconciler(self)
        self.event_listeners: list[EventListener] = []
        self.extra_routes: list[RouteMount] = [partial(mount_trigger_route, daemon=self)]

    # -- lifecycle -----------------------------------------------------------------------------
    def _new_scheduler(self) -> BackgroundScheduler:
        settings = self.config.daemon
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=settings.max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace},
            timezone=timezone.utc,
        )
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        return scheduler

    def _new_leadership(self, replica_id: str | None) -> tuple[Leadership | None, SecretBackend | None]:
        settings = self.config.daemon.leader
        if settings is None:
            return None, None
        store = self.config.backends[settings.backend]
        replica = replica_id or settings.replica_id or socket.gethostname()
        leadership = Leadership(store, path=settings.path, ttl=settings.ttl, replica=replica,  # type: ignore[arg-type]
                                on_elected=self._on_elected, on_deposed=self._on_deposed)
        return leadership, store

    def start(self) -> RotationDaemon:
        """Schedule every target from the store's state, start the periodic jobs and the endpoint;
        with ``daemon.leader``, start the election instead and leave the targets to the leader."""
        warn_about_schedules(self.config)
        if self.leadership is None:
            self._schedule_all(self.config.targets)  # before start(): jobs are then added in one batch
        else:
            self._check_lease()
        self.scheduler.start()
        self.scheduler.add_job(self._keep_auth_alive, IntervalTrigger(seconds=self.auth_check_interval),
                               id="vault-auth", replace_existing=True)
        self.scheduler.add_job(self._probe_contacts, IntervalTrigger(seconds=self.health_interval),
                               id="health", replace_existing=True, next_run_time=datetime.now(timezone.utc))
        if self.leadership is None:
            self._start_leader_jobs()
        if self.listen:  # the endpoint is optional
            self.ops = mount_routes(self, self.listen)
        if self.leadership is not None:
            self.leadership.start()
        log.info("daemon started with %d target(s)", len(self.config.targets),
                 extra={"config": str(self.config.source), "replica": self.replica})
        return self

    def _check_lease(self) -> None:
        """A store that cannot hold the lease (a KV v1 mount) is a config error, reported before start."""
        assert self.leadership is not None
        try:
            record = self.leadership.check()
        except Unsupported as exc:
            raise ConfigError(str(self.config.source), "daemon.leader.backend", str(exc)) from None
        except BackendError as exc:  # unreachable now: stand by, the election keeps trying
            log.warning("cannot read the leader lease yet: %s", exc, extra={"replica": self.replica})
            return
        log.info("standing by as replica %s; the lease %s", self.leadership.holder,
                 f"is held by {record.holder}" if record.holder else "is free", extra={"replica": self.replica})

    # -- leadership ----------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """True when this daemon does the work: it leads, or ``daemon.leader`` is off."""
        return self.leadership is None or self.leadership.leading

    def is_leader(self) -> bool:
        """:class:`rotator.ops.control.DaemonControl`: whether this replica does the work now."""
        return self.leading

    def _start_leader_jobs(self) -> None:
        """The leader's periodic work: the sweep, the reconcile loop, the event listeners."""
        with self._role_lock:
            if not self.leading or self._stopping.is_set():
                return
            self.scheduler.add_job(self._sweep_all, IntervalTrigger(seconds=self.config.daemon.sweep_interval),
                                   id="sweep", replace_existing=True)
            self.reconciler.install()
            self.event_listeners = start_listeners(self)

    def _on_elected(self) -> None:
        """Called by the election loop: take up the work in a thread of its own (scheduling reads
        every target's store; the loop must keep renewing meanwhile)."""
        self.metrics.leader.labels(self.replica).set(1)
        threading.Thread(target=self._take_up_work, name="leader-start", daemon=True).start()

    def _take_up_work(self) -> None:
        with self._lock:
            config = self.config
        self._schedule_all(config.targets)
        self._start_leader_jobs()
        if self.leading:
            log.info("leading: %d target(s) scheduled, sweeping and reconciling", len(config.targets),
                     extra={"replica": self.replica})

    def _on_deposed(self) -> None:
        """Called by the election loop: drop the leader's work (rotations in flight are fenced at MINT)."""
        self.metrics.leader.labels(self.replica).set(0)
        with self._role_lock:
            self.unschedule("sweep")
            self.reconciler.uninstall()
            for listener in self.event_listeners:
                listener.stop()
            self.event_listeners = []
            for job in self.scheduler.get_jobs():
                if job.id.startswith("target:"):
                    self.unschedule(job.id)
        log.info("standing by: the targets are left to the leader", extra={"replica": self.replica})

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
        """Make :meth:`run_forever` stop (from another thread)."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for (a signal, :meth:`request_stop`, :meth:`stop`)."""
        return self._stopping.is_set()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` has shut everything down."""
        return self._stopped

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
        if self.leadership is not None:  # kept (and renewed) while rotations were finishing
            self.leadership.stop()  # released: a standby takes over at its next read
        try:
            self.scheduler.shutdown(wait=False)
        except Exception:
            pass
        for listener in self.event_listeners:
            listener.stop()
        if self.ops is not None:
            self.ops.stop()
        self.engine.jfrog.close()
        self.config.close()
        if self._lease_store is not None and self._lease_store not in self.config.backends.values():
            self._lease_store.close()  # the one of the first config, kept across reloads
        self._stopped = True
        if left:
            log.error("stopped with %d rotation(s) still running after %.0fs", left, self.shutdown_timeout)
            return 1
        log.info("daemon stopped")
        return 0

    # -- reload --------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Load the config again; refuse a bad one (the running one stays). True when applied."""
        try:
            new_config = load_config(self.config_path)
            new_engine = build_engine(new_config, step_hook=self.step_hook, before_mint=self.guard,
                                      fence=self.leadership.confirm if self.leadership else None)
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
            self._unschedule_target(name)
            self.metrics.forget(name)
            self.targets.pop(name, None)
        changed = [t for name, t in new.items() if old.get(name) != t]
        if new_config.daemon.leader != old_config.daemon.leader:
            log.warning("daemon.leader changed: the new lease settings take effect at the next start")
        warn_about_schedules(new_config)
        with self._role_lock:
            if self.leading:  # a standby's next election schedules from the new config
                self._schedule_all(changed)
                self.scheduler.reschedule_job("sweep",
                                              trigger=IntervalTrigger(seconds=new_config.daemon.sweep_interval))
                self.reconciler.install()
                for listener in self.event_listeners:
                    listener.stop()
                self.event_listeners = start_listeners(self)
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
        for backend in config.backends.values():
            if backend is not self._lease_store:  # the lease outlives reloads
                backend.close()

    # -- scheduling ----------------------------------------------------------------------------
    def _schedule_all(self, targets: list[Target]) -> None:
        """Schedule ``targets`` from the store's state, reading the stores in parallel."""
        if not targets:
            return
        now = datetime.now(timezone.utc)
        remote = [t for t in targets if not isinstance(self.config.backends[t.backend], LocalStore)]
        statuses = {t.name: target_status(self.config, t, now) for t in targets if t not in remote}
        if remote:  # network stores: read them in parallel
            with FuturesPool(max_workers=min(16, len(remote))) as pool:
                read = pool.map(lambda t: target_status(self.config, t, now), remote)
                statuses.update(zip((t.name for t in remote), read))
        for target in targets:
            status = statuses[target.name]
            observe_status(self.metrics, target, status)
            self._schedule(target, next_run(target, status, now, self.rng))

    def _schedule(self, target: Target, when: datetime) -> None:
        with self._role_lock:
            if not self.leading or self._stopping.is_set():
                return  # a standby plans nothing; the leader has the target
            self.scheduler.add_job(self._job, DateTrigger(run_date=when), args=[target.name],
                                   id=target_job_id(target.name), name=f"rotate {target.name}",
                                   replace_existing=True)

    def _unschedule_target(self, name: str) -> None:
        self.unschedule(target_job_id(name))  # gone already when it was running or had fired

    def schedule_every(self, job_id: str, job: Callable[..., Any], *, seconds: float, jitter: float = 0.0,
                       args: Sequence[Any] = (), name: str | None = None) -> None:
        """Run ``job(*args)`` every ``seconds`` (give or take ``jitter``), the first time right away."""
        self.scheduler.add_job(job, IntervalTrigger(seconds=seconds, jitter=jitter), args=list(args), id=job_id,
                               name=name, replace_existing=True, next_run_time=datetime.now(timezone.utc))

    def unschedule(self, job_id: str) -> None:
        """Remove the job ``job_id`` (nothing happens when there is none)."""
        try:
            self.scheduler.remove_job(job_id)
        except JobLookupError:
            pass

    def wake(self, name: str, reason: str = "wake") -> bool:
        """Run the target's due check now; False for an unknown target."""
        return self.run_now(name, reason)

    def run_now(self, name: str, reason: str, *, only_if_version: Any = None,
                requests: Sequence[str] = ()) -> bool:
        """Run the target's job now. ``reason`` ``schedule``/``missed``/``wake`` rotates only when
        due; any other reason (a Vault flag or request) rotates, but only if the store still holds
        ``only_if_version``. ``requests`` are deleted once served. False for an unknown target."""
        with self._lock:
            target = self.config.by_name.get(name)
        if target is None:
            return False
        with self._role_lock:
            if not self.leading:
                return False  # the leader serves it: flags and requests wait in the store
            self.scheduler.add_job(self._job, DateTrigger(run_date=datetime.now(timezone.utc)), args=[name],
                                   kwargs={"reason": reason, "only_if_version": only_if_version,
                                           "requests": tuple(requests)},
                                   id=target_job_id(name), name=f"rotate {name}", replace_existing=True)
        return True

    def reconcile_now(self, name: str) -> bool:
        """Look at one target's Vault state now (an accepted HTTP trigger, an event). On a standby
        the flag the trigger set in the store is the message: the leader's next pass serves it."""
        if not self.leading:
            log.info("%s: left to the leader: it serves the flag at its next reconcile pass", name,
                     extra={"target": name, "replica": self.replica})
            return False
        return self.reconciler.wake(name)

    def set_foreign(self, name: str, problem: str | None) -> None:
        """Mark (or clear) a target whose current value was written by hand and cannot be adopted."""
        state = self.targets.setdefault(name, TargetState())
        if problem != state.foreign:
            if problem:
                log.warning("%s: %s; it is not rotated until fixed", name, problem,
                            extra={"target": name, "outcome": "foreign-write"})
            elif state.foreign:
                log.info("%s: the manual write was adopted or fixed", name, extra={"target": name})
        state.foreign = problem
        self.metrics.foreign.labels(name).set(1 if problem else 0)

    def verify_token(self, access_token: str) -> None:
        """Check with JFrog that ``access_token`` works (``JFrogError`` when it does not)."""
        with self._lock:
            engine = self.engine
        engine.jfrog.get_me(token=access_token)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """A target's run was missed by more than the misfire grace (the daemon was suspended):
        check it once now instead of losing the job (runs coalesce into one)."""
        if event.job_id.startswith("target:") and not self._stopping.is_set():
            name = event.job_id[len("target:"):]
            log.warning("%s: run missed by more than the misfire grace; checking it now", name,
                        extra={"target": name})
            self.wake(name, reason="missed")

    # -- the job -------------------------------------------------------------------------------
    def _run_target(self, name: str, reason: str = "schedule", only_if_version: Any = None,
                    requests: tuple[str, ...] = ()) -> None:
        if self._stopping.is_set() or not self.leading:
            return
        with self._lock:
            config, engine = self.config, self.engine
            target = config.by_name.get(name)
        if target is None:
            return
        with self._busy:
            self._in_flight += 1
        state = self.targets.setdefault(name, TargetState())
        state.in_flight = True
        when: datetime | None = None
        try:
            when = self._target_job.run(config, engine, target, state, reason, only_if_version, requests)
        finally:
            if self.guard is not None:  # a rotation that failed under its claim gives it back
                self.guard.settle(name, failed=state.last_error is not None)
            state.in_flight = False
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()
            try:
                if not self._stopping.is_set() and when is not None:
                    with self._lock:
                        current = self.config.by_name.get(name)
                    if current == target:
                        self._schedule(target, when)
                    elif current is not None:  # changed by a reload while we ran: plan with the new settings
                        self._schedule_all([current])
            finally:
                state.runs += 1  # last: a test waiting on the count sees the run's every effect

    def runs_done(self, name: str) -> int:
        """How many runs of the target's job have finished since start (any outcome)."""
        state = self.targets.get(name)
        return state.runs if state else 0

    # -- periodic jobs -------------------------------------------------------------------------
    def _sweep_all(self) -> None:
        with self._lock:
            config, engine = self.config, self.engine
        for result in engine.sweep_all(config.targets, parallel=config.daemon.max_workers,
                                       stopping=lambda: self._stopping.is_set() or not self.leading):
            target = config.by_name[result.target]
            self.metrics.observe_sweep(result)
            for error in result.errors:
                log.warning("sweep: %s", error, extra={"target": target.name})
            if result.retired_revoked or result.orphans_revoked:
                log.info("%s: sweep revoked %d retired and %d orphan token(s)", target.name,
                         len(result.retired_revoked), len(result.orphans_revoked), extra={"target": target.name})
                observe_status(self.metrics, target, target_status(config, target))

    def _keep_auth_alive(self) -> None:
        with self._lock:
            backends = dict(self.config.backends)
        if self._lease_store is not None and all(b is not self._lease_store for b in backends.values()):
            backends["daemon.leader"] = self._lease_store  # the first config's, after a reload
        self.contacts.keep_auth_alive(backends, min_ttl=int(self.auth_check_interval * 2) + 5)

    def _probe_contacts(self) -> None:
        with self._lock:
            config, engine = self.config, self.engine
        self.contacts.probe(engine, config.backends)

    # -- status --------------------------------------------------------------------------------
    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when not stopping and the last contact with JFrog and every store succeeded."""
        with self._lock:
            config = self.config
        ok, contacts = self.contacts.all_ok([JFROG] + [backend_contact(n) for n in config.backends])
        ok = ok and not self._stopping.is_set()
        leader = self.leadership.describe() if self.leadership else {"replica": self.replica, "leading": True}
        return ok, {"ready": ok, "config": str(config.source), "contacts": contacts, "leader": leader}

    def status(self) -> list[dict[str, Any]]:
        """One entry per target: the store's state, the daemon's own errors, the next run."""
        with self._lock:
            config = self.config
        now = datetime.now(timezone.utc)
        out = []
        for target in config.targets:
            status = target_status(config, target, now)
            daemon_state = self.targets.get(target.name)
            if daemon_state and daemon_state.last_error and not status.last_error:
                status.last_error = daemon_state.last_error
            if daemon_state and daemon_state.foreign:
                status.state, status.last_error = "foreign-write", daemon_state.foreign
            job = self.scheduler.get_job(target_job_id(target.name))
            entry = status.to_json(now)
            entry["next_run"] = job.next_run_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
                if job and job.next_run_time else None
            out.append(entry)
        return out
