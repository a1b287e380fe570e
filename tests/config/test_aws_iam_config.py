"""``jfrog.aws_iam``: the config key, and rotations minted with the AWS role end to end (file store,
the emulator, made-up AWS keys in the environment; docs/configuration.md)."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from rotator.cli import run
from rotator.config import AwsIamSettings, parse_config
from rotator.core.options import ConfigError
from rotator.core.record import SecretRecord
from tests.fixtures.aws_keys import made_up_key_id
from tests.fixtures.moto_server import aws_env

KEY_ID, SECRET_KEY = made_up_key_id("CONFIG"), "made-up-secret-access-key-for-config-tests"
ROLE = "arn:aws:iam::123456789012:role/jfrog-minter"
AWS_TOKEN = "/access/api/v1/aws/token"


def config_text(url: str, jfrog_extra: str, targets: str = "[{name: ci, backend: local, token: {username: ci}}]"):
    return (f"jfrog:\n  url: {url}\n{textwrap.indent(jfrog_extra, '  ')}\n"
            f"backends:\n  local: {{type: file, directory: ./secrets}}\ntargets: {targets}\n")


def parse(text: str, tmp_path: Path):
    return parse_config(text, tmp_path / "rotator.yaml")


def test_aws_iam_with_its_defaults(tmp_path):
    config = parse(config_text("http://127.0.0.1:9", "aws_iam: {}"), tmp_path)
    assert config.jfrog.aws_iam == AwsIamSettings(region=None, role_arn=None, expires_in=3600)
    assert config.jfrog.has_credential


def test_aws_iam_with_every_key(tmp_path):
    config = parse(config_text("http://127.0.0.1:9", f"aws_iam: {{region: eu-west-1, role_arn: '{ROLE}', "
                                                      "expires_in: 2h}"), tmp_path)
    assert config.jfrog.aws_iam == AwsIamSettings(region="eu-west-1", role_arn=ROLE, expires_in=7200)


@pytest.mark.parametrize("extra, key, message", [
    ("aws_iam: {}\naccess_token_env: JFROG_ADMIN_TOKEN", "jfrog.aws_iam", "give only one credential that mints"),
    ("aws_iam: {}\nserver_id: prod", "jfrog.aws_iam", "give only one credential that mints"),
    ("aws_iam: {region: Frankfurt}", "jfrog.aws_iam.region", "an AWS region like us-east-1"),
    ("aws_iam: {role_arn: jfrog-minter}", "jfrog.aws_iam.role_arn", "an IAM role ARN"),
    ("aws_iam: {expires_in: 0}", "jfrog.aws_iam.expires_in", "must be more than 0s"),
    ("aws_iam: {audience: x}", "jfrog.aws_iam.audience", "unknown key"),
])
def test_a_wrong_aws_iam_setting_names_its_key(tmp_path, extra, key, message):
    with pytest.raises(ConfigError) as failure:
        parse(config_text("http://127.0.0.1:9", extra), tmp_path)
    assert failure.value.key == key and message in str(failure.value)


@pytest.fixture
def aws_minter(emulator, monkeypatch, cli_env, tmp_path):
    """The emulator maps the made-up AWS keys of the environment to an admin user; a config uses them."""
    aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    emulator.create_user("minter", admin=True)
    emulator.create_user("ci", groups=("deployers",))
    emulator.add_aws_identity(KEY_ID, SECRET_KEY, ROLE, "minter")
    path = tmp_path / "rotator.yaml"
    path.write_text(config_text(emulator.url, "aws_iam: {region: us-east-1, expires_in: 4h}",
                                "[{name: ci, backend: local, token: {username: ci, groups: [deployers], "
                                "expiry: 1d}, overlap: 0s}]"))
    return path


def stored(tmp_path: Path) -> SecretRecord:
    return SecretRecord.loads((tmp_path / "secrets" / "ci.json").read_text())


def exchanges(emulator) -> int:
    return sum(1 for r in emulator.requests if r.path.split("?")[0] == AWS_TOKEN)


def test_rotations_mint_with_the_aws_role_and_exchange_once(emulator, aws_minter, tmp_path, capsys):
    assert run(["rotate", "-c", str(aws_minter), "ci"]) == 0
    first = stored(tmp_path)
    assert emulator.authenticates(first.access_token) and first.username == "ci"
    assert "rotated (recreate)" in capsys.readouterr().out
    assert exchanges(emulator) == 1
    assert run(["rotate", "-c", str(aws_minter), "ci"]) == 0  # the old token is revoked with the exchanged one
    assert stored(tmp_path).generation == 2 and not emulator.is_token_active(first.token_id)


def test_one_daemon_engine_exchanges_once_for_many_rotations(emulator, aws_minter, tmp_path):
    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    config = load_config(aws_minter)
    engine = build_engine(config)
    try:
        for _ in range(3):
            assert engine.rotate(config.target("ci")).outcome == "rotated"
    finally:
        engine.jfrog.close()
        config.close()
    assert exchanges(emulator) == 1 and stored(tmp_path).generation == 3


def test_a_rejected_signature_fails_the_rotation_naming_the_call_and_writes_nothing(
        emulator, aws_minter, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-the-emulator-knows")
    before = emulator.mint_count
    assert run(["rotate", "-c", str(aws_minter), "ci"]) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert f"AWS IAM token exchange failed (POST {AWS_TOKEN}?region=us-east-1): server response: 401" in text
    assert emulator.mint_count == before and emulator.live_token_count() == 0
    assert not (tmp_path / "secrets" / "ci.json").exists()
    assert "not-the-secret-key-the-emulator-knows" not in text


def test_an_unmapped_role_fails_the_rotation_with_403(emulator, aws_minter, tmp_path, capsys):
    emulator.add_aws_identity(KEY_ID, SECRET_KEY, ROLE, None)
    assert run(["rotate", "-c", str(aws_minter), "ci"]) == 1
    assert "is not mapped to a JFrog user" in capsys.readouterr().out
    assert emulator.live_token_count() == 0 and not (tmp_path / "secrets" / "ci.json").exists()


def test_check_config_online_exchanges_once_and_names_the_user(emulator, aws_minter, capsys):
    assert run(["check-config", "-c", str(aws_minter), "--online"]) == 0
    out = capsys.readouterr().out
    assert "jfrog aws_iam: AWS IAM exchange works: JFrog user minter (token id " in out
    assert exchanges(emulator) == 1
    assert "eyJ" not in out and SECRET_KEY not in out


def test_no_secret_in_any_output_or_log_line(emulator, aws_minter, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    for argv in (["rotate", "ci"], ["rotate", "ci"], ["sweep"], ["check-config", "--online"]):
        run(["--debug", argv[0], "-c", str(aws_minter), *argv[1:]])
    captured = capsys.readouterr()
    exchanged = [r for r in emulator.requests if r.path.startswith(AWS_TOKEN)]
    assert len(exchanged) == 4  # one per command: each command is a new process in real life
    secrets = [SECRET_KEY, stored(tmp_path).access_token,
               *(r.headers["Authorization"].rpartition("Signature=")[2] for r in exchanged)]
    for secret in secrets:
        assert secret not in captured.out and secret not in captured.err and secret not in caplog.text


def test_a_sweep_whose_exchange_is_refused_reports_it_and_keeps_the_record(
        emulator, aws_minter, tmp_path, monkeypatch):
    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    assert run(["rotate", "-c", str(aws_minter), "ci"]) == 0
    before = stored(tmp_path)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-the-emulator-knows")
    config = load_config(aws_minter)
    engine = build_engine(config)  # a new engine: nothing exchanged yet
    try:
        result = engine.sweep(config.target("ci"))
    finally:
        engine.jfrog.close()
        config.close()
    assert any(f"AWS IAM token exchange failed (POST {AWS_TOKEN}?region=us-east-1)" in e for e in result.errors)
    assert result.orphans_revoked == [] and stored(tmp_path) == before
    assert emulator.authenticates(before.access_token)
    assert not any("not-the-secret-key-the-emulator-knows" in e for e in result.errors)


def test_check_config_offline_needs_a_region_to_sign_for(emulator, aws_minter, capsys, monkeypatch):
    aws_minter.write_text(aws_minter.read_text().replace("region: us-east-1, ", ""))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert run(["check-config", "-c", str(aws_minter)]) == 2
    assert "jfrog.aws_iam.region: is required when AWS_REGION and AWS_DEFAULT_REGION are not set" in \
        capsys.readouterr().err
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert run(["check-config", "-c", str(aws_minter)]) == 0
    assert exchanges(emulator) == 0  # offline: nothing was exchanged
