"""Vault-triggered renewal fixtures: policies from deploy/vault, a daemon with a fast reconcile."""

from __future__ import annotations

import uuid
from pathlib import Path

import hvac
import pytest

from tests.fixtures.daemon import write_config
from tests.fixtures.vault_root import root_client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "vault"


@pytest.fixture(scope="session")
def policies(openbao):
    """The shipped policies, loaded into the session's OpenBao."""
    openbao.write_policy("jfrog-rotator-daemon", (DEPLOY / "jfrog-rotator-daemon.hcl").read_text())
    openbao.write_policy("jfrog-rotator-requester", (DEPLOY / "jfrog-rotator-requester.hcl").read_text())
    return openbao


@pytest.fixture
def daemon_token(policies):
    return policies.create_token(["jfrog-rotator-daemon"], ttl="1h")


@pytest.fixture
def requester_token(policies):
    return policies.create_token(["jfrog-rotator-requester"], ttl="1h")


@pytest.fixture
def vault_setup(daemon_env, tmp_path, openbao, daemon_token, monkeypatch):
    """A config with one Vault target under jfrog/ (unique path), the daemon's own token from
    the shipped daemon policy; returns (config path, target path)."""
    monkeypatch.setenv("DAEMON_VAULT_TOKEN", daemon_token)
    path = f"jfrog/ci-{uuid.uuid4().hex[:8]}"
    clear_requests(openbao)  # requests are keyed by target name, and every test's target is "alpha"

    def make(*, schedule: str = "{every: 1h}", reconcile: str = "1s", extra_backend: str = "", expiry: str = "1h",
             name: str = "rotator.yaml"):
        backends = (f"vault-main: {{type: vault, url: '{openbao.addr}', reconcile_interval: {reconcile}, "
                    f"auth: {{method: token, token_env: DAEMON_VAULT_TOKEN}}{extra_backend}}}")
        targets = (f"- {{name: alpha, backend: vault-main, path: {path}, token: {{username: alpha, expiry: {expiry}}}, "
                   f"schedule: {schedule}, overlap: 0s}}")
        return write_config(tmp_path / name, daemon_env, targets, backends=backends)

    make.path = path
    return make


def clear_requests(openbao) -> None:
    client = root_client(openbao)
    try:
        targets = client.secrets.kv.v2.list_secrets("jfrog-rotator-requests", mount_point="secret")["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return
    for target in targets:
        for request in client.secrets.kv.v2.list_secrets(f"jfrog-rotator-requests/{target}",
                                                          mount_point="secret")["data"]["keys"]:
            client.secrets.kv.v2.delete_metadata_and_all_versions(f"jfrog-rotator-requests/{target}{request}",
                                                                  mount_point="secret")
