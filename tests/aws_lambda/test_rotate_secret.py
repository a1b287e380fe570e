"""End to end: ``RotateSecret`` on moto's server runs the real handler in-process for each step
(moto's no-Docker Lambda backend, its invoke routed to ``rotator.aws_lambda.handler``), and the
daemon's engine takes turns with it on the same secret."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from rotator.aws_lambda import RotationFailed, RotationSetupError
from rotator.core.schedule import next_due
from rotator.core.target import Target
from rotator.core.token_spec import TokenSpec
from rotator.engine import Engine
from rotator.engine.status import target_status
from rotator.jfrog import AccessClient
from tests.fixtures.lambda_harness import STEPS


@pytest.fixture
def routed(harness):
    harness.route_to_handler()
    return harness


def rotate_three_times(h, arn):
    versions = [h.holder(arn, "AWSCURRENT")]
    tokens = []
    for _ in range(3):
        version = h.begin(arn)
        assert h.failures == [], h.failures
        assert h.stages(arn)[version] == ["AWSCURRENT"], "AWSPENDING is dropped by finishSecret"
        assert h.stages(arn)[versions[-1]] == ["AWSPREVIOUS"]
        record = h.current(arn)
        assert h.emulator.authenticates(record.access_token)
        versions.append(version)
        tokens.append(record.token_id)
    assert [step for step, _ in h.invoked] == list(STEPS) * 3
    return versions, tokens


def test_three_rotations_keep_exactly_current_and_previous_alive(routed):
    arn, seed = routed.seeded_secret()
    versions, tokens = rotate_three_times(routed, arn)
    assert routed.current(arn).generation == 4
    assert routed.live(seed.target) == 2
    assert [routed.emulator.is_token_active(t) for t in (seed.token_id, *tokens)] == [False, False, True, True]
    # Listed: the token revoked by this rotation (due; dropped by the next one) and the previous one.
    retired = routed.current(arn).retired
    assert [r.token_id for r in retired] == tokens[:2]
    assert retired[0].revoke_after <= datetime.now(timezone.utc) < retired[1].revoke_after


def test_three_rotations_with_immediately_revoke_the_previous_token(routed, monkeypatch):
    monkeypatch.setenv("REVOKE_PREVIOUS", "immediately")
    arn, seed = routed.seeded_secret()
    versions, tokens = rotate_three_times(routed, arn)
    assert routed.live(seed.target) == 1
    assert [routed.emulator.is_token_active(t) for t in (seed.token_id, *tokens)] == [False, False, False, True]


def test_three_rotations_with_never_revoke_nothing(routed, monkeypatch):
    monkeypatch.setenv("REVOKE_PREVIOUS", "never")
    arn, seed = routed.seeded_secret()
    rotate_three_times(routed, arn)
    assert routed.live(seed.target) == 4
    assert len(routed.current(arn).retired) == 3, "every live previous token stays known to the sweeps"


def test_a_failing_step_leaves_current_and_the_next_rotation_completes(routed):
    arn, seed = routed.seeded_secret()
    old = routed.holder(arn, "AWSCURRENT")
    routed.emulator.inject_fault("/access/api/v1/tokens/me", status=403, count=1000)
    routed.monkeypatch.setenv("TEST_SECRET_TIMEOUT", "1s")
    failed = routed.begin(arn)
    assert [(step, type(exc)) for step, exc in routed.failures] == [("testSecret", RotationFailed)]
    assert routed.holder(arn, "AWSCURRENT") == old and routed.current(arn).token_id == seed.token_id
    assert routed.stages(arn)[failed] == ["AWSPENDING"]  # stuck until the next rotation, as on AWS

    routed.emulator.clear_faults()
    routed.failures.clear()
    later = routed.begin(arn)
    assert routed.failures == [] and routed.holder(arn, "AWSCURRENT") == later
    assert routed.stages(arn)[old] == ["AWSPREVIOUS"] and routed.current(arn).generation == 2


def test_bootstrap_through_rotate_secret(routed):
    arn = routed.secret_with("{}")  # rotation enabled before the first value existed (docs/aws-lambda.md)
    empty = routed.holder(arn, "AWSCURRENT")
    routed.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", RemoveFromVersionId=empty)
    first = routed.begin(arn)
    assert routed.failures == [] and routed.stages(arn)[first] == ["AWSCURRENT"]
    second = routed.begin(arn)
    assert routed.failures == [] and routed.holder(arn, "AWSPREVIOUS") == first
    record = routed.current(arn)
    assert record.generation == 2 and routed.holder(arn, "AWSCURRENT") == second
    assert routed.emulator.authenticates(record.access_token)


def test_rotate_immediately_false_only_tests_the_current_token(routed):
    arn, seed = routed.seeded_secret()
    old = routed.holder(arn, "AWSCURRENT")
    routed.begin(arn, RotateImmediately=False)
    assert routed.failures == [] and [step for step, _ in routed.invoked] == ["testSecret"]
    assert routed.holder(arn, "AWSCURRENT") == old and routed.emulator.mint_count == 0
    assert any(r.path == "/access/api/v1/tokens/me" for r in routed.emulator.requests)


# -- the daemon and the Lambda on one secret ----------------------------------------------------
@pytest.fixture
def daemon(harness, moto_server):
    """The daemon's engine and AWS backend, for the target named in the secret's record."""
    backend = SecretsManagerBackend("aws", endpoint_url=moto_server.url, region="us-east-1", timeout=10)
    admin = AccessClient(harness.emulator.url, access_token=harness.emulator.admin_token)
    clock_offset = [timedelta(0)]
    engine = Engine(jfrog=admin, backends={"aws": backend}, has_admin=True, verify_delay=0.01,
                    clock=lambda: datetime.now(timezone.utc) + clock_offset[0])

    def policy(arn, target):
        return Target(name=target, backend="aws", path=arn, overlap=3600, orphan_grace=600,
                            token=TokenSpec(username="ci", groups="deployers", expiry=14400, force_revocable=True))

    engine.policy = policy
    engine.clock_offset = clock_offset
    yield engine
    admin.close()
    backend.close()


def test_daemon_and_lambda_take_turns_without_breaking_each_other(routed, daemon):
    arn, seed = routed.seeded_secret()
    target = daemon.policy(arn, seed.target)
    tokens = [seed.token_id]

    routed.begin(arn)                                    # Lambda: seed -> L1
    tokens.append(routed.current(arn).token_id)
    result = daemon.rotate(target)                       # daemon: L1 -> D2
    assert result.outcome == "rotated", result.error
    tokens.append(result.token_id)
    routed.begin(arn)                                    # Lambda: D2 -> L3
    tokens.append(routed.current(arn).token_id)
    result = daemon.rotate(target)                       # daemon: L3 -> D4
    assert result.outcome == "rotated", result.error
    tokens.append(result.token_id)
    assert routed.failures == []

    record = routed.current(arn)
    assert record.generation == 5 and record.token_id == tokens[4]
    assert routed.holder(arn, "AWSPREVIOUS") is not None and routed.holder(arn, "AWSPENDING") is None
    # (AWSPREVIOUS may hold D4 too: the daemon rewrites the record after revoking due entries.)
    assert routed.version(arn, routed.holder(arn, "AWSPREVIOUS")).token_id in (tokens[3], tokens[4])
    # The Lambda revoked what was AWSPREVIOUS before each of its rotations (after-next) ...
    assert not routed.emulator.is_token_active(tokens[0]) and not routed.emulator.is_token_active(tokens[1])
    # ... and the daemon keeps its own overlap for the tokens it demoted.
    assert [routed.emulator.is_token_active(t) for t in tokens[2:]] == [True, True, True]

    # The daemon's sweep honours the Lambda's promise: L3 (demoted by the daemon) and D2 (listed
    # by the Lambda until its expiry) are not revoked early; once the overlap is over L3 goes.
    swept = daemon.sweep(target)
    assert swept.errors == [] and swept.retired_revoked == [] and swept.orphans_revoked == []
    daemon.clock_offset[0] = timedelta(seconds=3601)
    swept = daemon.sweep(target)
    assert swept.retired_revoked == [tokens[3]]
    assert routed.emulator.is_token_active(tokens[2]), "D2 keeps working until the Lambda's next rotation"
    routed.begin(arn)                                    # Lambda: D4 -> L5 revokes D2 (was previous)
    assert routed.failures == [] and not routed.emulator.is_token_active(tokens[2])
    assert routed.live(seed.target) == 2


def test_a_daemon_rotation_during_a_lambda_rotation_wins_and_the_lambda_stops(harness, daemon, monkeypatch):
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    arn, seed = harness.seeded_secret()
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret", "testSecret"])
    ours = harness.tagged(seed.target, token)[0]["token_id"]
    result = daemon.rotate(daemon.policy(arn, seed.target))  # its write takes the AWSPENDING label
    assert result.outcome == "rotated", result.error
    with pytest.raises(RotationSetupError, match="not set as AWSPENDING"):
        harness.step(arn, token, "finishSecret")
    assert harness.holder(arn, "AWSCURRENT") == result.rotation_id
    assert harness.current(arn).token_id == result.token_id and harness.holder(arn, "AWSPENDING") is None
    later = harness.rotate(arn)
    assert harness.holder(arn, "AWSCURRENT") == later and harness.current(arn).generation == 3
    assert not harness.emulator.is_token_active(ours), "the stopped rotation's token was swept as an orphan"
    assert harness.emulator.is_token_active(result.token_id), "the daemon's token is the previous one now"


def test_a_label_moved_during_a_rotation_makes_finish_back_off(harness):
    # (A plain PutSecretValue during a rotation drops AWSPENDING, on AWS and moto: the next step
    # then fails its checks. Moving AWSCURRENT by hand leaves AWSPENDING: finishSecret must notice.)
    arn, seed = harness.seeded_secret()
    old = harness.holder(arn, "AWSCURRENT")
    token = harness.begin(arn)
    harness.run_steps(arn, token, ["createSecret", "setSecret", "testSecret"])
    ours = harness.tagged(seed.target, token)[0]["token_id"]
    replacement = harness.seed(seed.target)  # a person stores another token meanwhile
    put = harness.sm.put_secret_value(SecretId=arn, SecretString=replacement.dumps(),
                                      VersionStages=["MANUAL"])["VersionId"]
    harness.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=put,
                                           RemoveFromVersionId=old)
    assert harness.holder(arn, "AWSPENDING") == token
    with pytest.raises(RotationFailed, match="AWSCURRENT changed after createSecret"):
        harness.step(arn, token, "finishSecret")
    assert harness.holder(arn, "AWSCURRENT") == put and harness.holder(arn, "AWSPENDING") is None
    assert not harness.emulator.is_token_active(ours), "the abandoned rotation's token is revoked"
    assert harness.emulator.is_token_active(replacement.token_id)


def test_the_engine_reads_what_the_lambda_wrote_and_vice_versa(routed, daemon):
    arn, seed = routed.seeded_secret(token={"groups": "readers"}, note="kept")
    routed.begin(arn)
    stored = daemon.backends["aws"].read(arn)
    result = daemon.rotate(daemon.policy(arn, seed.target))
    assert result.outcome == "rotated" and stored.version != result.rotation_id
    record = routed.current(arn)
    assert record.rotator_extra == {"token": {"groups": "readers"}, "note": "kept"}
    routed.begin(arn)
    record = routed.current(arn)
    assert record.scope == "applied-permissions/groups:readers" and record.rotator_extra["note"] == "kept"
    assert uuid.UUID(routed.holder(arn, "AWSCURRENT"))


# -- every door writes the same metadata ----------------------------------------------------------
class _Stores:
    """What ``target_status`` needs of a config: the stores by name."""

    def __init__(self, backends):
        self.backends = backends


def _assert_everything_names(daemon, target, record):
    """The record, the tags, ``status`` and the daemon's next due time all follow ``record``."""
    backend = daemon.backends["aws"]
    tags = backend.read_metadata(target.path)
    assert tags["token_id"] == record.token_id and tags["generation"] == str(record.generation)
    status = target_status(_Stores(daemon.backends), target)
    assert status.token_id == record.token_id and status.generation == record.generation
    assert status.expires_at == record.expires_at and status.issued_at == record.issued_at
    now = datetime.now(timezone.utc)
    assert status.next_due == next_due(target.schedule, record.issued_at, record.expires_at, now)


def test_a_lambda_rotation_after_a_daemon_rotation_leaves_every_view_on_the_current_token(routed, daemon):
    arn, seed = routed.seeded_secret()
    target = daemon.policy(arn, seed.target)
    assert daemon.rotate(target).outcome == "rotated"     # the daemon writes record + tags
    routed.begin(arn)                                     # then one Lambda rotation
    assert routed.failures == []
    record = routed.current(arn)
    assert record.generation == seed.generation + 2
    _assert_everything_names(daemon, target, record)
    assert daemon.backends["aws"].read_metadata(arn)["last_reason"] == "Secrets Manager rotation"


def test_a_daemon_rotation_after_a_lambda_rotation_leaves_every_view_on_the_current_token(routed, daemon):
    arn, seed = routed.seeded_secret()
    target = daemon.policy(arn, seed.target)
    routed.begin(arn)
    assert routed.failures == []
    _assert_everything_names(daemon, target, routed.current(arn))
    result = daemon.rotate(target)
    assert result.outcome == "rotated", result.error
    record = routed.current(arn)
    assert record.token_id == result.token_id
    _assert_everything_names(daemon, target, record)
