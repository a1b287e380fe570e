"""The command line's own wiring: what starting it loads, and check-config's offline credential check."""

from __future__ import annotations

from rotator.cli import run
from tests.fixtures.imports import modules_after_import

# Each command imports what it drives when it runs; `--help` and `jf atc` start without these.
NOT_AT_START_UP = ("requests", "yaml", "apscheduler", "cryptography", "boto3", "botocore", "hvac", "backends",
                   "rotator.jfrog", "rotator.engine", "rotator.config", "rotator.daemon", "rotator.triggers",
                   "rotator.emulator")


def test_importing_the_command_line_loads_no_command_machinery():
    loaded = modules_after_import("rotator.cli as m", check="assert callable(m.main) and callable(m.run)")
    assert sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in NOT_AT_START_UP)) == []


def test_check_config_offline_resolves_the_credentials_of_a_store_that_logs_in(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN_FOR_CHECK", "not-used-offline")
    monkeypatch.delenv("SECRET_ID_FOR_CHECK", raising=False)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text('jfrog: {url: "http://127.0.0.1:9", access_token_env: ADMIN_TOKEN_FOR_CHECK}\n'
                   "backends:\n"
                   '  v: {type: vault, url: "http://127.0.0.1:9", '
                   "auth: {method: approle, role_id: r1, secret_id_env: SECRET_ID_FOR_CHECK}}\n"
                   "targets: [{name: ci, backend: v, path: jfrog/ci, token: {username: ci}}]\n")
    assert run(["check-config", "-c", str(cfg)]) == 2
    assert "SECRET_ID_FOR_CHECK is not set" in capsys.readouterr().err
    monkeypatch.setenv("SECRET_ID_FOR_CHECK", "s")
    assert run(["check-config", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out.startswith(f"{cfg}: OK (1 backend(s), 1 target(s))")
