"""``JFROG_FORMAT``: the Lambda writes the shape the secret's consumers read, with the record's
bookkeeping in the secret's tags, and refuses a bad format setting before anything is minted or
written (docs/aws-lambda.md, "Consumer formats")."""

from __future__ import annotations

import json
import uuid

import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from rotator.aws_lambda import RotationFailed, RotationSetupError
from rotator.core.shapes import find_token, registry_hosts
from tests.fixtures.consumers import docker_credentials, npmrc_template, token_as_read
from tests.fixtures.lambda_harness import placeholder_for_empty_secret
from tests.fixtures.stores import retired_ids

FORMATS = ("record", "token", "dockerconfigjson", "username-password", "env", "template")


@pytest.fixture
def tags(moto_server):
    backend = SecretsManagerBackend("check", endpoint_url=moto_server.url, region="us-east-1", timeout=10)
    yield backend.read_metadata
    backend.close()


def use_format(harness, fmt: str, **extra: str) -> str:
    """Set ``JFROG_FORMAT`` (and the template it needs); returns the registry host consumers use."""
    registry = registry_hosts(harness.emulator.url)[0]
    harness.monkeypatch.setenv("JFROG_FORMAT", fmt)
    if fmt == "template":
        harness.monkeypatch.setenv("JFROG_TEMPLATE", npmrc_template(registry))
    for name, value in extra.items():
        harness.monkeypatch.setenv(name, value)
    return registry


def current_text(harness, arn: str) -> str:
    return harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_written_and_rotated_again_with_the_bookkeeping_in_tags(harness, tags, fmt):
    arn, seed = harness.seeded_secret()  # a record secret: the format takes over on the next rotation
    registry = use_format(harness, fmt)
    harness.rotate(arn)
    first = current_text(harness, arn)
    token = token_as_read(fmt, first, url=harness.emulator.url, registry=registry, username="ci")
    assert harness.emulator.authenticates(token) and token != seed.access_token
    meta = tags(arn)
    assert meta["generation"] == "2" and meta["target"] == seed.target and not meta.get("pending")
    assert seed.token_id in retired_ids(meta) and harness.emulator.is_token_active(seed.token_id)
    first_id = meta["token_id"]

    harness.rotate(arn)  # rebuilt from the value and its tags: after-next revokes the seed now
    again = current_text(harness, arn)
    newer = token_as_read(fmt, again, url=harness.emulator.url, registry=registry, username="ci")
    assert harness.emulator.authenticates(newer) and newer != token
    meta = tags(arn)
    assert meta["generation"] == "3" and first_id in retired_ids(meta) and meta["token_id"] != first_id
    assert not harness.emulator.is_token_active(seed.token_id), "after-next revoked the token two back"
    assert harness.emulator.is_token_active(first_id)
    assert harness.live(seed.target) == 2  # current and previous: no orphan was left
    if fmt != "record":
        assert "rotator" not in again  # the bookkeeping is in the tags, not in what consumers read


def test_the_first_token_of_an_empty_secret_is_written_in_the_format(harness, tags):
    host = registry_hosts(harness.emulator.url)[0]
    registry = use_format(harness, "dockerconfigjson", JFROG_REGISTRY_HOSTS=f"{host}, docker.acme.example")
    name = harness.name("jfrog/pull")
    arn = harness.sm.create_secret(Name=name)["ARN"]
    token = str(uuid.uuid4())
    placeholder_for_empty_secret(name, token, harness.function_arn)
    harness.run_steps(arn, token)
    text = current_text(harness, arn)
    assert sorted(json.loads(text)["auths"]) == sorted([registry, "docker.acme.example"])
    user, password = docker_credentials(text, "docker.acme.example")
    assert user == "ci" and harness.emulator.authenticates(password)
    meta = tags(arn)
    assert meta["generation"] == "1" and meta["username"] == "ci" and harness.emulator.is_token_active(meta["token_id"])
    assert not meta.get("pending") and harness.emulator.mint_count == 1


def test_an_adopted_secret_takes_the_format_when_one_is_set(harness, tags):
    old = harness.emulator.create_token("ci", scope="applied-permissions/groups:deployers", expires_in=14400,
                                        force_revocable=True)
    arn = harness.secret_with(json.dumps({"username": "ci", "password": old["access_token"]}))
    use_format(harness, "token")
    harness.rotate(arn)
    text = current_text(harness, arn)
    assert find_token(text).shape == "bare" and harness.emulator.authenticates(text)
    meta = tags(arn)
    assert meta["generation"] == "1" and old["token_id"] in retired_ids(meta)


@pytest.mark.parametrize("env, message", [
    ({"JFROG_FORMAT": "yaml"}, "JFROG_FORMAT must be one of record, token, dockerconfigjson, username-password, env, "
                               "template, not 'yaml'"),
    ({"JFROG_FORMAT": "template"}, "JFROG_FORMAT=template needs JFROG_TEMPLATE"),
    ({"JFROG_TEMPLATE": "{access_token}"}, "JFROG_TEMPLATE needs JFROG_FORMAT=template"),
    ({"JFROG_FORMAT": "template", "JFROG_TEMPLATE": "token={password}"},
     "JFROG_TEMPLATE: unknown key 'password' (known: access_token, username, url, token_id, expires_at)"),
    ({"JFROG_FORMAT": "template", "JFROG_TEMPLATE": "token={access_token"}, "JFROG_TEMPLATE: expected '}'"),
    ({"JFROG_FORMAT": "token", "JFROG_REGISTRY_HOSTS": "acme.jfrog.io"},
     "JFROG_REGISTRY_HOSTS only applies to JFROG_FORMAT=dockerconfigjson"),
    ({"JFROG_FORMAT": "dockerconfigjson", "JFROG_REGISTRY_HOSTS": "https://acme.jfrog.io/v2"},
     "JFROG_REGISTRY_HOSTS must be registry host names separated by commas"),
])
def test_a_bad_format_setting_is_named_and_nothing_is_minted_or_written(harness, tags, env, message):
    arn, _ = harness.seeded_secret()
    harness.rotate(arn)  # tags of ours beside the value
    for name, value in env.items():
        harness.monkeypatch.setenv(name, value)
    token = harness.begin(arn)
    before_tags, before, minted = tags(arn), current_text(harness, arn), harness.emulator.mint_count
    with pytest.raises(RotationSetupError) as raised:
        harness.step(arn, token, "createSecret")
    assert message in str(raised.value)
    assert harness.emulator.mint_count == minted
    with pytest.raises(harness.sm.exceptions.ResourceNotFoundException):  # still the empty placeholder
        harness.sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    assert current_text(harness, arn) == before and tags(arn) == before_tags


def test_a_document_secret_without_room_for_its_tags_is_refused_before_minting(harness, tags):
    old = harness.emulator.create_token("ci", scope="applied-permissions/groups:deployers", expires_in=14400,
                                        force_revocable=True)
    arn = harness.sm.create_secret(Name=harness.name(), SecretString=old["access_token"],
                                   Tags=[{"Key": f"team:{i}", "Value": "x"} for i in range(45)])["ARN"]
    token = harness.begin(arn)
    with pytest.raises(RotationFailed) as raised:
        harness.step(arn, token, "createSecret")
    message = str(raised.value)
    assert message.startswith("createSecret: ") and "more than the 50 AWS allows: 45 of other tools or people" in message
    assert "nothing was minted" in message and old["access_token"] not in message
    assert harness.emulator.mint_count == 0 and not tags(arn).get("pending")
    assert current_text(harness, arn) == old["access_token"]
