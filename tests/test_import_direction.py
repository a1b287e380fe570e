"""The import direction of DESIGN.md: the engine sees only the store protocol and stores never
see the engine (the Lambda's own import test is in tests/aws_lambda/test_deployment.py)."""

from __future__ import annotations

import ast

from tests.fixtures.imports import ROOT, modules_after_import


def test_engine_imports_no_concrete_store_boto3_or_hvac():
    loaded = modules_after_import("rotator.engine")
    forbidden = {"boto3", "botocore", "hvac", "backends.vault", "backends.aws_secretsmanager", "backends.file",
                 "rotator.config", "rotator.daemon", "yaml", "apscheduler"}
    assert not forbidden & loaded, forbidden & loaded


def test_stores_never_import_the_engine_or_the_front_doors():
    for path in (ROOT / "backends").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        bad = {m for m in imported if m.split(".")[:2] in (["rotator", "engine"], ["rotator", "daemon"],
                                                            ["rotator", "cli"], ["rotator", "config"],
                                                            ["rotator", "aws_lambda"], ["rotator", "triggers"])}
        assert not bad, f"{path.name} imports {bad}"
