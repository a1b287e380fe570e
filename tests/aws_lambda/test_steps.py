"""The four steps called directly, as Secrets Manager would, against moto's server and the emulator."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from rotator import aws_lambda
from rotator.aws_lambda import RotationFailed, RotationSetupError
from rotator.core.tags import description_tag
from rotator.core.target import target_name_for
from tests.fixtures.lambda_harness import STEPS, placeholder_for_empty_secret


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may clean up after it)."""


def on_call(harness, operation: str, action, hook: str = "before-call"):
    """Run ``action`` when the handler's client calls ``operation``; returns an unregister function."""
    client = harness.container.secrets_manager
    event = f"{hook}.secrets-manager.{operation}"
    unique = f"test-{uuid.uuid4().hex}"
    client.meta.events.register(event, action, unique_id=unique)
    return lambda: client.meta.events.unregister(event, unique_id=unique)


# -- the happy path, twice over ----------------------------------------------------------------
def test_every_step_twice_mints_once_and_promotes_the_new_version(harness):
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    for step in STEPS:
        harness.step(arn, token, step)
        harness.step(arn, token, step)
        assert harness.emulator.mint_count == 1, f"a retried {step} minted again"
    assert harness.stages(arn) == {old: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    record = harness.current(arn)
    assert record.generation == 2 and record.target == seed.target and record.username == "ci"
    assert record.scope == "applied-permissions/groups:deployers" and record.url == harness.emulator.url
    assert harness.emulator.authenticates(record.access_token)
    assert harness.admin.get_token(record.token_id)["description"] == description_tag(seed.target, token)
    # after-next: the demoted token keeps working, listed until (at most) its own expiry
    assert harness.emulator.is_token_active(seed.token_id)
    assert [r.token_id for r in record.retired] == [seed.token_id]
    assert record.retired[0].revoke_after == seed.expires_at


def test_a_crash_between_mint_and_put_is_retried_and_its_orphan_swept(harness):
    arn, seed = harness.seeded_secret()
    token = harness.begin(arn)
    harness.container.backend(aws_lambda.LambdaSettings.from_env(), arn)  # the handler's client exists now

    def crash(**kwargs):
        raise Crash()

    unregister = on_call(harness, "PutSecretValue", crash)
    try:
        with pytest.raises(Crash):
            harness.step(arn, token, "createSecret")
    finally:
        unregister()
    orphans = [t["token_id"] for t in harness.tagged(seed.target, token)]
    assert len(orphans) == 1 and harness.emulator.mint_count == 1
    assert harness.holder(arn, "AWSPENDING") == token and harness.stages(arn)[token] == ["AWSPENDING"]

    harness.run_steps(arn, token)  # Secrets Manager retries the rotation with the same token
    record = harness.current(arn)
    assert harness.emulator.mint_count == 2 and record.token_id != orphans[0]
    assert not harness.emulator.is_token_active(orphans[0]), "the first attempt's token was swept"
    assert harness.live(seed.target) == 2  # the new current and the previous (seed) token


def test_a_replay_after_success_does_nothing(harness, caplog):
    arn, _ = harness.seeded_secret()
    token = harness.rotate(arn)
    before = harness.stages(arn)
    caplog.clear()
    for step in STEPS:
        harness.step(arn, token, step)
    assert harness.stages(arn) == before and harness.emulator.mint_count == 1
    outcomes = [json.loads(r.getMessage())["outcome"] for r in caplog.records if r.name == "rotator.aws_lambda"]
    assert outcomes == ["already-current"] * 4


# -- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_mints_the_first_token_into_an_empty_secret(harness):
    name = harness.name("jfrog/first")
    arn = harness.sm.create_secret(Name=name)["ARN"]
    token = str(uuid.uuid4())
    placeholder_for_empty_secret(name, token, harness.function_arn)
    harness.run_steps(arn, token)
    assert harness.stages(arn) == {token: ["AWSCURRENT"]}
    record = harness.current(arn)
    assert record.generation == 1 and record.retired == () and record.username == "ci"
    assert record.scope == "applied-permissions/groups:deployers"
    assert record.target == target_name_for(name) and ":" not in record.target
    assert harness.emulator.authenticates(record.access_token) and harness.emulator.mint_count == 1


def test_testing_the_configuration_of_an_empty_secret_passes(harness):
    # CloudFormation's RotateImmediatelyOnUpdate: false runs testSecret alone.
    name = harness.name("jfrog/first")
    arn = harness.sm.create_secret(Name=name)["ARN"]
    token = str(uuid.uuid4())
    placeholder_for_empty_secret(name, token, harness.function_arn)
    harness.step(arn, token, "testSecret")
    assert harness.emulator.mint_count == 0 and harness.stages(arn) == {token: ["AWSPENDING"]}


def test_bootstrap_of_a_secret_whose_current_label_was_removed(harness):
    arn = harness.secret_with("placeholder, not a record")
    old = harness.holder(arn, "AWSCURRENT")
    harness.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", RemoveFromVersionId=old)
    token = harness.rotate(arn)
    assert harness.holder(arn, "AWSCURRENT") == token and harness.holder(arn, "AWSPENDING") is None
    assert harness.current(arn).generation == 1


def test_bootstrap_without_an_admin_secret_names_the_setting(harness, monkeypatch):
    monkeypatch.delenv("JFROG_ADMIN_SECRET_ARN")
    name = harness.name()
    arn = harness.sm.create_secret(Name=name)["ARN"]
    token = str(uuid.uuid4())
    placeholder_for_empty_secret(name, token, harness.function_arn)
    with pytest.raises(RotationSetupError, match="JFROG_ADMIN_SECRET_ARN"):
        harness.step(arn, token, "createSecret")
    assert harness.emulator.mint_count == 0


def test_without_an_admin_secret_the_current_token_mints_its_successor(harness, monkeypatch):
    monkeypatch.delenv("JFROG_ADMIN_SECRET_ARN")
    arn, seed = harness.seeded_secret(scope="applied-permissions/user")
    harness.rotate(arn)
    harness.rotate(arn)
    record = harness.current(arn)
    assert record.generation == 3 and record.username == "ci" and record.scope == "applied-permissions/user"
    assert not harness.emulator.is_token_active(seed.token_id)  # revoked by a user token (its own user's)
    assert harness.live(seed.target) == 2
    creators = {r.headers.get("Authorization") for r in harness.emulator.requests if r.method == "POST"}
    assert f"Bearer {harness.emulator.admin_token}" not in creators


# -- per-secret token options ---------------------------------------------------------------------
def test_rotator_token_in_the_record_overrides_the_environment(harness):
    arn, _ = harness.seeded_secret(token={"groups": ["readers"], "expiry": "5h", "description": "CI reader"})
    token = harness.rotate(arn)
    record = harness.current(arn)
    assert record.scope == "applied-permissions/groups:readers"
    assert (record.expires_at - record.issued_at) == timedelta(hours=5)
    assert record.rotator_extra["token"]["groups"] == ["readers"], "the overrides are kept for the next rotation"
    description = harness.admin.get_token(record.token_id)["description"]
    assert description == f"{description_tag(record.target, token)} CI reader"


def test_a_bad_override_names_the_record_key(harness):
    arn, _ = harness.seeded_secret(token={"expiry": "soon"})
    token = harness.begin(arn)
    with pytest.raises(RotationSetupError, match=r"rotator\.token\.expiry"):
        harness.step(arn, token, "createSecret")
    assert harness.emulator.mint_count == 0


# -- validation before dispatch -----------------------------------------------------------------
def test_a_secret_without_rotation_is_refused(harness):
    arn, _ = harness.seeded_secret()
    version = harness.holder(arn, "AWSCURRENT")
    with pytest.raises(RotationSetupError, match="not enabled for rotation"):
        harness.step(arn, version, "createSecret")


def test_a_token_that_is_no_version_of_the_secret_is_refused(harness):
    arn, _ = harness.seeded_secret()
    harness.begin(arn)
    stranger = str(uuid.uuid4())
    with pytest.raises(RotationSetupError, match=f"Secret version {stranger} has no stage for rotation"):
        harness.step(arn, stranger, "createSecret")


def test_a_version_that_is_not_pending_is_refused(harness):
    arn, _ = harness.seeded_secret()
    harness.rotate(arn)
    previous = harness.holder(arn, "AWSPREVIOUS")
    with pytest.raises(RotationSetupError, match="not set as AWSPENDING"):
        harness.step(arn, previous, "finishSecret")


@pytest.mark.parametrize("event, field", [
    ({"ClientRequestToken": "t" * 36, "Step": "createSecret"}, "SecretId"),
    ({"SecretId": "s", "Step": "createSecret"}, "ClientRequestToken"),
    ({"SecretId": "s", "ClientRequestToken": "t" * 36}, "Step"),
    ({"SecretId": "s\n", "ClientRequestToken": "t" * 36, "Step": "createSecret"}, "SecretId"),
    ({"SecretId": "s", "ClientRequestToken": "t\u00e9" * 18, "Step": "createSecret"}, "ClientRequestToken"),
    ({"SecretId": "s", "ClientRequestToken": "t" * 36, "Step": "createSecret", "RotationToken": 7}, "RotationToken"),
])
def test_missing_or_non_printable_event_fields_are_named(harness, event, field):
    with pytest.raises(RotationSetupError, match=f"event field {field} "):
        aws_lambda.handler(event, None)


def test_an_unknown_step_is_refused(harness):
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    with pytest.raises(RotationSetupError, match="event field Step is 'rotateSecret', not one of"):
        harness.step(arn, token, "rotateSecret")


@pytest.mark.parametrize("value, field", [
    ("{not json", "not valid JSON"),
    (json.dumps({"access_token": "x" * 40}), "'token_id'"),
    (json.dumps({"access_token": "x" * 40, "token_id": "t", "rotator": {"generation": -1}}), "rotator.generation"),
])
def test_a_malformed_current_record_is_reported_and_left_alone(harness, value, field):
    arn = harness.secret_with(value)
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    with pytest.raises(RotationSetupError, match="AWSCURRENT value of .* is not a usable record") as raised:
        harness.step(arn, token, "createSecret")
    assert field in str(raised.value)
    assert harness.emulator.mint_count == 0 and harness.holder(arn, "AWSCURRENT") == old


def test_a_record_for_another_platform_is_not_replaced(harness):
    arn, seed = harness.seeded_secret()
    elsewhere = harness.secret_with(seed.dumps().replace(harness.emulator.url, "https://other.jfrog.io"))
    token = harness.begin(elsewhere)
    with pytest.raises(RotationSetupError, match="JFROG_URL"):
        harness.step(elsewhere, token, "createSecret")
    assert harness.emulator.mint_count == 0


def test_settings_errors_name_the_variable(harness, monkeypatch):
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    monkeypatch.setenv("TOKEN_EXPIRY", "a week")
    with pytest.raises(RotationSetupError, match="TOKEN_EXPIRY"):
        harness.step(arn, token, "createSecret")
    monkeypatch.delenv("JFROG_URL")
    with pytest.raises(RotationSetupError, match="JFROG_URL is not set"):
        harness.step(arn, token, "createSecret")


# -- failures leave AWSCURRENT alone; a later rotation completes ---------------------------------
def test_a_failed_mint_leaves_current_and_a_later_rotation_completes(harness):
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    harness.emulator.inject_fault("/access/api/v1/tokens", method="POST", status=403)
    with pytest.raises(RotationFailed, match="createSecret: create token failed \\(POST /access/api/v1/tokens\\)"):
        harness.step(arn, token, "createSecret")
    assert harness.holder(arn, "AWSCURRENT") == old and harness.current(arn).token_id == seed.token_id
    later = harness.rotate(arn)
    assert harness.holder(arn, "AWSCURRENT") == later and harness.current(arn).generation == 2


def test_set_secret_refuses_a_pending_token_for_another_user(harness):
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    harness.emulator.create_user("intruder")
    other = harness.seed(seed.target, username="intruder")
    harness.sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=other.dumps(),
                                VersionStages=["AWSPENDING"])
    with pytest.raises(RotationFailed, match="setSecret: the pending token's username 'intruder'"):
        harness.step(arn, token, "setSecret")
    assert harness.holder(arn, "AWSCURRENT") == old


def test_test_secret_retries_briefly_then_fails_and_leaves_current(harness, monkeypatch):
    monkeypatch.setenv("TEST_SECRET_TIMEOUT", "3s")
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret"])
    failed_token = harness.tagged(seed.target, token)[0]["token_id"]
    harness.emulator.inject_fault("/access/api/v1/tokens/me", status=401, count=1000)
    with pytest.raises(RotationFailed, match=f"testSecret: the new token {failed_token} does not work"):
        harness.step(arn, token, "testSecret")
    assert 2 <= len(harness.sleeps) and sum(harness.sleeps) <= 3
    assert harness.holder(arn, "AWSCURRENT") == old
    harness.emulator.clear_faults()
    harness.rotate(arn)
    assert harness.current(arn).generation == 2
    assert not harness.emulator.is_token_active(failed_token), "the failed rotation's token was swept"


def test_test_secret_waits_for_a_token_that_takes_a_moment(harness):
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret"])
    harness.emulator.inject_fault("/access/api/v1/tokens/me", status=401, count=2)
    harness.step(arn, token, "testSecret")
    assert harness.sleeps == [0.25, 0.5]


def test_a_failed_label_move_leaves_current_and_a_retry_finishes(harness):
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret", "testSecret"])

    def refuse(**kwargs):
        raise RuntimeError("injected: the network is gone")

    unregister = on_call(harness, "UpdateSecretVersionStage", refuse)
    try:
        with pytest.raises(RuntimeError):
            harness.step(arn, token, "finishSecret")
    finally:
        unregister()
    assert harness.holder(arn, "AWSCURRENT") == old and harness.holder(arn, "AWSPENDING") == token
    harness.step(arn, token, "finishSecret")
    assert harness.stages(arn) == {old: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert harness.emulator.mint_count == 1


def test_a_failed_revocation_does_not_fail_the_rotation_and_is_caught_up_later(harness, monkeypatch, caplog):
    monkeypatch.setenv("REVOKE_PREVIOUS", "immediately")
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    arn, seed = harness.seeded_secret()
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret", "testSecret"])
    harness.emulator.inject_fault("/access/api/v1/tokens/", method="DELETE", status=403)
    caplog.set_level(logging.INFO, logger="rotator.aws_lambda")
    harness.step(arn, token, "finishSecret")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["outcome"] == "promoted" and line["warnings"] and line["revoked"] == []
    assert harness.holder(arn, "AWSCURRENT") == token and harness.emulator.is_token_active(seed.token_id)
    harness.rotate(arn)
    assert not harness.emulator.is_token_active(seed.token_id)
    assert harness.live(seed.target) == 1


# -- logs and container reuse -------------------------------------------------------------------
def test_one_json_line_per_step_and_never_a_token_value(harness, caplog):
    caplog.set_level(logging.DEBUG)
    arn, seed = harness.seeded_secret()
    token = harness.rotate(arn)
    record = harness.current(arn)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "rotator.aws_lambda"]
    assert [line["step"] for line in lines] == list(STEPS)
    assert all(line["secret"] == arn and line["rotation"] == token and line["token_id"] == record.token_id
               and line["duration_ms"] >= 0 for line in lines)
    assert [line["outcome"] for line in lines] == ["minted", "checked", "verified", "promoted"]
    for value in (seed.access_token, record.access_token, harness.emulator.admin_token):
        assert value not in caplog.text


def test_a_failed_step_logs_the_error_without_secrets(harness, caplog):
    caplog.set_level(logging.INFO, logger="rotator.aws_lambda")
    arn, seed = harness.seeded_secret()
    token = harness.begin(arn)
    harness.emulator.inject_fault("/access/api/v1/tokens", method="POST", status=400,
                                  body=json.dumps({"errors": [{"code": "BAD", "message": seed.access_token}]}))
    with pytest.raises(RotationFailed) as raised:
        harness.step(arn, token, "createSecret")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["outcome"] == "failed" and line["error_type"] == "RotationFailed" and line["step"] == "createSecret"
    assert seed.access_token not in caplog.text and seed.access_token not in str(raised.value)


def test_invocations_reuse_one_boto3_client_and_one_jfrog_session(harness):
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    harness.step(arn, token, "createSecret")
    client, jfrog = harness.container.secrets_manager, harness.container.jfrog_client
    harness.step(arn, token, "setSecret")
    harness.step(arn, token, "testSecret")
    assert harness.container.secrets_manager is client and harness.container.jfrog_client is jfrog


def test_rotation_token_is_passed_to_put_secret_value(harness):
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    harness.container.backend(aws_lambda.LambdaSettings.from_env(), arn)
    seen = []
    unregister = on_call(harness, "PutSecretValue", lambda params, **kw: seen.append(params.get("RotationToken")),
                         hook="provide-client-params")
    try:
        harness.step(arn, token, "createSecret", RotationToken="rotation-token-from-secrets-manager-0123")
    finally:
        unregister()
    assert seen == ["rotation-token-from-secrets-manager-0123"]


def test_previous_token_grace_sets_when_the_daemon_may_revoke_the_demoted_token(harness, monkeypatch):
    monkeypatch.setenv("PREVIOUS_TOKEN_GRACE", "10m")
    arn, _ = harness.seeded_secret()
    harness.rotate(arn)
    entry = harness.current(arn).retired[0]
    now = datetime.now(timezone.utc)
    assert timedelta(minutes=9) < entry.revoke_after - now <= timedelta(minutes=10)
