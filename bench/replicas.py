"""Several daemon replicas on one config: mint waste, Vault requests per reconcile pass, failover.

Side by side in one run, each on a fresh set of Vault KV v2 targets that are all due at start
(no token yet):

* **one daemon** (no ``daemon.leader``): the baseline;
* **three daemons, no ``daemon.leader``** (every replica polls and rotates every target; the
  store's compare-and-set keeps them safe, the losers revoke what they minted);
* **three daemons with ``daemon.leader``** (one leader, checked lease and claim before each mint);
* **failover**: the leader of the last run is killed with SIGKILL; the time until a standby leads.

Every daemon is a ``jfrog-rotator daemon`` process; each talks to OpenBao through a counting
proxy of its own (tests/fixtures/http_counter.py), and to the JFrog emulator (its own process)
through another, so mints and Vault requests are counted outside the daemons. A *pass* is one
reconcile pass of the leader (one LIST of the request prefix); the Vault requests of all
replicas between passes are divided by the number of passes. Goals (issue 11): at most 1.1
tokens minted per rotation; at most 1.5x one daemon's Vault requests per pass.

    .venv/bin/python bench/replicas.py [--targets 300] [--ttl 6] [--reconcile 5] [--passes 3]

Everything runs on 127.0.0.1 and stops by itself (each wait is bounded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, EmulatorProcess, OpenBaoServer  # noqa: E402

from tests.fixtures.http_counter import CountingProxy  # noqa: E402

LEADER = "this replica is the leader now"
WAIT = 300.0  # no single wait of the bench is longer


class Daemon:
    """One ``jfrog-rotator daemon`` process with its own counting proxy before OpenBao."""

    def __init__(self, workdir: Path, name: str, vault: OpenBaoServer, jfrog_url: str, targets: list[str], *,
                 leader: dict | None, reconcile: int, env: dict[str, str]) -> None:
        self.name = name
        self.proxy = CountingProxy(vault.addr).start()
        config = {
            "jfrog": {"url": jfrog_url, "access_token_env": "JFROG_ADMIN_TOKEN"},
            "backends": {"vault": {"type": "vault", "url": self.proxy.url, "reconcile_interval": f"{reconcile}s",
                                   "auth": {"method": "token", "token_env": "BENCH_VAULT_TOKEN"}}},
            "daemon": {"sweep_interval": "1h", "max_workers": 4, **({"leader": leader} if leader else {})},
            "targets": [{"name": path.replace("/", "-"), "backend": "vault", "path": path,
                         "token": {"groups": "bench", "expiry": "4h"}, "schedule": {"every": "7d"}, "overlap": "1h"}
                        for path in targets],
        }
        self.config = workdir / f"{name}.json"
        self.config.write_text(json.dumps(config))
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "rotator", "daemon", "-c", str(self.config),
                                      "--log-format", "json", "--replica-id", name],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**env, "PYTHONPATH": str(ROOT)})

    def logs(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def leads(self) -> bool:
        return any(LEADER in r.get("message", "") for r in self.logs())

    def passes(self) -> list[int]:
        """Indexes into ``proxy.seen`` of this daemon's reconcile passes (one LIST each)."""
        return [n for n, s in enumerate(self.proxy.seen) if s.method == "LIST" and "jfrog-rotator-requests" in s.path]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proxy.stop()


def progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def wait_for(predicate, what: str, timeout: float = WAIT, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"gave up after {timeout:.0f}s waiting for {what}")


def rotated(vault: OpenBaoServer, paths: list[str]) -> int:
    """How many of ``paths`` hold a token (one metadata read each, straight to OpenBao)."""
    done = 0
    for path in paths:
        try:
            meta = vault.api("GET", f"secret/metadata/{path}")
        except RuntimeError:
            continue
        done += int((meta.get("data") or {}).get("current_version") or 0) >= 1
    return done


def generations(vault: OpenBaoServer, paths: list[str]) -> list[int]:
    out = []
    for path in paths:
        data = vault.api("GET", f"secret/data/{path}")["data"]["data"]
        out.append(int(data["rotator"]["generation"]))
    return out


def run_scenario(label: str, replicas: int, leader: bool, args, vault, jfrog_proxy, workdir, env) -> dict:
    run_id = uuid.uuid4().hex[:6]
    paths = [f"bench-replicas/{run_id}/t{i}" for i in range(args.targets)]
    lease = {"backend": "vault", "path": f"bench-replicas/{run_id}/leader", "ttl": f"{args.ttl}s"} if leader else None
    mints_before = sum(1 for s in jfrog_proxy.seen if s.method == "POST" and s.path == "/access/api/v1/tokens")
    started = time.monotonic()
    daemons = [Daemon(workdir, f"{run_id}-r{i}", vault, jfrog_proxy.url, paths, leader=lease,
                      reconcile=args.reconcile, env=env) for i in range(replicas)]
    try:
        wait_for(lambda: rotated(vault, paths) == len(paths), f"{label}: every target's first token", interval=1.0)
        all_rotated = time.monotonic() - started
        progress(f"{label}: every target has a token after {all_rotated:.1f}s")
        if leader:
            lead = wait_for(lambda: next((d for d in daemons if d.leads()), None), f"{label}: a leader")
        else:
            lead = daemons[0]
        # let every daemon finish what it was doing, then count whole passes of the leader
        time.sleep(args.reconcile)
        first = len(lead.passes())
        wait_for(lambda: len(lead.passes()) >= first + args.passes + 1, f"{label}: {args.passes} reconcile passes")
        progress(f"{label}: {args.passes} passes counted after {time.monotonic() - started:.1f}s")
        passes = lead.passes()[first:first + args.passes + 1]
        t0, t1 = lead.proxy.seen[passes[0]].at, lead.proxy.seen[passes[-1]].at
        requests = sum(1 for d in daemons for s in d.proxy.seen if t0 <= s.at < t1)
        mints = sum(1 for s in jfrog_proxy.seen if s.method == "POST" and s.path == "/access/api/v1/tokens") \
            - mints_before
        claims = sum(1 for d in daemons for s in d.proxy.seen if "/jfrog-rotator-claims/" in s.path)
        result = {
            "claims": claims,
            "label": label, "replicas": replicas, "targets": len(paths), "rotations": sum(generations(vault, paths)),
            "mints": mints, "first_tokens_s": all_rotated, "vault_per_pass": requests / args.passes,
            "leaders": sum(1 for d in daemons if d.leads()) if leader else replicas,
        }
        if leader:
            result["failover"] = failover(lead, [d for d in daemons if d is not lead], args)
        return result
    finally:
        for daemon in daemons:
            daemon.stop()


def failover(lead: Daemon, standbys: list[Daemon], args) -> dict:
    """SIGKILL the leader; seconds until a standby leads (by this process's clock)."""
    killed = time.monotonic()
    lead.proc.send_signal(signal.SIGKILL)
    lead.proc.wait()
    winner = wait_for(lambda: next((d for d in standbys if d.leads()), None), "a standby to take over",
                      timeout=args.ttl * 4 + 30, interval=0.02)
    took = time.monotonic() - killed
    return {"seconds": took, "by": winner.name, "bound": args.ttl + args.ttl / 3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--ttl", type=int, default=6, help="lease TTL, seconds (default 6)")
    parser.add_argument("--reconcile", type=int, default=5, help="reconcile_interval, seconds (default 5)")
    parser.add_argument("--passes", type=int, default=3, help="reconcile passes counted per run (default 3)")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.targets} Vault KV v2 targets due at start, lease ttl {args.ttl}s, "
          f"reconcile every {args.reconcile}s, {args.passes} passes counted")
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp, OpenBaoServer() as vault, \
            EmulatorProcess() as emulator:
        jfrog_proxy = CountingProxy(emulator.url).start()
        env = {**os.environ, "JFROG_ADMIN_TOKEN": emulator.admin_token, "BENCH_VAULT_TOKEN": vault.root_token}
        try:
            results = [run_scenario("1 daemon", 1, False, args, vault, jfrog_proxy, Path(tmp), env),
                       run_scenario("3 daemons, no daemon.leader", 3, False, args, vault, jfrog_proxy, Path(tmp), env),
                       run_scenario("3 daemons, daemon.leader", 3, True, args, vault, jfrog_proxy, Path(tmp), env)]
        finally:
            jfrog_proxy.stop()
    base = results[0]["vault_per_pass"]
    print()
    print("| run | rotations | tokens minted | tokens per rotation | first tokens in | Vault requests per pass "
          "| vs 1 daemon | claim requests per rotation |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {r['rotations']} | {r['mints']} | {r['mints'] / r['rotations']:.2f} "
              f"| {r['first_tokens_s']:.1f} s | {r['vault_per_pass']:.0f} | {r['vault_per_pass'] / base:.2f}x "
              f"| {r['claims'] / r['rotations']:.1f} |")
    fo = results[-1]["failover"]
    print(f"\nfailover after SIGKILL of the leader: {fo['seconds']:.2f} s until {fo['by']} led "
          f"(lease ttl {args.ttl}s; expected between ttl - ttl/3 and ttl + ttl/3 = {fo['bound']:.1f} s)")
    print("goals: <= 1.1 tokens per rotation; <= 1.5x one daemon's Vault requests per pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
