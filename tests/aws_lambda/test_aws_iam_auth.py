"""``JFROG_AUTH=aws-iam``: the function's own IAM role mints (``POST /access/api/v1/aws/token``), no
admin secret at all. The role's credentials are the made-up keys boto3 reads from the test
environment, as a Lambda reads its role's from its own (docs/aws-lambda.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rotator.aws_lambda.settings import LambdaSettings, RotationSetupError
from tests.fixtures.aws_keys import made_up_key_id

KEY_ID, SECRET_KEY = made_up_key_id("LAMBDA"), "made-up-secret-access-key-of-the-lambda-role"
ROLE = "arn:aws:iam::123456789012:role/jfrog-rotation"
AWS_TOKEN = "/access/api/v1/aws/token"
BASE = {"JFROG_URL": "https://acme.jfrog.io"}
ADMIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jfrog/admin"


@pytest.mark.parametrize("env, auth, minting", [
    ({}, "self", "self"),
    ({"JFROG_ADMIN_SECRET_ARN": ADMIN_ARN}, "admin-secret", "admin"),
    ({"JFROG_AUTH": "aws-iam"}, "aws-iam", "admin"),
    ({"JFROG_AUTH": "admin-secret", "JFROG_ADMIN_SECRET_ARN": ADMIN_ARN}, "admin-secret", "admin"),
    ({"JFROG_AUTH": "self"}, "self", "self"),
])
def test_jfrog_auth_and_its_default(env, auth, minting):
    settings = LambdaSettings.from_env({**BASE, **env})
    assert (settings.auth, settings.minting) == (auth, minting)


@pytest.mark.parametrize("env, message", [
    ({"JFROG_AUTH": "aws-iam", "JFROG_ADMIN_SECRET_ARN": ADMIN_ARN},
     "JFROG_AUTH is aws-iam but JFROG_ADMIN_SECRET_ARN is set"),
    ({"JFROG_AUTH": "self", "JFROG_ADMIN_SECRET_ARN": ADMIN_ARN}, "JFROG_AUTH is self but JFROG_ADMIN_SECRET_ARN is set"),
    ({"JFROG_AUTH": "admin-secret"}, "JFROG_AUTH is admin-secret but JFROG_ADMIN_SECRET_ARN is not set"),
    ({"JFROG_AUTH": "iam"}, "JFROG_AUTH must be one of aws-iam, admin-secret, self, not 'iam'"),
])
def test_contradictory_settings_are_refused_naming_the_variables(env, message):
    with pytest.raises(RotationSetupError) as failure:
        LambdaSettings.from_env({**BASE, **env})
    assert message in str(failure.value)


@pytest.fixture
def iam(harness, monkeypatch):
    """The harness with JFROG_AUTH=aws-iam: its role (the environment's keys) maps to an admin user."""
    monkeypatch.delenv("JFROG_ADMIN_SECRET_ARN")
    monkeypatch.setenv("JFROG_AUTH", "aws-iam")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    harness.emulator.create_user("lambda-minter", admin=True)
    harness.emulator.add_aws_identity(KEY_ID, SECRET_KEY, ROLE, "lambda-minter")
    harness.route_to_handler()
    return harness


def exchanges(emulator) -> int:
    return sum(1 for r in emulator.requests if r.path.split("?")[0] == AWS_TOKEN)


def test_rotations_mint_with_the_functions_role(iam):
    arn, seed = iam.seeded_secret(expires_in=4 * 3600)  # long enough for JFrog to keep it revocable by id
    first = iam.begin(arn)
    assert iam.failures == [] and iam.stages(arn)[first] == ["AWSCURRENT"]
    second = iam.begin(arn)
    assert iam.failures == [] and iam.holder(arn, "AWSPREVIOUS") == first and iam.holder(arn, "AWSCURRENT") == second
    record = iam.current(arn)
    assert record.generation == 3 and record.username == "ci" and iam.emulator.authenticates(record.access_token)
    assert not iam.emulator.is_token_active(seed.token_id)  # revoked after the next rotation, by the role's token
    assert exchanges(iam.emulator) == 1  # the container keeps the exchanged token for the next invocations


def test_the_role_bootstraps_an_empty_secret(iam):
    arn = iam.secret_with("{}")
    empty = iam.holder(arn, "AWSCURRENT")
    iam.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", RemoveFromVersionId=empty)
    first = iam.begin(arn)
    assert iam.failures == [] and iam.stages(arn)[first] == ["AWSCURRENT"]
    assert iam.emulator.authenticates(iam.current(arn).access_token)


def test_a_rejected_signature_fails_create_secret_and_mints_and_writes_nothing(iam, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-of-the-lambda-role")
    arn, seed = iam.seeded_secret()
    before = (iam.emulator.mint_count, iam.emulator.live_token_count())
    version = iam.begin(arn)
    (step, failure), = iam.failures
    assert step == "createSecret"
    assert f"AWS IAM token exchange failed (POST {AWS_TOKEN}?region=us-east-1): server response: 401" in str(failure)
    assert (iam.emulator.mint_count, iam.emulator.live_token_count()) == before
    assert iam.holder(arn, "AWSCURRENT") != version and iam.current(arn).token_id == seed.token_id
    with pytest.raises(iam.sm.exceptions.ResourceNotFoundException):
        iam.sm.get_secret_value(SecretId=arn, VersionId=version)
    for secret in ("not-the-secret-key-of-the-lambda-role", seed.access_token):
        assert secret not in str(failure) and secret not in caplog.text


def test_no_secret_of_the_role_in_any_log_line(iam, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    arn, _ = iam.seeded_secret()
    iam.begin(arn)
    assert iam.failures == []
    exchanged = [r for r in iam.emulator.requests if r.path.startswith(AWS_TOKEN)]
    secrets = [SECRET_KEY, iam.current(arn).access_token,
               *(r.headers["Authorization"].rpartition("Signature=")[2] for r in exchanged)]
    assert len(exchanged) == 1
    for secret in secrets:
        assert secret not in caplog.text


def test_the_sam_template_offers_the_iam_variant_with_the_admin_secret_optional():
    from cfnlint.decode.cfn_yaml import load

    template = load(str(Path(__file__).resolve().parents[2] / "deploy" / "aws" / "template.yaml"))
    auth = template["Parameters"]["JFrogAuth"]
    assert auth["AllowedValues"] == ["", "aws-iam", "admin-secret", "self"] and auth["Default"] == ""
    assert template["Parameters"]["AdminSecretArn"]["Default"] == ""
    function = next(r["Properties"] for r in template["Resources"].values()
                    if r["Type"] == "AWS::Serverless::Function")
    assert function["Environment"]["Variables"]["JFROG_AUTH"] == {"Ref": "JFrogAuth"}
    # Every value the parameter allows is one the Lambda accepts (empty: the default).
    for value in auth["AllowedValues"]:
        env = {**BASE, "JFROG_AUTH": value}
        if value == "admin-secret":
            env["JFROG_ADMIN_SECRET_ARN"] = ADMIN_ARN
        LambdaSettings.from_env(env)
