"""The rotation Lambda: what importing the handler costs, and one warm 4-step rotation.

1. ``python -X importtime -c 'import rotator.aws_lambda'`` vs ``-c 'import boto3'`` in fresh
   processes (median of ``--imports`` runs of each): the handler's cumulative import time, boto3's,
   and what the handler adds on top of boto3 (goal: <= 30 ms).
2. Against moto's server and the JFrog emulator (both on 127.0.0.1, in this process), one cold
   rotation (clients created) then ``--rotations`` warm ones, each createSecret -> setSecret ->
   testSecret -> finishSecret called as Secrets Manager calls them: wall time of the four steps, and
   the calls they make, counted on the handler's own clients: Secrets Manager calls by operation
   (botocore ``before-send`` events) and JFrog calls by request (goal: <= 12 calls).

    .venv/bin/python bench/lambda.py [--imports 7] [--rotations 5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import boto3  # noqa: E402
from _servers import ROOT, MotoServer, dummy_aws_env  # noqa: E402

from rotator import aws_lambda  # noqa: E402
from rotator.emulator import Emulator  # noqa: E402
from tests.fixtures.lambda_harness import moto_config, tiny_zip  # noqa: E402

STEPS = aws_lambda.STEPS


def import_time_ms(module: str, pycache: str | None = None) -> dict[str, float]:
    """Cumulative import time of ``module`` in a fresh interpreter, from ``-X importtime``.

    ``pycache``: a bytecode cache directory (``-X pycache_prefix``); ``None`` compiles the project's
    modules from source on every import, as with ``PYTHONDONTWRITEBYTECODE=1`` or a Lambda zip
    without ``.pyc`` files (its directory is read-only, so nothing is cached between cold starts).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = ["-X", "importtime"]
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        flags += ["-X", f"pycache_prefix={pycache}"]
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    answer = subprocess.run([sys.executable, *flags, "-c", f"import {module}"], cwd=ROOT, capture_output=True,
                            text=True, check=True, env=env)
    times = {}
    for line in answer.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] in (module, "boto3", "requests"):
            times[parts[2]] = int(parts[1]) / 1000  # cumulative microseconds -> ms
    return times


def bench_imports(runs: int) -> None:
    with tempfile.TemporaryDirectory() as cache:
        import_time_ms("rotator.aws_lambda", cache)  # fills the bytecode cache
        for label, pycache in (("no bytecode cache", None), ("bytecode cached  ", cache)):
            handler, boto, requests_ = [], [], []
            for _ in range(runs):  # interleaved, so drift hits both alike
                boto.append(import_time_ms("boto3", pycache)["boto3"])
                times = import_time_ms("rotator.aws_lambda", pycache)
                handler.append(times["rotator.aws_lambda"])
                requests_.append(times["requests"])
            h, b = statistics.median(handler), statistics.median(boto)
            print(f"{label}: import boto3 {b:6.1f} ms | import rotator.aws_lambda {h:6.1f} ms | "
                  f"added {h - b:6.1f} ms (goal <= 30), of which requests {statistics.median(requests_):5.1f} ms "
                  f"(medians of {runs} fresh processes each)")


class Calls:
    def __init__(self) -> None:
        self.aws: collections.Counter[str] = collections.Counter()
        self.jfrog: collections.Counter[str] = collections.Counter()

    def clear(self) -> None:
        self.aws.clear()
        self.jfrog.clear()

    def on_aws(self, request, **kwargs) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        self.aws[target.rsplit(".", 1)[-1] or "?"] += 1

    def on_jfrog(self, response, *args, **kwargs) -> None:
        path = response.request.path_url.split("?", 1)[0]
        tail = path.rsplit("/", 1)[-1]
        if tail not in ("tokens", "me"):
            path = path.rsplit("/", 1)[0] + "/{id}"
        self.jfrog[f"{response.request.method} {path}"] += 1


def bench_rotation(rotations: int) -> None:
    dummy_aws_env()
    with MotoServer() as moto, Emulator() as emulator:
        moto_config(moto.url, use_docker=False)
        emulator.create_user("ci", groups=("deployers",))
        args = dict(endpoint_url=moto.url, region_name="us-east-1")
        sm = boto3.client("secretsmanager", **args)
        role = boto3.client("iam", **args).create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function = boto3.client("lambda", **args).create_function(
            FunctionName="bench", Runtime="python3.12", Role=role, Handler="rotator.aws_lambda.handler",
            Code={"ZipFile": tiny_zip()})["FunctionArn"]
        admin = sm.create_secret(Name="jfrog/admin", SecretString=emulator.admin_token)["ARN"]
        os.environ.update(SECRETS_MANAGER_ENDPOINT=moto.url, JFROG_URL=emulator.url, JFROG_ADMIN_SECRET_ARN=admin,
                          TOKEN_USERNAME="ci", TOKEN_GROUPS="deployers", TOKEN_EXPIRY="7200")
        arn = sm.create_secret(Name=f"jfrog/bench-{uuid.uuid4().hex[:6]}")["ARN"]
        calls = Calls()

        def rotate() -> float:
            token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=function,
                                     RotationRules={"AutomaticallyAfterDays": 1})["VersionId"]
            calls.clear()
            started = time.perf_counter()
            for step in STEPS:
                aws_lambda.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None)
            return (time.perf_counter() - started) * 1000

        # The first value (the Lambda's bootstrap needs an empty AWSPENDING version, which moto's
        # rotate_secret only makes on a secret that has one): store one through the daemon's path.
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps(_first_record(emulator)))
        cold = rotate()
        aws_lambda.container.current().secrets_manager.meta.events.register("before-send.secrets-manager", calls.on_aws)
        aws_lambda.container.current().jfrog_client.session.hooks["response"].append(calls.on_jfrog)
        warm = [rotate() for _ in range(rotations)]
        print(f"first rotation (clients made):   {cold:6.1f} ms")
        print(f"warm rotation, 4 steps:          {statistics.median(warm):6.1f} ms  "
              f"(median of {rotations}; min {min(warm):.1f}, max {max(warm):.1f})")
        aws, jfrog = sum(calls.aws.values()), sum(calls.jfrog.values())
        print(f"calls per warm rotation:         {aws + jfrog} = {aws} Secrets Manager + {jfrog} JFrog  (goal <= 12)")
        print("  Secrets Manager: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.aws.items())))
        print("  JFrog:           " + ", ".join(f"{k} {v}" for k, v in sorted(calls.jfrog.items())))


def _first_record(emulator: Emulator) -> dict:
    from datetime import datetime, timezone

    from rotator.core.tags import description_tag
    from rotator.engine import next_record
    from rotator.jfrog import TokenResponse

    answer = emulator.create_token("ci", scope="applied-permissions/groups:deployers", expires_in=7200,
                                   force_revocable=True, description=description_tag("bench", "seed"))
    return next_record(None, TokenResponse.from_json(answer), target="bench", url=emulator.url,
                       now=datetime.now(timezone.utc), retired=()).to_json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--imports", type=int, default=7)
    parser.add_argument("--rotations", type=int, default=5)
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    bench_imports(args.imports)
    bench_rotation(args.rotations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
