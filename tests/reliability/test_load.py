"""Suite 6, load with faults (docs/reliability.md): a fleet over three stores (file, Vault KV v2,
AWS Secrets Manager on moto) rotated three times by the daemon while a seeded 1 % of the remote
calls fail (JFrog answers a 5xx, a Vault or AWS request is cut before it reaches the server).
Then: no dead token, no live orphan after a final sweep, every failed rotation counted in
``/metrics`` and logged, and (the full case, a real daemon process) its memory flat across rounds.

The full case (1,000 targets) is slow; a seeded 30-target version runs in ``make test`` with the
in-process daemon, whose retry back-off is cut from 15 s to 1 s so a failure does not wait.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest
import requests

from rotator.cli import run
from rotator.daemon import target_job
from tests.fixtures.daemon import wait_until
from tests.fixtures.moto_server import aws_env
from tests.reliability.harness import check_config
from tests.reliability.load_fleet import DaemonProcess, SeededFaults, make_fleet, rotations

SUITE = "load"

RATIO, SEED = 0.01, 13
_FAILED = re.compile(r"^([\w-]+): rotation failed \(attempt \d+")


def failures_logged(messages: list[str]) -> Counter:
    """Failed rotations per target, from the daemon's ``<target>: rotation failed (attempt n, ...)`` lines."""
    return Counter(m.group(1) for text in messages if (m := _FAILED.match(text)))


@pytest.fixture
def fleet_env(monkeypatch, emulator, openbao, moto_server, cli_env, tmp_path):
    monkeypatch.chdir(tmp_path)
    aws_env(monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    return dict(os.environ)


def rounds_done(counts: dict[str, Counter], names: list[str]) -> int:
    """How many rotations every target has had at least."""
    rotated = counts.get("rotated", Counter())
    return min(rotated[name] for name in names)


def finish(fleet, faults, emulator, tally, metrics_text: str, logged: Counter, rounds: int, aimed: int = 0) -> dict:
    """The checks shared by both cases, once the daemon has stopped: failures in metrics = failures
    logged (and no more than faults injected), a final sweep, invariants 1-3 on every target."""
    counts = rotations(metrics_text)
    failed = counts.get("failed", Counter())
    assert dict(+failed) == dict(+logged), "every failed rotation counted in /metrics is logged, and no other"
    injected = faults.injected + fleet.store_faults() + aimed
    assert sum(failed.values()) <= injected
    time.sleep(1.1)  # the overlap and the orphan grace (1 s) of the last rotations are over
    assert run(["sweep", "-c", str(fleet.config), "--all"]) == 0
    check_config(fleet.config, emulator, tally, swept=True)
    tally.add(faults=injected, rounds=rounds, targets=fleet.count,
              rotations=sum(counts.get("rotated", Counter()).values()), failed_rotations=sum(failed.values()))
    return {"faults": injected, "failed": sum(failed.values()), "jfrog_faults": faults.injected,
            "store_faults": fleet.store_faults()}


def test_a_small_fleet_rotated_three_times_with_faults(fleet_env, emulator, openbao, moto_server, tmp_path,
                                                       start_daemon, ledger, tally, monkeypatch):
    """30 targets, every 2 s, three rotations each, 1 % of calls failing (seeded), the in-process
    daemon; and two mints refused outright (JFrog retries a 5xx itself), so some rotations fail for sure."""
    monkeypatch.setattr(target_job, "RETRY_BASE", 1.0)
    faults = SeededFaults(emulator, RATIO, SEED)
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=403, count=2)
    fleet = make_fleet(tmp_path, emulator, openbao, moto_server, count=30, every=2, ratio=RATIO, seed=SEED,
                       env=fleet_env, sweep_interval=2)
    try:
        daemon = start_daemon(fleet.config, listen="127.0.0.1:0")
        url = daemon.ops.url

        def metrics() -> str:
            return requests.get(f"{url}/metrics", timeout=10).text

        wait_until(lambda: rounds_done(rotations(metrics()), fleet.names) >= 3, 30, interval=0.3,
                   what="three rotations of every target")
        faults.stop()
        fleet.heal()
        time.sleep(0.5)  # a call in flight when the faults stopped finishes
        text = metrics()
        daemon.stop()
        logged = failures_logged([t.split(" ", 2)[2] for where, t in ledger.texts
                                  if where == "log rotator.daemon"])
        figures = finish(fleet, faults, emulator, tally, text, logged, 3, aimed=2)
        print(f"load, 30 targets: {figures}")
        assert figures["failed"] >= 2
    finally:
        fleet.stop()
    ledger.emulator(emulator)
    ledger.secret(openbao.root_token)
    ledger.check(tally)


@pytest.mark.slow
def test_a_thousand_targets_rotated_three_times_with_faults_by_a_daemon_process(
        fleet_env, emulator, openbao, moto_server, tmp_path, tally, capsys):
    """1,000 targets, three rotations each, 1 % of calls failing (seeded), a real daemon process
    whose resident memory is read after each round."""
    faults = SeededFaults(emulator, RATIO, SEED)
    fleet = make_fleet(tmp_path, emulator, openbao, moto_server, count=1000, every=40, ratio=RATIO, seed=SEED,
                       env=fleet_env, sweep_interval=20)
    started = time.monotonic()
    daemon = DaemonProcess(fleet)
    rss, times = [], []
    try:
        for k in (1, 2, 3):
            wait_until(lambda k=k: rounds_done(rotations(daemon.metrics()), fleet.names) >= k, 150, interval=1,
                       what=f"rotation {k} of every target")
            rss.append(daemon.rss_kib())
            times.append(round(time.monotonic() - started, 1))
        faults.stop()
        fleet.heal()
        time.sleep(0.5)  # a call in flight when the faults stopped finishes
        text = daemon.metrics()
        assert daemon.stop() == 0
        logged = failures_logged([line.get("message", "") for line in daemon.log_lines() if line["level"] == "error"])
        # With max_workers 8, rotations and a sweep together can still pass a pool's 10 (reported).
        thrown = sum(1 for line in daemon.log_lines() if "Connection pool is full" in line.get("message", ""))
        figures = finish(fleet, faults, emulator, tally, text, logged, 3)
    finally:
        daemon.stop()
        fleet.stop()
    with capsys.disabled():
        print(f"\nload, 1,000 targets: rounds done at {times} s, daemon RSS after each {rss} KiB, {figures}, "
              f"{thrown} pooled connection(s) thrown away")
    tally.add(rss_round1_kib=rss[0], rss_round2_kib=rss[1], rss_round3_kib=rss[-1], connections_thrown=thrown)
    assert figures["faults"] > 0 and figures["failed"] > 0
    assert rss[-1] < 1.5 * rss[0], f"the daemon's memory grew from {rss[0]} to {rss[-1]} KiB over three rounds"


def test_the_start_up_reads_stay_within_the_stores_connection_pools(fleet_env, emulator, openbao, moto_server,
                                                                     tmp_path, start_daemon, ledger, tally):
    """At start the daemon reads every network target's store in parallel: no more at once than a
    store's connection pool holds (10), or urllib3 throws connections away, warning each time."""
    fleet = make_fleet(tmp_path, emulator, openbao, moto_server, count=40, every=3600, ratio=0.0, seed=SEED,
                       env=fleet_env, stores=("vault", "aws"), max_workers=4, sweep_interval=3600)
    try:
        daemon = start_daemon(fleet.config, listen="127.0.0.1:0")
        wait_until(lambda: rounds_done(rotations(requests.get(f"{daemon.ops.url}/metrics", timeout=10).text),
                                       fleet.names) >= 1, 30, interval=0.3, what="every target's first token")
        daemon.stop()
    finally:
        fleet.stop()
    thrown = [t for where, t in ledger.texts if "Connection pool is full" in t]
    tally.add(checks=1)
    tally.violated([f"{len(thrown)} connection(s) thrown away: {thrown[0]}"] if thrown else [])
