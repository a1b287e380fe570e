"""Build the deployment package of the rotation Lambda: ``make lambda-zip`` -> ``build/lambda.zip``.

Only what ``rotator.aws_lambda`` imports goes in: the project's modules are found by importing the
handler in a fresh interpreter and listing the ``rotator``/``backends`` modules it loaded (so no
emulator, CLI, daemon, config, Vault backend); third-party packages are ``requests`` and its
dependencies, installed by pip for the Lambda runtime (``--platform``/``--python-version``, wheels
only). boto3/botocore are not packaged: the Python runtimes of Lambda provide them, and the handler
uses nothing newer than what they ship. hvac, APScheduler, PyYAML and prometheus-client are
never needed by the handler and are not packaged.

    python deploy/aws/build_lambda_zip.py [--output build/lambda.zip] [--python-version 3.12]
                                          [--platform manylinux2014_x86_64]   # aarch64 for arm64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLER = "rotator.aws_lambda"
PROJECT_PACKAGES = ("rotator", "backends")
RUNTIME_REQUIREMENTS = ("requests>=2.31", "urllib3>=2.0")  # as in pyproject.toml
NEVER = ("hvac", "apscheduler", "yaml", "prometheus_client", "boto3", "botocore", "s3transfer")
# Fixed timestamps: the same sources give the same zip (and the same CodeSha256).
EPOCH = (1980, 1, 1, 0, 0, 0)


def handler_modules() -> list[Path]:
    """Files of the project modules that importing the handler loads, relative to the repository."""
    code = (f"import json, sys, {HANDLER}\n"
            "print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()\n"
            f"    if n.split('.')[0] in {PROJECT_PACKAGES!r} and getattr(m, '__file__', None))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return [Path(f).resolve().relative_to(ROOT) for f in json.loads(out)]


def install_dependencies(target: Path, python_version: str, platform: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), "--only-binary=:all:", "--implementation", "cp",
                    "--python-version", python_version, "--platform", platform, *RUNTIME_REQUIREMENTS],
                   check=True)


def add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes())


def build(output: Path, python_version: str, platform: str) -> list[str]:
    modules = handler_modules()
    names: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp) / "deps"
        install_dependencies(deps, python_version, platform)
        files = [(p, p.relative_to(deps).as_posix()) for p in sorted(deps.rglob("*")) if p.is_file()]
        files += [(ROOT / m, m.as_posix()) for m in modules]
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w") as archive:
            for path, name in files:
                top = name.split("/", 1)[0]
                if "__pycache__" in name or top == "bin" or top.split("-")[0].lower() in NEVER:
                    continue
                add(archive, path, name)
                names.append(name)
        partial.replace(output)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "lambda.zip")
    parser.add_argument("--python-version", default="3.12", help="the Lambda runtime's Python (default 3.12)")
    parser.add_argument("--platform", default="manylinux2014_x86_64",
                        help="wheel platform: manylinux2014_x86_64 (x86_64) or manylinux2014_aarch64 (arm64)")
    args = parser.parse_args(argv)
    names = build(args.output, args.python_version, args.platform)
    size = args.output.stat().st_size
    print(f"{args.output}: {len(names)} files, {size / 1024:.0f} KiB (handler: {HANDLER}.handler)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
