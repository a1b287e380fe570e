"""The daemon with a fan-out target: an output that cannot be written is reported (``/status``,
``/metrics``) and synced once its store is back, without minting again (docs/daemon.md)."""

from __future__ import annotations

import json

import pytest
import requests

from rotator.daemon import target_job
from tests.fixtures.daemon import file_record, wait_until, write_config
from tests.fixtures.tcp_proxy import TcpProxy


@pytest.fixture
def vault_proxy(openbao):
    with TcpProxy("127.0.0.1", openbao.port) as proxy:
        yield proxy


def metric(url: str, name: str, **labels) -> float | None:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in requests.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return None


def test_an_output_that_was_down_is_synced_when_it_is_back(daemon_env, tmp_path, start_daemon, openbao, vault_proxy,
                                                           monkeypatch, make_store):
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.2)  # seconds-scale back-off for the test
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    backends = f"""\
    local: {{type: file, directory: ./secrets}}
    vault: {{type: vault, url: '{vault_proxy.url}', kv_version: 2, timeout: 1s}}
    """
    targets = """\
    - name: alpha
      backend: local
      token: {username: alpha, expiry: 1h}
      schedule: {every: 1h}
      overlap: 0s
      outputs:
        - {backend: vault, path: jfrog/alpha-docker, format: dockerconfigjson}
    """
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets, backends=backends)
    vault_proxy.refuse.set()  # Vault is down when the daemon starts
    daemon = start_daemon(cfg)
    url = daemon.ops.url
    output = "vault:jfrog/alpha-docker"
    wait_until(lambda: metric(url, "jfrog_rotator_output_in_sync", target="alpha", output=output) == 0, 15,
               what="the output reported behind")
    record = file_record(tmp_path, "alpha")
    assert record is not None and record.generation == 1 and daemon_env.authenticates(record.access_token)
    [status] = requests.get(url + "/status", timeout=5).json()
    assert [(o["output"], o["state"]) for o in status["outputs"]] == [("local:alpha", "in-sync"), (output, "error")]
    assert metric(url, "jfrog_rotator_rotations_total", result="failed", target="alpha") >= 1
    mints = daemon_env.mint_count

    vault_proxy.refuse.clear()
    wait_until(lambda: metric(url, "jfrog_rotator_output_in_sync", target="alpha", output=output) == 1, 15,
               what="the output synced")
    assert metric(url, "jfrog_rotator_rotations_total", result="synced", target="alpha") == 1
    assert daemon_env.mint_count == mints, "syncing mints nothing"
    docker = json.loads(make_store("vault-kv2").read("jfrog/alpha-docker").text)
    [entry] = docker["auths"].values()
    assert entry["password"] == file_record(tmp_path, "alpha").access_token == record.access_token
    [status] = requests.get(url + "/status", timeout=5).json()
    assert status["state"] == "ok" and [o["state"] for o in status["outputs"]] == ["in-sync", "in-sync"]
