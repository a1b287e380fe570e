"""Suite 5, secrets stay secret (docs/reliability.md): every secret issued during a case (the
emulator's tokens, refresh and reference tokens, the admin token, the OpenBao root token, every
Vault token the product logs in with and the AppRole secret id, the AWS keys) is searched for in
every text the product wrote: log records at every level, real ``jfrog-rotator --debug``
processes' stdout and stderr (succeeding and failing commands), errors and tracebacks forced at
each step, ``status`` (text and JSON), the daemon's endpoints, the Lambda's logs, ``token create``'s
stderr and the demo's output. Also TLS: a wrong CA and a wrong client certificate are refused with
a clear error, and verification is never off without a warning.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.harness import check_config
from tests.reliability.secrets_world import World, check_all, make_world

SUITE = "secrets"

TOKENS = "/access/api/v1/tokens"


@pytest.fixture
def world(tmp_path, emulator, openbao, moto_server, ledger, monkeypatch, cli_env) -> World:
    monkeypatch.chdir(tmp_path)
    return make_world(tmp_path, emulator, openbao, moto_server, ledger, monkeypatch)


def test_debug_processes_succeeding_and_failing_leak_nothing(world, emulator, ledger, tally):
    """Real ``jfrog-rotator --debug`` processes: rotate, status (text, JSON), sweep, check-config
    --online, and rotations failing at the mint, at the Vault login and at JFrog's answer."""
    world.cli("rotate", "--all", where="rotate first")
    world.cli("rotate", "--all", where="rotate again")  # refresh strategy: a refresh token used
    world.cli("status", where="status text")
    status = world.cli("status", "--format", "json", where="status json")
    assert {s["name"] if "name" in s else s["target"] for s in json.loads(status.stdout)} == {
        "file-ci", "approle-ci", "vtoken-ci", "aws-ci"}
    world.cli("sweep", "--all", where="sweep")
    world.cli("check-config", "--online", where="check-config --online")
    emulator.inject_fault(TOKENS, method="POST", status=403, count=20)
    failed = world.cli("rotate", "--all", expect=1, where="rotate, mint fails")
    assert "create token failed (POST /access/api/v1/tokens): server response: 403" in failed.stdout
    emulator.clear_faults()
    bad = world.cli("rotate", "approle-ci", expect=1, env={"VAULT_SECRET_ID": "not-the-secret-id-0"},
                    where="rotate, AppRole login refused")
    assert "login" in bad.stderr
    emulator.inject_fault(TOKENS, method="POST", status=400, count=5,
                          body=json.dumps({"errors": [{"message": f"echo {emulator.admin_token}"}]}))
    world.cli("rotate", "file-ci", expect=1, where="rotate, JFrog echoes the admin token")
    emulator.clear_faults()
    check_config(world.config, emulator, tally)
    ledger.emulator(emulator)
    tally.add(processes=9, faults=3)
    check_all(ledger, tally)
