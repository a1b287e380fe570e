"""Prometheus metrics of the daemon, in a registry of its own (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rotator.engine import RotationResult, SweepResult

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rotations = Counter("jfrog_rotator_rotations", "Rotations by target and result "
                                 "(rotated, synced, lost-race, failed, skipped)", ["target", "result"],
                                 registry=self.registry)
        self.duration = Histogram("jfrog_rotator_rotation_duration_seconds", "Duration of one rotation",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry)
        self.expiry = Gauge("jfrog_rotator_token_expiry_timestamp_seconds",
                            "Expiry of the token the store holds (0 = never expires)", ["target"],
                            registry=self.registry)
        self.last_success = Gauge("jfrog_rotator_last_success_timestamp_seconds",
                                  "When the target was last rotated successfully", ["target"], registry=self.registry)
        self.retired = Gauge("jfrog_rotator_retired_tokens", "Previous tokens waiting to be revoked", ["target"],
                             registry=self.registry)
        self.foreign = Gauge("jfrog_rotator_foreign_writes", "1 while the target's current value was written "
                             "by hand and cannot be adopted (it is not rotated until fixed)", ["target"],
                             registry=self.registry)
        self.output_in_sync = Gauge("jfrog_rotator_output_in_sync", "Fan-out: 1 while the output holds the "
                                    "target's current token, 0 while it is behind (the next run writes it)",
                                    ["target", "output"], registry=self.registry)
        self._outputs: dict[str, set[str]] = {}  # target -> its output series, to forget them
        self.leader = Gauge("jfrog_rotator_leader", "1 while this replica does the work: it holds the leader "
                            "lease, or daemon.leader is off", ["replica"], registry=self.registry)
        self.sweep_revocations = Counter("jfrog_rotator_sweep_revocations",
                                         "Tokens revoked by sweeps (retired after their overlap, and orphans)",
                                         registry=self.registry)

    def observe_rotation(self, result: RotationResult) -> None:
        self.rotations.labels(result.target, result.outcome).inc()
        if result.outcome in ("rotated", "lost-race", "failed"):
            self.duration.observe(result.duration)
        if result.outcome == "rotated":
            self.last_success.labels(result.target).set_to_current_time()
            self.expiry.labels(result.target).set(result.expires_at.timestamp() if result.expires_at else 0)
        if result.outputs:
            self.observe_outputs(result.target, {o.output: o.done for o in result.outputs})

    def observe_outputs(self, target: str, in_sync: dict[str, bool]) -> None:
        """Fan-out: which outputs of ``target`` hold its current token."""
        for output, ok in in_sync.items():
            self.output_in_sync.labels(target, output).set(1 if ok else 0)
        self._outputs.setdefault(target, set()).update(in_sync)

    def observe_state(self, target: str, *, expires_at: float | None, retired: int) -> None:
        """What the store says about a target (at start, after reloads and sweeps)."""
        self.expiry.labels(target).set(expires_at or 0)
        self.retired.labels(target).set(retired)

    def observe_sweep(self, result: SweepResult) -> None:
        revoked = len(result.retired_revoked) + len(result.orphans_revoked)
        if revoked:
            self.sweep_revocations.inc(revoked)

    def forget(self, target: str) -> None:
        """Drop the series of a target removed from the config."""
        for metric in (self.expiry, self.last_success, self.retired, self.foreign):
            try:
                metric.remove(target)
            except KeyError:
                pass
        for output in self._outputs.pop(target, set()):
            try:
                self.output_in_sync.remove(target, output)
            except KeyError:
                pass
        for result in ("rotated", "synced", "lost-race", "failed", "skipped"):
            try:
                self.rotations.remove(target, result)
            except KeyError:
                pass

    def render(self) -> bytes:
        return generate_latest(self.registry)
