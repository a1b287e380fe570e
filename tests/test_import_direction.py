"""The import direction of DESIGN.md: the engine sees only the store protocol, stores never see
the engine, and the Lambda handler stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_after_import(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=True)
    return set(json.loads(done.stdout))


def test_engine_imports_no_concrete_store_boto3_or_hvac():
    loaded = modules_after_import("rotator.engine")
    forbidden = {"boto3", "botocore", "hvac", "backends.vault", "backends.aws_secretsmanager", "backends.file",
                 "rotator.config", "rotator.daemon", "yaml", "apscheduler"}
    assert not forbidden & loaded, forbidden & loaded


def test_lambda_handler_imports_nothing_of_the_daemon():
    loaded = modules_after_import("rotator.aws_lambda")
    assert not {"hvac", "apscheduler", "yaml", "rotator.daemon", "rotator.config", "prometheus_client"} & loaded


def test_stores_never_import_the_engine_or_the_front_doors():
    for path in (ROOT / "backends").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        bad = {m for m in imported if m.split(".")[:2] in (["rotator", "engine"], ["rotator", "daemon"],
                                                            ["rotator", "cli"], ["rotator", "config"],
                                                            ["rotator", "aws_lambda"], ["rotator", "triggers"])}
        assert not bad, f"{path.name} imports {bad}"
