"""Daemon footprint: start time, memory, idle CPU and scheduling lag with many targets.

For 1,000 to 50,000 targets on the file store (weekly schedules whose due times are spread
over the coming week, records written up front so nothing else is due), starts
`jfrog-rotator daemon` in a subprocess and measures:
- start time: process spawn -> the "daemon started" log line;
- RSS right after start (VmRSS of /proc/<pid>/status);
- CPU over 30 s of idling (utime+stime of /proc/<pid>/stat), as a share of one core;
- scheduling lag: a burst of --burst targets (default 100) becomes due together 15 s after
  start; lag = rotation start - due time, and the burst's throughput (rotations per second).
Goals: 10,000 targets <= 100 MB RSS, start <= 5 s, idle CPU <= 1 %. docs/scaling.md quotes the
50,000-target run (`--counts 10000,50000 --formats json --burst 1000`).

    .venv/bin/python bench/daemon_footprint.py [--counts 1000,10000] [--idle 30] [--burst 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, EmulatorProcess  # noqa: E402

from rotator.core.record import SecretRecord  # noqa: E402

WEEK = 7 * 86400
DUE_AFTER = 15.0
NOT_DUE_FOR = 2 * 3600  # the other targets fall due between 2 h and a week from now


def write_store(directory: Path, n: int, url: str, due_at: datetime, burst: int) -> None:
    """n records; the first ``burst`` become due at ``due_at``, the rest spread over the week."""
    directory.mkdir(parents=True)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    spread = random.Random(n)  # the same spread for the same count, run after run
    for i in range(n):
        issued = due_at - timedelta(seconds=WEEK) if i < burst else \
            now - timedelta(seconds=spread.randrange(0, WEEK - NOT_DUE_FOR))
        record = SecretRecord(access_token=f"placeholder-{i}", token_id=f"00000000-0000-0000-0000-{i:012d}",
                              username=f"bench-{i}", scope="applied-permissions/groups:bench", url=url,
                              issued_at=issued, expires_at=issued + timedelta(days=30), target=f"t{i}")
        (directory / f"t{i}.json").write_text(record.dumps())


def write_config(path: Path, n: int, url: str) -> None:
    """The config as YAML (``.yaml``) or as JSON (``.json``: what a generator would write; YAML
    parsing alone takes ~3 s for 10,000 targets on this machine, JSON ~0.1 s)."""
    config = {"jfrog": {"url": url, "access_token_env": "JFROG_ADMIN_TOKEN"},
              "backends": {"local": {"type": "file", "directory": "./secrets"}},
              "daemon": {"sweep_interval": "7d", "max_workers": 8},
              "targets": [{"name": f"t{i}", "backend": "local", "token": {"groups": ["bench"], "expiry": "30d"},
                           "schedule": {"every": "7d"}} for i in range(n)]}
    if path.suffix == ".json":
        path.write_text(json.dumps(config))
        return
    lines = [f"jfrog: {{url: '{url}', access_token_env: JFROG_ADMIN_TOKEN}}",
             "backends: {local: {type: file, directory: ./secrets}}",
             "daemon: {sweep_interval: 7d, max_workers: 8}", "targets:"]
    lines += [f"  - {{name: t{i}, backend: local, token: {{groups: [bench], expiry: 30d}}, schedule: {{every: 7d}}}}"
              for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def proc_stat(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds used so far)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def logs(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def run(n: int, idle: float, emulator: EmulatorProcess, fmt: str, burst: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        config = tmpdir / f"rotator.{fmt}"
        write_config(config, n, emulator.url)
        # whole seconds: the record keeps times to the second
        due_at = datetime.fromtimestamp(int(time.time() + DUE_AFTER) + 1, timezone.utc)
        write_store(tmpdir / "secrets", n, emulator.url, due_at, burst)
        log_path = tmpdir / "daemon.log"
        env = {**os.environ, "JFROG_ADMIN_TOKEN": emulator.admin_token, "PYTHONPATH": str(ROOT)}
        spawn = time.time()
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "rotator", "daemon", "-c", str(config),
                                     "--log-format", "json"], stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            while not any(r.get("message", "").startswith("daemon started") for r in logs(log_path)):
                if proc.poll() is not None or time.time() - spawn > 120:
                    raise RuntimeError(log_path.read_text()[-2000:])
                time.sleep(0.05)
            started = next(r for r in logs(log_path) if r.get("message", "").startswith("daemon started"))
            start_s = _ts(started["ts"]) - spawn
            rss_start, _ = proc_stat(proc.pid)
            # the burst falls due at +15 s; wait (bounded) until it is through, then idle
            time.sleep(max(0.0, DUE_AFTER - (time.time() - spawn)))
            deadline = time.time() + 60 + burst * 0.5
            rotated = []
            while len(rotated) < burst and time.time() < deadline and proc.poll() is None:
                time.sleep(1.0)
                rotated = [r for r in logs(log_path) if r.get("message") == "rotation rotated"]
            _, cpu0 = proc_stat(proc.pid)
            time.sleep(idle)
            rss_idle, cpu1 = proc_stat(proc.pid)
            lags = [(_ts(r["ts"]) - r["duration"]) - due_at.timestamp() for r in rotated]
            ends = [_ts(r["ts"]) for r in rotated]
            burst_s = max(ends) - due_at.timestamp() if ends else float("nan")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {"n": n, "format": fmt, "start_s": start_s, "rss_start": rss_start, "rss_idle": rss_idle,
            "cpu_idle_pct": (cpu1 - cpu0) / idle * 100, "rotated": len(rotated), "burst": burst,
            "burst_s": burst_s, "per_s": len(rotated) / burst_s if rotated else float("nan"),
            "lag_p50": statistics.median(lags) if lags else float("nan"),
            "lag_p95": statistics.quantiles(lags, n=20)[18] if len(lags) > 1 else float("nan"),
            "lag_max": max(lags) if lags else float("nan")}


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--formats", default="json,yaml", help="config formats to measure")
    parser.add_argument("--burst", type=int, default=100, help="targets falling due together 15 s after start")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    with EmulatorProcess() as emulator:
        for n, fmt in ((int(c), f) for c in args.counts.split(",") for f in args.formats.split(",")):
            r = run(n, args.idle, emulator, fmt, args.burst)
            print(f"{r['n']:6} targets ({fmt}): start {r['start_s']:.2f} s, RSS {r['rss_start']:.0f} MB after start / "
                  f"{r['rss_idle']:.0f} MB idle, idle CPU {r['cpu_idle_pct']:.2f} % over {args.idle:.0f} s, "
                  f"{r['rotated']}/{r['burst']} due targets rotated in {r['burst_s']:.1f} s ({r['per_s']:.1f}/s), "
                  f"lag p50 {r['lag_p50'] * 1000:.0f} ms p95 {r['lag_p95'] * 1000:.0f} ms max {r['lag_max'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
