"""The rotation Lambda: what importing the handler costs as shipped, and one warm 4-step rotation.

1. Import as shipped: ``make lambda-zip``'s builder makes the zip, which is unpacked like Lambda
   unpacks it (a directory nobody may write, ``PYTHONDONTWRITEBYTECODE=1``) once per layout; fresh
   processes of the runtime's own Python (the template's ``Runtime``) with the zip first on the path
   and boto3 from a compiled runtime directory (Lambda's /var/runtime) time ``import boto3, requests``
   and then ``import rotator.aws_lambda`` (wall time, and the process's CPU time, which a busy
   shared machine disturbs less); the second is what the handler adds (goal: <= 30 ms). Layouts,
   interleaved, median of ``--imports`` processes each: source only, the shipped bytecode, a warm
   bytecode cache, and two alternatives the builder did not choose (checked-hash pycs; sourceless
   pycs). Then, in the shipped layout, the costliest modules (``-X importtime``) and the time spent
   making dataclasses.
2. Against moto's server and the JFrog emulator (both on 127.0.0.1, in this process), one cold
   rotation (clients created) then ``--rotations`` warm ones, each createSecret -> setSecret ->
   testSecret -> finishSecret called as Secrets Manager calls them: wall time of the four steps, and
   the calls they make, counted on the handler's own clients: Secrets Manager calls by operation
   (botocore ``before-send`` events) and JFrog calls by request (goal: <= 12 calls).

    .venv/bin/python bench/lambda.py [--imports 11] [--layouts source,shipped,warm,checked,sourceless]
                                     [--rotations 5] [--no-rotation]
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
from _servers import MotoServer, dummy_aws_env  # noqa: E402

from rotator import aws_lambda  # noqa: E402
from rotator.emulator import Emulator  # noqa: E402
from tests.fixtures.lambda_harness import moto_config, tiny_zip  # noqa: E402
from tests.fixtures.lambda_zip import (  # noqa: E402
    IMPORT_PROBE,
    build_zip,
    extract,
    make_read_only,
    make_writable,
    runtime_env,
    runtime_packages,
)

STEPS = aws_lambda.STEPS


LAYOUTS = {
    "source": "source only (a zip without bytecode, read-only, as when the runtime's Python is absent)",
    "shipped": "shipped bytecode (make lambda-zip: unchecked-hash .pyc in __pycache__, read-only)",
    "warm": "warm bytecode cache (writable directory, .pyc written by a first import)",
    "checked": "checked-hash .pyc in __pycache__, read-only (alternative: reads and hashes each source)",
    "sourceless": "sourceless .pyc (compileall -b, no .py), read-only (alternative)",
}


def prepare_layouts(tmp: Path, archive: Path, python: str, with_bytecode: bool) -> dict[str, Path]:
    """The zip unpacked once per layout, as Lambda unpacks it into its read-only /var/task."""
    out = {"source": extract(archive, tmp / "source", bytecode=False)}
    warm = extract(archive, tmp / "warm", read_only=False, bytecode=False)
    out["warm"] = warm
    if with_bytecode:
        out["shipped"] = extract(archive, tmp / "shipped")
        for label, flags in (("checked", ["--invalidation-mode", "checked-hash"]), ("sourceless", ["-b"])):
            tree = extract(archive, tmp / label, read_only=False, bytecode=False)
            subprocess.run([python, "-m", "compileall", "-q", *flags, str(tree)], check=True)
            if label == "sourceless":
                for source in tree.rglob("*.py"):
                    source.unlink()
            make_read_only(tree)
            out[label] = tree
    return out


def probe_import(python: str, task: Path, runtime: Path, write_bytecode: bool = False,
                 flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([python, *flags, "-c", IMPORT_PROBE, "rotator.aws_lambda"], cwd=task.parent, check=True,
                          env=runtime_env(task, runtime, write_bytecode=write_bytecode), capture_output=True, text=True)


def self_times(stderr: str) -> dict[str, float]:
    """Self time (ms) of each module imported after ``requests``, from ``-X importtime``."""
    lines = stderr.splitlines()
    after = max(i for i, line in enumerate(lines) if line.rstrip().endswith("| requests"))
    times: dict[str, float] = {}
    for line in lines[after + 1:]:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[0].rsplit(":", 1)[-1].strip().isdigit():
            times[parts[2]] = times.get(parts[2], 0) + int(parts[0].rsplit(":", 1)[-1]) / 1000
    return times


def breakdown(python: str, task: Path, runtime: Path, runs: int) -> None:
    """Where the handler's import time goes, medians of ``runs`` processes: the costliest modules
    (``-X importtime`` self time) and the part spent making dataclasses."""
    modules: dict[str, list[float]] = collections.defaultdict(list)
    made, made_ms = [], []
    for _ in range(runs):
        for name, ms in self_times(probe_import(python, task, runtime, flags=("-X", "importtime")).stderr).items():
            modules[name].append(ms)
        answer = json.loads(subprocess.run([python, "-c", IMPORT_PROBE, "rotator.aws_lambda", "--dataclasses"],
                                           cwd=task.parent, env=runtime_env(task, runtime), capture_output=True,
                                           text=True, check=True).stdout)
        made.append(answer["dataclasses"])
        made_ms.append((answer["dataclass_ms"], answer["added_ms"]))
    top = sorted(((statistics.median(v), k) for k, v in modules.items()), reverse=True)[:8]
    print(f"  {len(modules)} modules imported after requests; most self time (-X importtime, median of {runs}): " +
          ", ".join(f"{name} {ms:.1f}" for ms, name in top))
    share = statistics.median(d / a for d, a in made_ms)
    print(f"  making its {statistics.median(made):.0f} dataclasses: {statistics.median(d for d, _ in made_ms):.1f} ms, "
          f"{share:.0%} of the handler's import (median of {runs}; generated methods are compiled at import, "
          "bytecode cannot hold them)")


def bench_imports(runs: int, layouts: list[str]) -> None:
    """``import rotator.aws_lambda`` on top of ``import boto3, requests``, from the built zip, by
    the runtime's own Python, in fresh processes: median of ``runs`` per layout, interleaved."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        built = build_zip(tmp / "lambda.zip")
        if built.returncode != 0:
            raise SystemExit(built.stderr)
        python = built.runtime_python
        if python is None:
            print(f"!! {built.stderr.strip()}\n!! so only the source-only layouts run, with {sys.executable}")
            python = sys.executable
            layouts = [x for x in layouts if x in ("source", "warm")]
        version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        runtime = runtime_packages(tmp / "runtime", copy=True)  # boto3 as the runtime has it: compiled
        subprocess.run([python, "-m", "compileall", "-q", str(runtime)], check=True)
        trees = prepare_layouts(tmp / "task", built.output, python, built.runtime_python is not None)
        try:
            probe_import(python, trees["warm"], runtime, write_bytecode=True)  # fills the warm layout's cache
            results: dict[str, list[dict]] = {x: [] for x in layouts}
            for run in range(runs):
                for label in layouts[run % len(layouts):] + layouts[:run % len(layouts)]:  # each first in turn
                    answer = probe_import(python, trees[label], runtime, write_bytecode=label == "warm")
                    results[label].append(json.loads(answer.stdout))
            print(f"import from the built zip ({built.output.stat().st_size / 1024:.0f} KiB) by Python {version} "
                  f"({python}); boto3 {boto3.__version__} from a compiled runtime directory; "
                  f"medians of {runs} fresh processes each")
            print("  layout      import boto3, requests | rotator.aws_lambda added (goal <= 30 ms): wall median "
                  "(min-max), CPU median")
            for label in layouts:
                base = statistics.median(r["baseline_ms"] for r in results[label])
                added = [r["added_ms"] for r in results[label]]
                cpu = statistics.median(r["added_cpu_ms"] for r in results[label])
                print(f"  {label:10} {base:6.1f} ms | {statistics.median(added):6.1f} ms ({min(added):5.1f}-{max(added):5.1f}), "
                      f"CPU {cpu:5.1f} ms  {LAYOUTS[label]}")
            if "source" in layouts and "shipped" in layouts:
                ratios = [statistics.median(r[key] for r in results["shipped"]) /
                          statistics.median(r[key] for r in results["source"]) for key in ("added_ms", "added_cpu_ms")]
                print(f"  shipped bytecode / source only: {ratios[0]:.2f} (wall), {ratios[1]:.2f} (CPU)")
            label = "shipped" if "shipped" in trees else "source"
            print(f"  in the {label} layout:")
            breakdown(python, trees[label], runtime, min(runs, 5))
        finally:
            for tree in trees.values():
                make_writable(tree)


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
    parser.add_argument("--imports", type=int, default=11, help="fresh processes per layout")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {','.join(LAYOUTS)}")
    parser.add_argument("--rotations", type=int, default=5)
    parser.add_argument("--no-rotation", action="store_true", help="only the import cost")
    args = parser.parse_args()
    layouts = [x for x in args.layouts.split(",") if x]
    if not set(layouts) <= set(LAYOUTS):
        parser.error(f"--layouts: unknown {sorted(set(layouts) - set(LAYOUTS))}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bench_imports(args.imports, layouts)
    if not args.no_rotation:
        bench_rotation(args.rotations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
