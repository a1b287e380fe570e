"""`jfrog-rotator rotate | status | sweep | check-config` end to end: real emulator, real stores."""

from __future__ import annotations

import json
import logging
import textwrap
import uuid

import hvac
import pytest

from rotator.cli import run
from rotator.core.record import SecretRecord
from tests.fixtures.moto_server import aws_env


@pytest.fixture
def env(monkeypatch, emulator, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    for name in ("ci", "bot"):
        emulator.create_user(name, groups=("deployers",))
    return emulator


def config_file(tmp_path, emulator, backends: str, targets: str, name="rotator.yaml"):
    def block(text: str) -> str:
        return textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")

    path = tmp_path / name
    path.write_text(f"jfrog:\n  url: {emulator.url}\n  access_token_env: JFROG_ADMIN_TOKEN\n"
                    f"backends:\n{block(backends)}\ntargets:\n{block(targets)}\n")
    return path


FILE_BACKEND = "local: {type: file, directory: ./secrets}"
TWO_TARGETS = """\
- name: ci
  backend: local
  token: {username: ci, groups: [deployers], expiry: 7d}
  overlap: 1h
- name: bot
  backend: local
  token: {username: bot, expiry: 1d}
  schedule: {every: 12h}
"""


def record(tmp_path, name) -> SecretRecord:
    return SecretRecord.loads((tmp_path / "secrets" / f"{name}.json").read_text())


def test_rotate_all_prints_one_line_per_target(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ci", "bot"]
    for name, line in zip(("ci", "bot"), lines):
        assert f"rotated (recreate) token {record(tmp_path, name).token_id} generation 1" in line
        assert env.authenticates(record(tmp_path, name).access_token)


def test_parallel_rotation_prints_results_in_the_configs_order(env, tmp_path, capsys):
    names = [f"t{i}" for i in range(6)]
    targets = "".join(f"- {{name: {n}, backend: local, token: {{username: ci, expiry: 7d}}}}\n" for n in names)
    cfg = config_file(tmp_path, env, FILE_BACKEND, targets)
    env.inject_fault("/access/api/v1/tokens/me", method="GET", status=None, stall=0.5)  # the first to verify is last
    assert run(["rotate", "-c", str(cfg), "--all", "--parallel", "8"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == names
    assert run(["rotate", "-c", str(cfg), "--all", "--parallel", "8", "--format", "json"]) == 0
    assert [r["target"] for r in json.loads(capsys.readouterr().out)] == names


def test_files_are_private(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    run(["rotate", "-c", str(cfg), "ci"])
    file = tmp_path / "secrets" / "ci.json"
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert oct(file.parent.stat().st_mode & 0o777) == "0o700"


def test_one_failing_target_does_not_stop_the_others(env, tmp_path, capsys):
    targets = TWO_TARGETS.replace("username: bot, expiry: 1d", "username: ghost, expiry: 1d")
    cfg = config_file(tmp_path, env, FILE_BACKEND, targets)
    assert run(["rotate", "-c", str(cfg), "--all", "--parallel", "2"]) == 1
    out = capsys.readouterr().out
    assert "ci: rotated (recreate)" in out
    assert "bot: FAILED bot: mint: create token failed (POST /access/api/v1/tokens): server response: 400" in out
    assert env.authenticates(record(tmp_path, "ci").access_token)
    assert not (tmp_path / "secrets" / "bot.json").exists()


def test_rotate_json_output(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    run(["rotate", "-c", str(cfg), "ci"])
    capsys.readouterr()
    assert run(["rotate", "-c", str(cfg), "ci", "--format", "json", "--reason", "ticket-42"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "rotated" and result["generation"] == 2 and result["reason"] == "ticket-42"
    assert result["token_id"] == record(tmp_path, "ci").token_id
    assert result["previous_token_id"] == record(tmp_path, "ci").retired[0].token_id


def test_dry_run_changes_nothing(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["rotate", "-c", str(cfg), "--all", "--dry-run"]) == 0
    assert "ci: would rotate (recreate); current token none (first token)" in capsys.readouterr().out
    assert env.mint_count == 0 and not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("argv,message", [
    (["rotate"], "name the targets to rotate, or give --all"),
    (["rotate", "nope"], "unknown target(s): nope (known: ci, bot)"),
    (["rotate", "ci", "--all"], "give target names or --all, not both"),
    (["status", "nope"], "unknown target(s): nope (known: ci, bot)"),
    (["rotate", "--all", "--parallel", "0"], "--parallel must be at least 1"),
])
def test_usage_errors_exit_2(env, tmp_path, capsys, argv, message):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run([argv[0], "-c", str(cfg), *argv[1:]]) == 2
    assert capsys.readouterr().err == f"[Error] {message}\n"
    assert env.mint_count == 0


def test_config_error_exits_2_naming_the_key(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS.replace("expiry: 7d", "expiry: forever"))
    assert run(["rotate", "-c", str(cfg), "--all"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"[Error] {cfg}: targets[0].token.expiry: must be a duration")


def test_missing_admin_token_env_exits_2(env, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JFROG_ADMIN_TOKEN")
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 2
    assert "environment variable JFROG_ADMIN_TOKEN is not set" in capsys.readouterr().err
    assert run(["check-config", "-c", str(cfg)]) == 2


def test_status_table_and_json(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    run(["rotate", "-c", str(cfg), "ci"])
    run(["rotate", "-c", str(cfg), "ci"])
    capsys.readouterr()
    assert run(["status", "-c", str(cfg)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TARGET", "STATE", "TOKEN_ID", "USERNAME", "ISSUED", "EXPIRES_IN", "NEXT_DUE",
                                "RETIRED", "LAST_ERROR"]
    assert lines[1].split()[:4] == ["ci", "ok", record(tmp_path, "ci").token_id, "ci"]
    assert lines[1].split()[5].startswith("6d23h") and lines[1].split()[7] == "1"
    assert lines[2].split()[:3] == ["bot", "missing", "-"]
    assert run(["status", "-c", str(cfg), "ci", "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["retired_waiting"] == 1 and status["generation"] == 2 and status["read_from"] == "record"
    assert 604700 < status["expires_in_seconds"] <= 604800


def test_sweep_revokes_due_retired_tokens(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS.replace("overlap: 1h", "overlap: 0s"))
    run(["rotate", "-c", str(cfg), "ci"])
    first = record(tmp_path, "ci").token_id
    env.inject_fault(f"/access/api/v1/tokens/{first}", method="DELETE", status=500, count=4)  # one call: 1 try + 3 retries
    run(["rotate", "-c", str(cfg), "ci"])  # revoking the old token fails: it stays listed
    assert [r.token_id for r in record(tmp_path, "ci").retired] == [first]
    capsys.readouterr()
    assert run(["sweep", "-c", str(cfg), "ci"]) == 0
    assert capsys.readouterr().out == "ci: revoked 1 retired, 0 orphan(s)\n"
    assert not env.is_token_active(first) and record(tmp_path, "ci").retired == ()


def test_sweep_all_lists_once_and_reads_only_targets_with_work(env, tmp_path, capsys, openbao, monkeypatch):
    suffix = uuid.uuid4().hex[:6]
    due, steady = f"jfrog/due-{suffix}", f"jfrog/steady-{suffix}"
    targets = (f"- {{name: due, backend: vault-main, path: {due}, token: {{username: ci, expiry: 7d}}, overlap: 0s}}\n"
               f"- {{name: steady, backend: vault-main, path: {steady}, token: {{username: bot, expiry: 7d}}, "
               "overlap: 0s}\n")
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    root_cfg = config_file(tmp_path, env, f"vault-main: {{type: vault, url: {openbao.addr}, kv_version: 2}}", targets)
    assert run(["rotate", "-c", str(root_cfg), "--all"]) == 0
    root = hvac.Client(url=openbao.addr, token=openbao.root_token)
    first = root.secrets.kv.v2.read_secret_version(due, mount_point="secret",
                                                   raise_on_deleted_version=True)["data"]["data"]["token_id"]
    env.inject_fault(f"/access/api/v1/tokens/{first}", method="DELETE", status=500, count=4)
    assert run(["rotate", "-c", str(root_cfg), "--all"]) == 0  # due keeps its old token listed and live
    # The sweep's token may read only the target with work: reading the other would fail.
    openbao.write_policy(f"sweep-{suffix}", f'path "secret/data/{due}" {{ capabilities = ["read"] }}\n'
                                            f'path "secret/metadata/{due}" {{ capabilities = ["read", "patch"] }}')
    monkeypatch.setenv("VAULT_TOKEN", openbao.create_token([f"sweep-{suffix}"]))
    env.clear_requests()
    capsys.readouterr()
    assert run(["sweep", "-c", str(root_cfg), "--all"]) == 0
    assert capsys.readouterr().out == "due: revoked 1 retired, 0 orphan(s)\nsteady: revoked 0 retired, 0 orphan(s)\n"
    assert not env.is_token_active(first)
    assert [r.query.get("description") for r in env.requests if r.method == "GET"] == [["jfrog-rotator:*"]]
    assert run(["sweep", "-c", str(root_cfg), "steady"]) == 1, "a named target is read whatever the list shows"
    assert "permission denied" in capsys.readouterr().out


def test_sweep_refuses_names_with_all(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["sweep", "-c", str(cfg), "--all", "ci"]) == 2
    assert "give target names or --all, not both" in capsys.readouterr().err
    assert not any(r.path.startswith("/access/api/v1/tokens") for r in env.requests)


def test_check_config_offline_and_online(env, tmp_path, capsys):
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["check-config", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{cfg}: OK (1 backend(s), 2 target(s))\n")
    assert "ci: recreate -> local:ci, 25% of the lifetime before expiry, overlap 3600s" in out
    assert run(["check-config", "-c", str(cfg), "--online"]) == 0
    out = capsys.readouterr().out
    assert f"jfrog ping: {env.url}: OK" in out and "jfrog token: admin token works" in out
    assert "backend local: file store" in out
    assert env.admin_token not in out


def test_check_config_online_reports_a_bad_admin_token(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", "not-a-token-" + "z" * 30)
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["check-config", "-c", str(cfg), "--online"]) == 1
    out = capsys.readouterr().out
    assert "jfrog token: FAILED server response: 401" in out and "z" * 30 not in out


def test_no_secret_in_output_or_logs(env, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    for argv in (["rotate", "--all"], ["rotate", "--all", "--format", "json"], ["status", "--format", "json"],
                 ["sweep"], ["check-config", "--online"]):
        run(["--debug", argv[0], "-c", str(cfg), *argv[1:]])
    captured = capsys.readouterr()
    for name in ("ci", "bot"):
        rec = record(tmp_path, name)
        for secret in (rec.access_token, env.admin_token):
            assert secret not in captured.out and secret not in captured.err and secret not in caplog.text


# -- Vault (OpenBao) and AWS (moto) through the CLI ------------------------------------------


def test_vault_approle_rotation_and_metadata_only_status(env, tmp_path, capsys, openbao, monkeypatch):
    path = f"jfrog/ci-{uuid.uuid4().hex[:6]}"
    openbao.enable_approle()
    openbao.write_policy("rotator-test", 'path "secret/data/jfrog/*" { capabilities = ["create", "read", "update"] }\n'
                                         'path "secret/metadata/jfrog/*" { capabilities = ["read", "patch", "list"] }')
    role_id, secret_id = openbao.make_approle("rotator-test", ["rotator-test"])
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    backend = f"""\
        vault-main:
          type: vault
          url: {openbao.addr}
          auth: {{method: approle, role_id: {role_id}, secret_id_env: VAULT_SECRET_ID}}
        """
    cfg = config_file(tmp_path, env, backend, f"- {{name: ci, backend: vault-main, path: {path}, "
                                               "token: {username: ci, groups: [deployers], expiry: 7d}}\n")
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().err
    stored = hvac.Client(url=openbao.addr, token=openbao.root_token).secrets.kv.v2.read_secret_version(
        path, mount_point="secret", raise_on_deleted_version=True)["data"]
    assert env.authenticates(stored["data"]["access_token"])
    assert stored["metadata"]["custom_metadata"]["token_id"] == stored["data"]["token_id"]
    # status needs nothing but metadata: a token that cannot read the secret is enough
    openbao.write_policy("meta-only", 'path "secret/metadata/jfrog/*" { capabilities = ["read"] }')
    meta_token = openbao.create_token(["meta-only"])
    monkeypatch.setenv("VAULT_TOKEN", meta_token)
    meta_cfg = config_file(tmp_path, env, f"vault-main: {{type: vault, url: {openbao.addr}}}",
                           f"- {{name: ci, backend: vault-main, path: {path}, token: {{username: ci, expiry: 7d}}}}\n",
                           name="meta.yaml")
    capsys.readouterr()
    assert run(["status", "-c", str(meta_cfg), "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["token_id"] == stored["data"]["token_id"] and status["read_from"] == "metadata"
    assert status["state"] == "ok" and status["username"] == "ci"


def test_vault_namespace_rotation(env, tmp_path, capsys, openbao, monkeypatch):
    namespace = f"team-{uuid.uuid4().hex[:6]}"
    openbao.create_namespace(namespace)
    openbao.enable_kv2("secret", namespace=namespace)
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    cfg = config_file(tmp_path, env, f"ns: {{type: vault, url: {openbao.addr}, namespace: {namespace}}}",
                      "- {name: ci, backend: ns, path: jfrog/ci, token: {username: ci, expiry: 7d}}\n")
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().err
    inside = hvac.Client(url=openbao.addr, token=openbao.root_token, namespace=namespace)
    data = inside.secrets.kv.v2.read_secret_version("jfrog/ci", mount_point="secret",
                                                     raise_on_deleted_version=True)["data"]["data"]
    assert env.authenticates(data["access_token"])
    root = hvac.Client(url=openbao.addr, token=openbao.root_token)
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("jfrog/ci", mount_point="secret", raise_on_deleted_version=True)


def test_aws_rotation_labels(env, tmp_path, capsys, moto_server, monkeypatch):
    aws_env(monkeypatch)
    name = f"jfrog/ci-{uuid.uuid4().hex[:6]}"
    cfg = config_file(tmp_path, env, f"aws: {{type: aws-secretsmanager, region: us-east-1, "
                                     f"endpoint_url: '{moto_server.url}'}}",
                      f"- {{name: ci, backend: aws, path: {name}, token: {{username: ci, expiry: 7d}}}}\n")
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_server.url)
    stages = client.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert sorted(map(sorted, stages.values())) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    current = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
    previous = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"])
    assert current["rotator"]["generation"] == 2 and env.authenticates(current["access_token"])
    assert current["rotator"]["retired"][0]["token_id"] == previous["token_id"]
    assert env.authenticates(previous["access_token"]), "the previous token works during the overlap"
    capsys.readouterr()
    assert run(["status", "-c", str(cfg), "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["token_id"] == current["token_id"] and status["retired_waiting"] == 1


def test_bulk_rotation_on_a_terminal_shows_a_progress_bar(env, tmp_path, capsys, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    cfg = config_file(tmp_path, env, FILE_BACKEND, TWO_TARGETS)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    assert "\r[###############...............] 1/2" in terminal.getvalue()
    assert terminal.getvalue().endswith("] 2/2\n")
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["ci", "bot"]
