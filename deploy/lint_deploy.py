"""``make lint-deploy``: checkov on the deploy kit, offline, from its own virtualenv.

Scans the Dockerfile, every Kubernetes manifest as kustomize renders it (deploy/render_manifests.py)
plus the examples, and every CloudFormation template, with the settings and waivers of
deploy/checkov.yaml (each waiver says why). Fails on any failed check. The other checks of the kit
(schemas, cfn-lint, the systemd unit, the Vault scripts) are tests: tests/deploy/.

    python deploy/lint_deploy.py --checkov .venv-checkov/bin/checkov
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import render_manifests

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent


def cloudformation_templates() -> list[Path]:
    """Every YAML under deploy/ that is a CloudFormation (or SAM) template."""
    return sorted(p for p in DEPLOY.rglob("*.yaml") if "AWSTemplateFormatVersion:" in p.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable (of its own virtualenv)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jfrog-rotator-manifests-") as out:
        manifests = render_manifests.write_all(Path(out))
        files = [DEPLOY / "container" / "Dockerfile", *manifests, *cloudformation_templates()]
        command = [args.checkov, "--config-file", str(DEPLOY / "checkov.yaml"),
                   "--framework", "dockerfile", "kubernetes", "cloudformation", "secrets",
                   "--file", *map(str, files)]
        # No telemetry or version check: the run must work offline.
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_ENABLE_VERSION_CHECK": "False"}
        answer = subprocess.run(command, cwd=ROOT, env=env)
    print(f"lint-deploy: checkov on {len(files)} files ({len(manifests)} rendered manifests), "
          f"{'passed' if answer.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return answer.returncode


if __name__ == "__main__":
    sys.exit(main())
