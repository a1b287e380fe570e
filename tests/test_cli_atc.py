"""`jfrog-rotator token create` / `atc` parity with `jf atc`: exact request bodies, exact stdout, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from rotator.cli import run

ADMIN_SCOPE = "applied-permissions/admin"


@pytest.fixture(autouse=True)
def users(emulator):
    """Identity tokens need existing users (https://jfrog.com/help/r/jfrog-rest-apis/create-token); group/admin scopes do not."""
    for name in ("ci", "ci-deployer", "bot", "deployer"):
        emulator.create_user(name)


def post_bodies(emulator) -> list[bytes]:
    return [r.body for r in emulator.requests if r.method == "POST" and r.path == "/access/api/v1/tokens"]


def atc(emulator, *extra: str, connection: bool = True) -> list[str]:
    base = ["token", "create"]
    if connection:
        base += ["--url", emulator.url, "--access-token", emulator.admin_token]
    return base + list(extra)


# Each row: flags, the exact body jf sends for them, and the exact stdout template
# (placeholders are the random values the emulator minted, read back from the output).
PARITY = [
    pytest.param(
        [],
        '{"refreshable":false,"include_reference_token":false}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="plain",
    ),
    pytest.param(
        ["CI-Deployer"],
        '{"refreshable":false,"include_reference_token":false,"username":"ci-deployer"}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="username-lowercased",
    ),
    pytest.param(
        ["--groups=readers,deployers", "--grant-admin", "ci"],
        '{"scope":"applied-permissions/groups:readers,deployers applied-permissions/admin",'
        '"refreshable":false,"include_reference_token":false,"username":"ci"}',
        '{{\n  "scope": "applied-permissions/groups:readers,deployers applied-permissions/admin",\n'
        '  "access_token": "{access_token}",\n  "expires_in": 31536000,\n  "token_type": "Bearer",\n'
        '  "token_id": "{token_id}"\n}}\n',
        id="groups-and-admin",
    ),
    pytest.param(
        ["--grant-admin=false"],
        '{"refreshable":false,"include_reference_token":false}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="grant-admin-false",
    ),
    pytest.param(
        ["--scope", "applied-permissions/groups:readers", "bot"],
        '{"scope":"applied-permissions/groups:readers","refreshable":false,"include_reference_token":false,'
        '"username":"bot"}',
        '{{\n  "scope": "applied-permissions/groups:readers",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="explicit-scope",
    ),
    pytest.param(
        ["--expiry=0", "--grant-admin"],
        '{"scope":"applied-permissions/admin","expires_in":0,"refreshable":false,"include_reference_token":false}',
        '{{\n  "scope": "applied-permissions/admin",\n  "access_token": "{access_token}",\n'
        '  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="non-expiring",
    ),
    pytest.param(
        ["--expiry", "3600", "--refreshable", "ci"],
        '{"expires_in":3600,"refreshable":true,"include_reference_token":false,"username":"ci"}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 3600,\n  "token_type": "Bearer",\n  "refresh_token": "{refresh_token}",\n'
        '  "token_id": "{token_id}"\n}}\n',
        id="expiry-refreshable",
    ),
    pytest.param(
        ["--reference", "--audience", "jfrt@* jfxr@*"],
        '{"refreshable":false,"audience":"jfrt@* jfxr@*","include_reference_token":true}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "reference_token": "{reference_token}",\n'
        '  "token_id": "{token_id}"\n}}\n',
        id="reference-audience",
    ),
    pytest.param(
        ["--description", "CI <deployer> & co", "--project", "proj1", "--refreshable=false"],
        '{"refreshable":false,"include_reference_token":false,"project_key":"proj1",'
        '"description":"CI \\u003cdeployer\\u003e \\u0026 co"}',
        '{{\n  "scope": "applied-permissions/user",\n  "access_token": "{access_token}",\n'
        '  "expires_in": 31536000,\n  "token_type": "Bearer",\n  "token_id": "{token_id}"\n}}\n',
        id="description-escaped-project",
    ),
]


@pytest.mark.parametrize("flags,body,stdout", PARITY)
def test_token_create_parity(emulator, cli_env, capsys, flags, body, stdout):
    assert run(atc(emulator, *flags)) == 0
    out = capsys.readouterr().out
    values = json.loads(out)
    assert out == stdout.format(**values)
    assert post_bodies(emulator) == [body.encode()]
    assert emulator.is_token_active(values["token_id"])
    assert emulator.authenticates(values["access_token"])


def test_atc_alias_is_the_same_command(emulator, cli_env, capsys):
    assert run(["atc", "--url", emulator.url, "--access-token", emulator.admin_token, "ci"]) == 0
    assert json.loads(capsys.readouterr().out)["scope"] == "applied-permissions/user"
    assert post_bodies(emulator) == [b'{"refreshable":false,"include_reference_token":false,"username":"ci"}']


def test_table_format(emulator, cli_env, capsys):
    assert run(atc(emulator, "--format", "table", "--refreshable", "--reference", "ci")) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "FIELD            VALUE"
    assert [line.split()[0] for line in lines[1:]] == [
        "access_token", "token_id", "expires_in", "scope", "token_type", "refresh_token", "reference_token"]
    assert lines[1].endswith("...") and len(lines[1].split()[1]) == 43
    assert lines[3] == "expires_in       3.1536e+07"


def test_username_comes_from_the_configured_server(emulator, cli_env, capsys):
    cli_env.mkdir(parents=True)
    (cli_env / "jfrog-cli.conf.v6").write_text(json.dumps({"version": "6", "servers": [
        {"serverId": "emu", "url": emulator.url + "/", "accessToken": emulator.admin_token, "user": "Deployer",
         "isDefault": True}]}))
    assert run(["token", "create"]) == 0
    assert post_bodies(emulator) == [
        b'{"refreshable":false,"include_reference_token":false,"username":"deployer"}']


def test_server_id_flag_selects_the_server(emulator, cli_env, capsys):
    cli_env.mkdir(parents=True)
    (cli_env / "jfrog-cli.conf.v6").write_text(json.dumps({"version": "6", "servers": [
        {"serverId": "other", "url": "http://127.0.0.1:9", "accessToken": "y" * 30, "isDefault": True},
        {"serverId": "emu", "url": emulator.url, "accessToken": emulator.admin_token}]}))
    assert run(["token", "create", "--server-id", "emu"]) == 0
    assert len(post_bodies(emulator)) == 1


# -- errors: jf's text, exit code, nothing sent ------------------------------------------------


def assert_refused(emulator, capsys, argv, message, code=2):
    assert run(argv) == code
    captured = capsys.readouterr()
    assert captured.err == f"[Error] {message}\n"
    assert captured.out == ""
    assert post_bodies(emulator) == []


TOKEN_MANDATORY = "authenticating with access token is currently mandatory for creating access tokens"


def test_user_password_is_refused(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, ["token", "create", "--url", emulator.url, "--user", "admin",
                                      "--password", "pw-123456"], TOKEN_MANDATORY)


def test_ssh_key_config_is_refused(emulator, cli_env, capsys, tmp_path):
    cli_env.mkdir(parents=True)
    (cli_env / "jfrog-cli.conf.v6").write_text(json.dumps({"version": "6", "servers": [
        {"serverId": "ssh", "url": emulator.url, "sshKeyPath": str(tmp_path / "id_rsa"), "user": "u",
         "isDefault": True}]}))
    assert_refused(emulator, capsys, ["token", "create"], TOKEN_MANDATORY)


def test_missing_url_is_refused(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, ["token", "create", "--access-token", emulator.admin_token],
                   "no JFrog Platform URL specified, either via the --url flag or as part of the server configuration")


@pytest.mark.parametrize("flags", [["--groups", "g"], ["--grant-admin"], ["--grant-admin=false"]])
def test_scope_with_groups_or_admin_is_refused(emulator, cli_env, capsys, flags):
    assert_refused(emulator, capsys, atc(emulator, "--scope", "applied-permissions/user", *flags),
                   "Scope can either be provided explicitly with '--scope', or implicitly with '--grant-admin' "
                   "and '--groups'. ")


@pytest.mark.parametrize("value", ["1h", "abc", "1.5"])
def test_non_numeric_expiry_is_refused(emulator, cli_env, capsys, value):
    assert_refused(emulator, capsys, atc(emulator, f"--expiry={value}"),
                   "The '--expiry' option must have a numeric value. ")


def test_negative_expiry_is_refused(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, atc(emulator, "--expiry", "-5"), "The '--expiry' option must be non-negative. ")


def test_more_than_one_argument_is_refused(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, atc(emulator, "alice", "bob"), "Wrong number of arguments (2).")


def test_long_description_is_refused_before_sending(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, atc(emulator, "--description", "d" * 1025),
                   "--description is 1025 characters long; JFrog accepts at most 1024")


def test_bad_flag_value_is_a_usage_error(emulator, cli_env, capsys):
    assert_refused(emulator, capsys, atc(emulator, "--refreshable=maybe"),
                   "argument --refreshable: invalid boolean value 'maybe' (see 'jfrog-rotator token create --help')")


def test_remote_failure_exits_1_with_server_answer(emulator, cli_env, capsys):
    emulator.create_user("dev")
    dev = emulator.create_token("dev", expires_in=3600)["access_token"]
    assert run(["token", "create", "--url", emulator.url, "--access-token", dev, "--grant-admin"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("[Error] server response: 403 Forbidden\n{\n  \"errors\": [\n")
    assert dev not in captured.err


def test_explicit_format_json_prints_http_errors_as_json(emulator, cli_env, capsys):
    emulator.create_user("dev")
    dev = emulator.create_token("dev", expires_in=3600)["access_token"]
    assert run(["token", "create", "--url", emulator.url, "--access-token", dev, "--grant-admin",
                "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "403 Forbidden" and out["status_code"] == 403
    assert out["body"]["errors"][0]["code"] == "FORBIDDEN"


def test_unreachable_server_exits_1(cli_env, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run(["token", "create", "--url", f"http://127.0.0.1:{port}", "--access-token", "z" * 30]) == 1
    assert "cannot reach" in capsys.readouterr().err


# -- list and revoke --------------------------------------------------------------------------


def test_token_list_and_revoke(emulator, cli_env, capsys):
    minted = emulator.create_token("ci", scope="applied-permissions/user", description="jfrog-rotator:ci:r1")
    conn = ["--url", emulator.url, "--access-token", emulator.admin_token]
    assert run(["token", "list", *conn, "--description", "jfrog-rotator:ci:*"]) == 0
    listed = json.loads(capsys.readouterr().out)["tokens"]
    assert [t["token_id"] for t in listed] == [minted["token_id"]]
    assert run(["token", "revoke", *conn, minted["token_id"]]) == 0
    assert capsys.readouterr().out == f"Token {minted['token_id']} revoked.\n"
    assert run(["token", "revoke", *conn, minted["token_id"]]) == 0
    assert "already revoked" in capsys.readouterr().out
    assert not emulator.is_token_active(minted["token_id"])


def test_token_list_table(emulator, cli_env, capsys):
    emulator.create_token("ci", description="hello")
    assert run(["token", "list", "--url", emulator.url, "--access-token", emulator.admin_token,
                "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOKEN_ID", "SUBJECT", "ISSUED_AT", "EXPIRY", "REFRESHABLE", "DESCRIPTION"]
    assert any(line.rstrip().endswith("hello") for line in lines[1:])


# -- no secret leaks, real entry points -------------------------------------------------------


def test_no_token_in_logs_or_errors(emulator, cli_env, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=500, count=1)
    assert run(["--debug", *atc(emulator, "--refreshable", "--reference")]) == 0
    out = capsys.readouterr()
    values = json.loads(out.out)
    for secret in (emulator.admin_token, values["access_token"], values["refresh_token"], values["reference_token"]):
        assert secret not in out.err
        assert secret not in caplog.text
    assert run(["--debug", "token", "create", "--url", emulator.url, "--access-token", "bad-" + "q" * 40]) == 1
    err = capsys.readouterr().err
    assert "q" * 40 not in err and "server response: 401" in err


@pytest.mark.parametrize("entry", [[sys.executable, "-m", "rotator"], [str(__import__("pathlib").Path(
    sys.executable).parent / "jfrog-rotator")]])
def test_entry_points_work(emulator, cli_env, entry):
    done = subprocess.run(entry + ["atc", "--url", emulator.url, "--access-token", emulator.admin_token, "ci"],
                          capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "JFROG_CLI_LOG_TIMESTAMP": "OFF"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["token_type"] == "Bearer"
