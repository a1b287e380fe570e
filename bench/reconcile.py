"""The Vault reconcile pass: daemon CPU per target per pass, wall time per pass, Vault requests.

For 1,000 and 10,000 Vault KV v2 targets (records and custom_metadata seeded straight into
OpenBao, as the rotator writes them, none near expiry), runs the daemon's reconcile pass
(``VaultReconciler.reconcile_backend``: one LIST of the request prefix, one metadata GET per
target, ``READERS`` at a time) a few times in this process and measures the CPU this process used (the daemon's share)
and OpenBao's. Beside it, in the same run, the same metadata GETs made through hvac's
``read_secret_metadata`` (how every hot call was made before the lean path), so the two compare.
Goals: daemon CPU <= 0.7 ms per target per pass, a 10,000-target pass <= 10 s.

    .venv/bin/python bench/reconcile.py [--counts 1000,10000] [--passes 3]

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hvac  # noqa: E402
import requests  # noqa: E402
from _servers import OpenBaoServer  # noqa: E402

from rotator.core.http_env import pin_environment  # noqa: E402
from rotator.core.record import SecretRecord  # noqa: E402
from rotator.daemon import RotationDaemon  # noqa: E402
from rotator.engine.records import rotation_metadata  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(bao: OpenBaoServer, prefix: str, n: int) -> list[str]:
    """n records with the metadata a rotation writes beside them (8 writers at a time)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    paths = [f"{prefix}/t{i}" for i in range(n)]

    def one(i: int) -> None:
        session = sessions[i % len(sessions)]
        record = SecretRecord(access_token=f"placeholder-{i}", token_id=f"00000000-0000-0000-0000-{i:012d}",
                              username=f"bench-{i}", scope="applied-permissions/groups:bench", url="http://127.0.0.1:9",
                              issued_at=now, expires_at=now + timedelta(days=30), target=f"t{i}")
        answer = session.post(f"{bao.addr}/v1/secret/data/{paths[i]}", json={"data": record.to_json()}, timeout=30)
        answer.raise_for_status()
        meta = {k: v for k, v in rotation_metadata(record, reason="seed", now=now).items() if v}
        meta["rotator_version"] = str(answer.json()["data"]["version"])
        session.patch(f"{bao.addr}/v1/secret/metadata/{paths[i]}", data=json.dumps({"custom_metadata": meta}),
                      headers={"Content-Type": "application/merge-patch+json"}, timeout=30).raise_for_status()

    sessions = []
    for _ in range(8):
        session = requests.Session()
        session.trust_env = False
        session.headers["X-Vault-Token"] = bao.root_token
        sessions.append(session)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return paths


def write_config(path: Path, vault_addr: str, paths: list[str]) -> None:
    config = {"jfrog": {"url": "http://127.0.0.1:9", "access_token_env": "JFROG_ADMIN_TOKEN"},
              "daemon": {"sweep_interval": "7d"},
              "backends": {"vault-main": {"type": "vault", "url": vault_addr, "kv_version": 2,
                                          "reconcile_interval": "1h",
                                          "auth": {"method": "token", "token_env": "DAEMON_VAULT_TOKEN"}}},
              "targets": [{"name": f"t{i}", "backend": "vault-main", "path": p,
                           "token": {"groups": ["bench"], "expiry": "30d"}, "schedule": {"every": "29d"}}
                          for i, p in enumerate(paths)]}
    path.write_text(json.dumps(config))


def measure(bao: OpenBaoServer, n: int, passes: int, tmp: Path) -> dict:
    paths = seed(bao, f"jfrog/reconcile-{n}", n)
    write_config(tmp / f"reconcile-{n}.json", bao.addr, paths)
    daemon = RotationDaemon(str(tmp / f"reconcile-{n}.json"))  # not started: nothing but the passes runs
    try:
        backend = daemon.config.backends["vault-main"]
        counted = {"n": 0}
        pool = backend.transport.lean(backend.client).pool
        original = pool.urlopen

        def counting(*args, **kwargs):
            counted["n"] += 1
            return original(*args, **kwargs)

        pool.urlopen = counting  # type: ignore[method-assign]
        asked = daemon.reconciler.reconcile_backend("vault-main")  # warm up (login, connections)
        counted["n"] = 0
        ours, theirs, wall = time.process_time(), cpu_seconds(bao.pid), time.perf_counter()
        for _ in range(passes):
            asked += daemon.reconciler.reconcile_backend("vault-main")
        wall = (time.perf_counter() - wall) / passes
        ours, theirs = (time.process_time() - ours) / passes, (cpu_seconds(bao.pid) - theirs) / passes
        requests_per_pass = counted["n"] / passes  # hvac's LIST of the request prefix uses the same pool
    finally:
        daemon.stop()

    client = hvac.Client(url=bao.addr, token=bao.root_token)  # the hot call as hvac makes it
    pin_environment(client.adapter.session, bao.addr)
    for path in paths[:50]:
        client.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")
    hvac_cpu, hvac_wall = time.process_time(), time.perf_counter()
    for path in paths:
        client.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")
    hvac_cpu, hvac_wall = time.process_time() - hvac_cpu, time.perf_counter() - hvac_wall
    client.adapter.close()
    return {"n": n, "wall": wall, "cpu_ms": ours / n * 1000, "bao_ms": theirs / n * 1000,
            "requests": requests_per_pass, "asked": asked,
            "hvac_cpu_ms": hvac_cpu / n * 1000, "hvac_wall": hvac_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d}")
    with OpenBaoServer() as bao, tempfile.TemporaryDirectory() as tmp:
        os.environ["DAEMON_VAULT_TOKEN"] = bao.root_token
        os.environ.setdefault("JFROG_ADMIN_TOKEN", "bench-" + "x" * 24)
        for n in (int(c) for c in args.counts.split(",")):
            r = measure(bao, n, args.passes, Path(tmp))
            print(f"{n:6} targets: pass {r['wall']:.2f} s, {r['requests']:.0f} requests per pass; CPU per target per "
                  f"pass: daemon {r['cpu_ms']:.3f} ms (goal <= 0.7), OpenBao {r['bao_ms']:.3f} ms; "
                  f"rotations asked {r['asked']}")
            print(f"{n:6} targets: the same GETs through hvac's read_secret_metadata: {r['hvac_cpu_ms']:.3f} ms CPU "
                  f"per target, {r['hvac_wall']:.2f} s  (lean/hvac CPU {r['cpu_ms'] / r['hvac_cpu_ms']:.2f})")


if __name__ == "__main__":
    main()
