"""The cost of meeting users where they are (issue 10): adopting a secret and writing another format.

For each store (file, Vault KV v2 on OpenBao, AWS Secrets Manager on moto), side by side in one run
and interleaved round by round, times one rotation of:

* **record**: a target that already holds our record (the steady state);
* **adopt**: the first rotation of a hand-made ``{"username", "password"}`` secret (READ finds no
  record, asks JFrog ``GET /tokens/me`` for its token, writes the shape back and the bookkeeping
  into the metadata);
* **format**: a ``format: dockerconfigjson`` target after its first rotation (READ rebuilds the
  record from the value and its metadata; every rotation writes the document and the metadata).

and counts HTTP calls per rotation (JFrog + store). Prints milliseconds (median, p90) and the
ratios to the record. The JFrog emulator runs in its own process; moto's server runs in this one.

    .venv/bin/python bench/adoption.py [--targets 30] [--rounds 3] [--stores file,vault,aws]

Everything runs on 127.0.0.1, is bounded by --targets x --rounds, and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import Counter, EmulatorProcess, MotoServer, OpenBaoServer, dummy_aws_env, make_store, percentile  # noqa: E402

from rotator.core.target import Target  # noqa: E402
from rotator.core.token_spec import TokenSpec  # noqa: E402
from rotator.engine import Engine  # noqa: E402
from rotator.jfrog import AccessClient  # noqa: E402
from tests.fixtures.stores import write_raw  # noqa: E402

SPEC = TokenSpec(groups="bench", expiry=86400)
KINDS = ("record", "adopt", "format")
STORE_NAMES = {"file": "file", "vault": "Vault KV v2", "aws": "AWS SM (moto)"}


def prepare(kind: str, engine: Engine, admin: AccessClient, store, count: int) -> list[Target]:
    """``count`` targets ready for the timed rotation of ``kind`` (untimed)."""
    run = uuid.uuid4().hex[:6]
    targets = [Target(name=f"{kind}-{run}-{i}", backend="store", path=f"bench/{run}/{kind}{i}", token=SPEC,
                      overlap=3600) for i in range(count)]
    if kind == "format":
        targets = [replace(t, format="dockerconfigjson") for t in targets]
    for target in targets:
        if kind == "adopt":  # a secret made by hand, as JFrog's own rotator Lambda leaves it
            token = admin.create_token(SPEC.request_body())
            write_raw(store, target.path, json.dumps({"username": "bench", "password": token.access_token}))
        else:
            assert engine.rotate(target).outcome == "rotated"
    return targets


def bench_store(kind: str, servers: dict, emulator: EmulatorProcess, tmp: str, count: int, rounds: int) -> dict:
    store, store_calls = make_store(kind, servers, tmp)
    client = AccessClient(emulator.url, access_token=emulator.admin_token)
    admin = AccessClient(emulator.url, access_token=emulator.admin_token)
    jfrog_calls = Counter()
    client.session.hooks["response"].append(jfrog_calls)
    engine = Engine(jfrog=client, backends={"store": store}, has_admin=True)
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    calls: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
    for _ in range(rounds):
        for what in KINDS:  # interleaved: each round times every kind once over fresh targets
            targets = prepare(what, engine, admin, store, count)
            jfrog_calls.n = store_calls.n = 0
            for target in targets:
                started = time.perf_counter()
                result = engine.rotate(target)
                times[what].append(time.perf_counter() - started)
                assert result.outcome == "rotated", result.error
            calls[what].append((jfrog_calls.n, store_calls.n))
    store.close()
    client.close()
    admin.close()
    out = {}
    for what in KINDS:
        jf = sum(c[0] for c in calls[what]) / (count * rounds)
        st = sum(c[1] for c in calls[what]) / (count * rounds)
        out[what] = {"p50": percentile(times[what], 50) * 1000, "p90": percentile(times[what], 90) * 1000,
                     "jfrog_calls": jf, "store_calls": st}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=30, help="targets per kind and round (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--stores", default="file,vault,aws")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(stores) - set(STORE_NAMES)
    if unknown or args.targets < 1 or args.rounds < 1:
        parser.error(f"stores are {', '.join(STORE_NAMES)}; --targets and --rounds at least 1")
    dummy_aws_env()
    servers: dict = {}
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}; {args.targets} targets x {args.rounds} rounds per kind")
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess() as emulator:
        try:
            if "vault" in stores:
                servers["vault"] = OpenBaoServer().start()
            if "aws" in stores:
                servers["aws"] = MotoServer().start()
            print("| store | record p50 / p90 | adopt p50 / p90 | adopt / record | format p50 / p90 | "
                  "format / record | calls: record, adopt, format (JFrog + store) |")
            print("|---|---|---|---|---|---|---|")
            for kind in stores:
                r = bench_store(kind, servers, emulator, tmp, args.targets, args.rounds)
                cells = [f"{r[k]['p50']:.1f} / {r[k]['p90']:.1f} ms" for k in KINDS]
                ratios = [f"{r[k]['p50'] / r['record']['p50']:.2f}x" for k in ("adopt", "format")]
                counted = ", ".join(f"{r[k]['jfrog_calls']:.0f} + {r[k]['store_calls']:.0f}" for k in KINDS)
                if kind == "file":
                    counted = ", ".join(f"{r[k]['jfrog_calls']:.0f} + disk" for k in KINDS)
                print(f"| {STORE_NAMES[kind]} | {cells[0]} | {cells[1]} | {ratios[0]} | {cells[2]} | {ratios[1]} | "
                      f"{counted} |", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
