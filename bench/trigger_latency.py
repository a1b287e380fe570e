"""Vault-triggered renewal: detection-to-rotation latency, and the cost of the metadata poll.

1. With a 1 s reconcile interval, asks for a rotation N times each way (metadata flag, request
   object, HTTP trigger) with a requester token from deploy/vault's policy and measures the time
   until the new version is in Vault: p50 / p95.
2. For 1,000 targets, times reconcile passes over their metadata (one GET each, plus one LIST
   for requests) against OpenBao: requests/s and CPU of the daemon and of OpenBao.

    .venv/bin/python bench/trigger_latency.py [--trials 20] [--targets 1000]

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hvac  # noqa: E402
import requests  # noqa: E402
from _servers import ROOT, EmulatorProcess, OpenBaoServer  # noqa: E402

from rotator.core.target import Target  # noqa: E402
from rotator.core.token_spec import TokenSpec  # noqa: E402
from rotator.daemon import RotationDaemon  # noqa: E402
from rotator.engine import Engine  # noqa: E402
from rotator.jfrog import AccessClient  # noqa: E402

DEPLOY = ROOT / "deploy" / "vault"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_config(path: Path, emulator_url: str, vault_addr: str, paths: list[str]) -> None:
    config = {"jfrog": {"url": emulator_url, "access_token_env": "JFROG_ADMIN_TOKEN"},
              "daemon": {"listen": "127.0.0.1:0", "sweep_interval": "7d"},
              "backends": {"vault-main": {"type": "vault", "url": vault_addr, "reconcile_interval": "1s",
                                          "auth": {"method": "token", "token_env": "DAEMON_VAULT_TOKEN"}}},
              "targets": [{"name": f"t{i}", "backend": "vault-main", "path": p,
                           "token": {"groups": ["bench"], "expiry": "7d"}, "schedule": {"every": "6d"}}
                          for i, p in enumerate(paths)]}
    path.write_text(json.dumps(config))


def latency(kind: str, trials: int, daemon: RotationDaemon, root: hvac.Client, requester: str, path: str,
            target: str) -> list[float]:
    out = []
    for trial in range(trials):
        before = root.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")["data"]["current_version"]
        if kind == "http":
            time.sleep(5.1)  # the endpoint accepts one trigger per target every 5 s
        started = time.perf_counter()
        if kind == "flag":
            hvac.Client(url=root.url, token=requester).adapter.request(
                "PATCH", f"/v1/secret/metadata/{path}", headers={"Content-Type": "application/merge-patch+json"},
                data=json.dumps({"custom_metadata": {"rotate_requested": "true"}}))
        elif kind == "request":
            hvac.Client(url=root.url, token=requester).secrets.kv.v2.create_or_update_secret(
                f"jfrog-rotator-requests/{target}/r{trial}-{uuid.uuid4().hex[:6]}", secret={"reason": "bench"},
                cas=0, mount_point="secret")
        else:
            answer = requests.post(f"{daemon.ops.url}/v1/trigger/{target}", headers={"X-Vault-Token": requester},
                                   timeout=10)
            assert answer.status_code == 202, answer.text
        while root.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")["data"]["current_version"] == before:
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"{kind}: no rotation within 30 s")
            time.sleep(0.01)
        out.append(time.perf_counter() - started)
        time.sleep(0.3)
    return out


def seed(root: hvac.Client, emulator: EmulatorProcess, paths: list[str]) -> None:
    """A first token for every target, written by the engine itself (so metadata is complete)."""
    from backends.vault import AuthSettings, VaultBackend
    from rotator.core.options import SecretRef

    backend = VaultBackend("vault-main", url=root.url, kv_version=2,
                           auth=AuthSettings(token=SecretRef("root", inline=root.token)))
    client = AccessClient(emulator.url, access_token=emulator.admin_token, pool_size=16)
    engine = Engine(jfrog=client, backends={"vault-main": backend}, has_admin=True)
    for i, path in enumerate(paths):
        assert engine.rotate(Target(f"t{i}", "vault-main", path, TokenSpec(groups="bench", expiry=604800)))\
            .outcome == "rotated"
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    with EmulatorProcess() as emulator, OpenBaoServer() as bao, tempfile.TemporaryDirectory() as tmp:
        root = hvac.Client(url=bao.addr, token=bao.root_token)
        bao.write_policy("jfrog-rotator-daemon", (DEPLOY / "jfrog-rotator-daemon.hcl").read_text())
        bao.write_policy("jfrog-rotator-requester", (DEPLOY / "jfrog-rotator-requester.hcl").read_text())
        os.environ["DAEMON_VAULT_TOKEN"] = bao.create_token(["jfrog-rotator-daemon"], ttl="2h")
        os.environ["JFROG_ADMIN_TOKEN"] = emulator.admin_token
        requester = bao.create_token(["jfrog-rotator-requester"], ttl="2h")

        # 1. latency, one target
        one = [f"jfrog/latency-{uuid.uuid4().hex[:6]}"]
        seed(root, emulator, one)
        write_config(Path(tmp) / "one.json", emulator.url, bao.addr, one)
        daemon = RotationDaemon(str(Path(tmp) / "one.json"), listen="127.0.0.1:0").start()
        try:
            for kind in ("flag", "request", "http"):
                values = latency(kind, args.trials, daemon, root, requester, one[0], "t0")
                print(f"{kind:8} trigger -> new version in Vault, 1 s polling, {len(values)} trials: "
                      f"p50 {statistics.median(values) * 1000:.0f} ms  "
                      f"p95 {statistics.quantiles(values, n=20)[18] * 1000:.0f} ms  max {max(values) * 1000:.0f} ms")
        finally:
            daemon.stop()

        # 2. poll cost, many targets
        many = [f"jfrog/poll-{i}" for i in range(args.targets)]
        seed(root, emulator, many)
        write_config(Path(tmp) / "many.json", emulator.url, bao.addr, many)
        daemon = RotationDaemon(str(Path(tmp) / "many.json"))
        daemon.scheduler.start()  # no start(): time the reconcile passes alone, nothing else runs
        try:
            counted = {"n": 0}
            backend = daemon.config.backends["vault-main"]
            backend.client.adapter.session.hooks["response"].append(lambda r, *a, **k: counted.update(n=counted["n"] + 1))
            daemon.reconciler.reconcile_backend("vault-main")  # warm up
            counted["n"] = 0
            ours, theirs, wall = time.process_time(), cpu_seconds(bao.pid), time.perf_counter()
            asked = sum(daemon.reconciler.reconcile_backend("vault-main") for _ in range(args.passes))
            wall = time.perf_counter() - wall
            ours, theirs = time.process_time() - ours, cpu_seconds(bao.pid) - theirs
            print(f"poll of {args.targets} targets: {wall / args.passes:.2f} s per pass, {counted['n'] / args.passes:.0f} "
                  f"requests per pass, {counted['n'] / wall:.0f} requests/s; CPU per pass: daemon "
                  f"{ours / args.passes:.2f} s, OpenBao {theirs / args.passes:.2f} s; rotations asked: {asked}")
            print(f"  at reconcile_interval 30s that is {wall / args.passes / 30 * 100:.1f}% of the wall time and "
                  f"{(ours + theirs) / args.passes / 30 * 100:.1f}% of one core")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
