"""The Lambda adopts a secret it did not write (JFrog's own rotator Lambda's ``{"username",
"password"}``, a bare token) and rotates it in the shape it had, bookkeeping in the tags."""

from __future__ import annotations

import json

import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from rotator.aws_lambda import RotationSetupError
from rotator.core.shapes import find_token
from tests.fixtures.stores import retired_ids

SCOPE = "applied-permissions/groups:deployers"


@pytest.fixture
def tags(moto_server):
    backend = SecretsManagerBackend("check", endpoint_url=moto_server.url, region="us-east-1", timeout=10)
    yield lambda arn: backend.read_metadata(arn)
    backend.close()


def hand_made(harness, shape: str) -> tuple[str, dict, str]:
    token = harness.emulator.create_token("ci", scope=SCOPE, expires_in=14400, force_revocable=True)  # > 3 h
    text = {"username-password": json.dumps({"username": "ci", "password": token["access_token"], "team": "ci"}),
            "bare": token["access_token"]}[shape]
    return harness.secret_with(text), token, text


@pytest.mark.parametrize("shape", ["username-password", "bare"])
def test_the_lambda_adopts_a_secret_and_keeps_its_shape(harness, tags, shape):
    arn, old, _ = hand_made(harness, shape)
    harness.rotate(arn)
    value = harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    found = find_token(value)
    assert found.shape == shape and found.token != old["access_token"]
    assert harness.emulator.authenticates(found.token)
    if shape == "username-password":
        assert json.loads(value)["team"] == "ci" and json.loads(value)["username"] == "ci"
    meta = tags(arn)
    assert meta["generation"] == "1" and old["token_id"] in retired_ids(meta) and not meta.get("pending")
    assert harness.emulator.is_token_active(old["token_id"])  # after-next: the adopted token keeps working
    harness.rotate(arn)  # the next rotation rebuilds from the tags and revokes what is due
    again = find_token(harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    assert again.shape == shape and tags(arn)["generation"] == "2"
    assert tags(arn)["token_id"] != meta["token_id"] and harness.emulator.authenticates(again.token)


def test_a_secret_whose_token_is_dead_is_refused_and_left_untouched(harness):
    arn, old, text = hand_made(harness, "username-password")
    harness.admin.revoke_token(old["token_id"])
    token = harness.begin(arn)
    minted = harness.emulator.mint_count
    with pytest.raises(RotationSetupError, match="whose token does not work") as raised:
        harness.step(arn, token, "createSecret")
    assert "left untouched" in str(raised.value) and old["access_token"] not in str(raised.value)
    assert harness.emulator.mint_count == minted
    assert harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == text
