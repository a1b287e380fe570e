"""SecretsManagerBackend against moto's server over real HTTP on 127.0.0.1.

Assertions on labels read ``describe_secret()["VersionIdsToStages"]`` and values are read with
``VersionStage="AWSCURRENT"``: moto answers a read without stage or version from an internal default
version that ``UpdateSecretVersionStage`` does not move, so it can return a stale value.
"""

from __future__ import annotations

import json
import socket
import traceback
import uuid

import pytest

from backends.aws_secretsmanager import NO_CURRENT, SecretsManagerBackend, label_holder
from backends.base import (
    BackendError,
    CASConflict,
    SecretBackend,
    StagingBackend,
    StoredValue,
    WriteOutcomeUnknown,
    create_backend,
)
from rotator.core.options import ConfigError, Options
from rotator.core.record import MANAGED_BY
from tests.fixtures.imports import modules_after_import
from tests.fixtures.moto_server import aws_env

# Not token-shaped, never registered with rotator.core.redact: only our own care keeps it out of messages.
SECRET_TEXT = json.dumps({"access_token": "plain-secret-value-0123456789", "token_id": "tid-1"})
META = {"target": "ci-deployer", "token_id": "tid-1", "generation": "3", "expires_at": "never",
        "retired": "tid-0@2026-11-27T23:00:00Z,tid-x@2026-11-28T23:00:00Z"}


@pytest.fixture(scope="session")
def moto_client(moto_server):
    """One boto3 client for all tests, passed in as the Lambda does (a client costs ~0.2 s to make)."""
    with pytest.MonkeyPatch.context() as mp:
        aws_env(mp)
        client = SecretsManagerBackend("setup", endpoint_url=moto_server.url, max_attempts=2, timeout=5).client
    yield client
    client.close()


@pytest.fixture
def aws_backend(moto_server, moto_client, monkeypatch):
    """A backend named ``aws-test`` on a freshly reset moto server, with dummy credentials."""
    aws_env(monkeypatch)
    moto_server.reset()
    backend = SecretsManagerBackend("aws-test", client=moto_client)
    try:
        yield backend
    finally:
        backend.close()


def rid() -> str:
    """A rotation id as the engine makes them (uuid4, 36 characters)."""
    return str(uuid.uuid4())


def stages(backend, name):
    return backend.client.describe_secret(SecretId=name).get("VersionIdsToStages") or {}


def current_text(backend, name):
    return backend.client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]


def pending_anywhere(backend, name):
    return [v for v, labels in stages(backend, name).items() if "AWSPENDING" in labels]


def tags(backend, name):
    return {t["Key"]: t["Value"] for t in backend.client.describe_secret(SecretId=name).get("Tags", [])}


def create(backend, name, text="v1"):
    """A managed secret holding ``text``; returns its AWSCURRENT VersionId."""
    return backend.write(name, text, expected_version=None, metadata=META, rotation_id=rid())


# -- read ------------------------------------------------------------------------------------------
def test_missing_secret_reads_none_none(aws_backend):
    assert aws_backend.read("jfrog/missing") == StoredValue(None, None)


def test_read_returns_current_text_and_version_id(aws_backend):
    version = create(aws_backend, "jfrog/ci", SECRET_TEXT)
    assert aws_backend.read("jfrog/ci") == StoredValue(SECRET_TEXT, version)


def test_empty_secret_reads_no_current(aws_backend):
    aws_backend.client.create_secret(Name="jfrog/empty")
    assert aws_backend.read("jfrog/empty") == StoredValue(None, NO_CURRENT)


def test_secret_whose_awscurrent_label_was_removed_reads_no_current(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    aws_backend.client.update_secret_version_stage(SecretId="jfrog/ci", VersionStage="AWSCURRENT",
                                                   RemoveFromVersionId=old)
    assert aws_backend.read("jfrog/ci") == StoredValue(None, NO_CURRENT)


# -- write: create ---------------------------------------------------------------------------------
def test_write_expected_none_creates_secret_with_rotation_id_as_version(aws_backend):
    rotation_id = rid()
    version = aws_backend.write("jfrog/ci", SECRET_TEXT, expected_version=None, metadata=META,
                                rotation_id=rotation_id)
    assert version == rotation_id
    assert stages(aws_backend, "jfrog/ci") == {rotation_id: ["AWSCURRENT"]}
    assert current_text(aws_backend, "jfrog/ci") == SECRET_TEXT


def test_write_expected_none_tags_managed_by(aws_backend):
    create(aws_backend, "jfrog/ci")
    assert tags(aws_backend, "jfrog/ci")["managed-by"] == MANAGED_BY


def test_create_race_raises_cas_conflict_and_keeps_the_winner(aws_backend):
    create(aws_backend, "jfrog/ci", "winner")
    with pytest.raises(CASConflict):
        aws_backend.write("jfrog/ci", "loser", expected_version=None, metadata=META, rotation_id=rid())
    assert current_text(aws_backend, "jfrog/ci") == "winner"


def test_create_retry_with_same_rotation_id_is_idempotent(aws_backend):
    rotation_id = rid()
    for _ in range(2):  # a retry after WriteOutcomeUnknown re-sends the same ClientRequestToken
        version = aws_backend.write("jfrog/ci", "v1", expected_version=None, metadata=META, rotation_id=rotation_id)
    assert version == rotation_id
    assert stages(aws_backend, "jfrog/ci") == {rotation_id: ["AWSCURRENT"]}


# -- write: compare-and-set through pending -> promote ---------------------------------------------
def test_cas_write_leaves_new_current_old_previous_and_no_pending(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    new = aws_backend.write("jfrog/ci", "v2", expected_version=old, metadata=META, rotation_id=rid())
    assert stages(aws_backend, "jfrog/ci") == {new: ["AWSCURRENT"], old: ["AWSPREVIOUS"]}


def test_cas_write_new_text_is_awscurrent(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    aws_backend.write("jfrog/ci", "v2", expected_version=old, metadata=META, rotation_id=rid())
    assert current_text(aws_backend, "jfrog/ci") == "v2"
    assert aws_backend.read("jfrog/ci").text == "v2"


def test_stale_expected_version_raises_cas_conflict_and_keeps_other_writer_current(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    other = aws_backend.write("jfrog/ci", "other", expected_version=old, metadata=META, rotation_id=rid())
    with pytest.raises(CASConflict) as caught:
        aws_backend.write("jfrog/ci", SECRET_TEXT, expected_version=old, metadata=META, rotation_id=rid())
    assert label_holder(stages(aws_backend, "jfrog/ci"), "AWSCURRENT") == other
    assert current_text(aws_backend, "jfrog/ci") == "other"
    assert pending_anywhere(aws_backend, "jfrog/ci") == []
    assert SECRET_TEXT not in str(caught.value)


def test_cas_write_refreshes_metadata_tags(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    aws_backend.write("jfrog/ci", "v2", expected_version=old, metadata={**META, "generation": "4"},
                      rotation_id=rid())
    assert tags(aws_backend, "jfrog/ci")["jfrog-rotator:generation"] == "4"


# -- write: bootstrap of a secret without AWSCURRENT -----------------------------------------------
def test_write_no_current_bootstraps_empty_secret(aws_backend):
    aws_backend.client.create_secret(Name="jfrog/empty")
    rotation_id = rid()
    version = aws_backend.write("jfrog/empty", "first", expected_version=NO_CURRENT, metadata=META,
                                rotation_id=rotation_id)
    assert version == rotation_id
    assert stages(aws_backend, "jfrog/empty") == {rotation_id: ["AWSCURRENT"]}
    assert aws_backend.read("jfrog/empty") == StoredValue("first", rotation_id)
    assert tags(aws_backend, "jfrog/empty")["managed-by"] == MANAGED_BY


def test_write_no_current_conflicts_when_someone_set_a_value_first(aws_backend):
    aws_backend.client.create_secret(Name="jfrog/empty")
    aws_backend.write("jfrog/empty", "theirs", expected_version=NO_CURRENT, metadata=META, rotation_id=rid())
    with pytest.raises(CASConflict):
        aws_backend.write("jfrog/empty", "ours", expected_version=NO_CURRENT, metadata=META, rotation_id=rid())
    assert current_text(aws_backend, "jfrog/empty") == "theirs"


# -- staging protocol (the Lambda's) ----------------------------------------------------------------
def test_write_pending_is_idempotent_and_read_pending_returns_it(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "v2", rotation_id)
    aws_backend.write_pending("jfrog/ci", "v2", rotation_id)
    assert stages(aws_backend, "jfrog/ci") == {old: ["AWSCURRENT"], rotation_id: ["AWSPENDING"]}
    assert aws_backend.read_pending("jfrog/ci", rotation_id) == "v2"


def test_read_pending_of_unknown_version_is_none(aws_backend):
    create(aws_backend, "jfrog/ci")
    assert aws_backend.read_pending("jfrog/ci", rid()) is None


def test_promote_is_idempotent(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "v2", rotation_id)
    assert aws_backend.promote("jfrog/ci", rotation_id, old) == rotation_id
    after_first = stages(aws_backend, "jfrog/ci")
    assert after_first == {rotation_id: ["AWSCURRENT"], old: ["AWSPREVIOUS"]}
    assert aws_backend.promote("jfrog/ci", rotation_id, old) == rotation_id
    assert stages(aws_backend, "jfrog/ci") == after_first


def test_promote_with_stale_expected_version_conflicts_and_drops_pending(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    other = aws_backend.write("jfrog/ci", "other", expected_version=old, metadata=META, rotation_id=rid())
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "ours", rotation_id)
    with pytest.raises(CASConflict):
        aws_backend.promote("jfrog/ci", rotation_id, old)
    assert label_holder(stages(aws_backend, "jfrog/ci"), "AWSCURRENT") == other
    assert pending_anywhere(aws_backend, "jfrog/ci") == []


def test_promote_no_current_bootstraps_first_value(aws_backend):
    # Rotation enabled before any value was stored: no version holds AWSCURRENT.
    old = create(aws_backend, "jfrog/ci")
    aws_backend.client.update_secret_version_stage(SecretId="jfrog/ci", VersionStage="AWSCURRENT",
                                                   RemoveFromVersionId=old)
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "first", rotation_id)
    assert aws_backend.promote("jfrog/ci", rotation_id, NO_CURRENT) == rotation_id
    assert stages(aws_backend, "jfrog/ci")[rotation_id] == ["AWSCURRENT"]
    assert current_text(aws_backend, "jfrog/ci") == "first"


def test_staging_says_which_version_holds_each_label(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "v2", rotation_id)
    state = aws_backend.staging("jfrog/ci")
    assert (state.name, state.current, state.pending, state.rotation_enabled) == ("jfrog/ci", old, rotation_id, False)
    assert state.arn == aws_backend.client.describe_secret(SecretId="jfrog/ci")["ARN"]
    assert state.versions == {old: ("AWSCURRENT",), rotation_id: ("AWSPENDING",)}
    assert state.labels(rotation_id) == ("AWSPENDING",) and state.labels(rid()) is None


def test_staging_of_a_secret_without_awscurrent_has_no_current(aws_backend):
    aws_backend.client.create_secret(Name="jfrog/empty")
    state = aws_backend.staging("jfrog/empty")
    assert (state.current, state.pending, dict(state.versions)) == (None, None, {})


def test_staging_of_a_missing_secret_names_describe_secret_and_not_found(aws_backend):
    with pytest.raises(BackendError) as caught:
        aws_backend.staging("jfrog/missing")
    assert "DescribeSecret" in str(caught.value) and "ResourceNotFoundException" in str(caught.value)


def test_read_version_without_a_stage_reads_any_version(aws_backend):
    old = create(aws_backend, "jfrog/ci", "v1")
    new = aws_backend.write("jfrog/ci", "v2", expected_version=old, metadata=META, rotation_id=rid())
    assert aws_backend.read_version("jfrog/ci", old) == "v1"  # AWSPREVIOUS now
    assert aws_backend.read_version("jfrog/ci", new) == "v2"
    assert aws_backend.read_version("jfrog/ci", rid()) is None


def test_drop_pending_takes_the_label_off_and_keeps_the_version(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    rotation_id = rid()
    aws_backend.write_pending("jfrog/ci", "abandoned", rotation_id)
    aws_backend.drop_pending("jfrog/ci", rotation_id)
    assert pending_anywhere(aws_backend, "jfrog/ci") == []
    assert label_holder(stages(aws_backend, "jfrog/ci"), "AWSCURRENT") == old
    assert aws_backend.read_version("jfrog/ci", rotation_id) == "abandoned"


def test_drop_pending_leaves_a_newer_rotations_pending_label(aws_backend):
    create(aws_backend, "jfrog/ci")
    abandoned, newer = rid(), rid()
    aws_backend.write_pending("jfrog/ci", "abandoned", abandoned)
    aws_backend.write_pending("jfrog/ci", "newer", newer)  # moves AWSPENDING to the newer version
    aws_backend.drop_pending("jfrog/ci", abandoned)
    assert pending_anywhere(aws_backend, "jfrog/ci") == [newer]


def test_drop_pending_of_a_version_without_the_label_changes_nothing(aws_backend):
    old = create(aws_backend, "jfrog/ci")
    before = stages(aws_backend, "jfrog/ci")
    aws_backend.drop_pending("jfrog/ci", old)  # AWSCURRENT, not AWSPENDING
    aws_backend.drop_pending("jfrog/ci", rid())  # no such version
    assert stages(aws_backend, "jfrog/ci") == before


# -- metadata ------------------------------------------------------------------------------------
def test_metadata_round_trips_through_tags(aws_backend):
    create(aws_backend, "jfrog/ci")
    meta = aws_backend.read_metadata("jfrog/ci")
    current = aws_backend.read("jfrog/ci").version
    assert meta == {**META, "managed_by": MANAGED_BY, "rotation_enabled": "false", "current_version": current,
                    "rotator_version": current,  # the tags describe the current version
                    # ',' is not allowed in a tag value: lists become space separated
                    "retired": "tid-0@2026-11-27T23:00:00Z tid-x@2026-11-28T23:00:00Z"}


def test_tags_with_the_jfrog_rotator_prefix_read_as_metadata(aws_backend):
    # Secrets tagged by earlier releases: the key prefix must stay "jfrog-rotator:".
    aws_backend.client.create_secret(Name="jfrog/old", SecretString="x", Tags=[
        {"Key": "managed-by", "Value": MANAGED_BY}, {"Key": "jfrog-rotator:token_id", "Value": "tid-9"},
        {"Key": "jfrog-rotator:generation", "Value": "7"}, {"Key": "team", "Value": "not ours"}])
    current = aws_backend.read("jfrog/old").version
    assert aws_backend.read_metadata("jfrog/old") == {"managed_by": MANAGED_BY, "token_id": "tid-9",
                                                      "generation": "7", "rotation_enabled": "false",
                                                      "current_version": current}


def test_patch_metadata_sanitises_and_truncates_values(aws_backend):
    create(aws_backend, "jfrog/ci")
    aws_backend.patch_metadata("jfrog/ci", {"last_error": "HTTP 403; try #2 " + "x" * 300, "bad key!": "ok"})
    meta = aws_backend.read_metadata("jfrog/ci")
    assert meta["last_error"] == ("HTTP 403_ try _2 " + "x" * 300)[:256]
    assert meta["bad key_"] == "ok"
    assert meta["token_id"] == "tid-1"  # merged, not replaced


def test_patch_metadata_none_removes_the_tag(aws_backend):
    create(aws_backend, "jfrog/ci")
    aws_backend.patch_metadata("jfrog/ci", {"rotate_requested": "yes"})
    aws_backend.patch_metadata("jfrog/ci", {"rotate_requested": None})
    assert "rotate_requested" not in aws_backend.read_metadata("jfrog/ci")


def test_read_metadata_of_missing_secret_is_none(aws_backend):
    assert aws_backend.read_metadata("jfrog/missing") is None


def test_list_managed_finds_only_secrets_tagged_by_us(aws_backend):
    create(aws_backend, "jfrog/ours")
    aws_backend.client.create_secret(Name="jfrog/untagged", SecretString="x")
    aws_backend.client.create_secret(Name="jfrog/other-tool", SecretString="x",
                                     Tags=[{"Key": "managed-by", "Value": "someone-else"}])
    assert aws_backend.list_managed() == ["jfrog/ours"]


# -- errors --------------------------------------------------------------------------------------
def test_error_names_backend_path_operation_and_aws_code(aws_backend):
    with pytest.raises(BackendError) as caught:
        aws_backend.promote("jfrog/missing", rid(), rid())
    message = str(caught.value)
    assert not isinstance(caught.value, CASConflict)
    for part in ("aws-test", "jfrog/missing", "UpdateSecretVersionStage", "ResourceNotFoundException"):
        assert part in message


def test_errors_never_contain_the_secret_text(aws_backend):
    with pytest.raises(BackendError) as caught:
        aws_backend.write_pending("jfrog/missing", SECRET_TEXT, rid())
    rendered = "".join(traceback.format_exception(caught.value))
    assert "PutSecretValue" in rendered
    assert "plain-secret-value" not in rendered


def test_no_answer_during_value_write_is_write_outcome_unknown(aws_backend):
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % closed.getsockname()[1]
        backend = SecretsManagerBackend("aws-test", endpoint_url=url, max_attempts=1, timeout=2)
        with pytest.raises(WriteOutcomeUnknown) as caught:
            backend.write("jfrog/ci", SECRET_TEXT, expected_version=None, metadata=META, rotation_id=rid())
        with pytest.raises(BackendError) as read_error:
            backend.read("jfrog/ci")
    assert "CreateSecret" in str(caught.value)
    assert not isinstance(read_error.value, WriteOutcomeUnknown)


def test_read_timeout_during_cas_write_is_write_outcome_unknown(aws_backend):
    with socket.socket() as silent:  # listening, never answering: the request times out
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        backend = SecretsManagerBackend("aws-test", endpoint_url=url, max_attempts=1, timeout=0.5)
        with pytest.raises(WriteOutcomeUnknown) as caught:
            backend.write("jfrog/ci", SECRET_TEXT, expected_version=rid(), metadata=META, rotation_id=rid())
    assert "PutSecretValue" in str(caught.value)
    assert "plain-secret-value" not in str(caught.value)


# -- config --------------------------------------------------------------------------------------
def test_from_config_without_any_region_names_the_region_key(monkeypatch):
    aws_env(monkeypatch)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError) as caught:
        SecretsManagerBackend.from_config("aws", Options({"type": "aws-secretsmanager"}, "backends.aws"))
    assert caught.value.key == "backends.aws.region"


def test_from_config_bad_timeout_names_the_timeout_key(monkeypatch):
    aws_env(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        SecretsManagerBackend.from_config("aws", Options({"timeout": "soon"}, "backends.aws"))
    assert caught.value.key == "backends.aws.timeout"


def test_from_config_bad_max_attempts_names_the_key(monkeypatch):
    aws_env(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        SecretsManagerBackend.from_config("aws", Options({"max_attempts": 0}, "backends.aws"))
    assert caught.value.key == "backends.aws.max_attempts"


def test_from_config_unknown_profile_names_the_profile_key(monkeypatch):
    aws_env(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        SecretsManagerBackend.from_config("aws", Options({"profile": "nope"}, "backends.aws"))
    assert caught.value.key == "backends.aws.profile"


def test_from_config_defaults_come_from_the_environment(monkeypatch):
    aws_env(monkeypatch)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # Lambda's variable wins over AWS_DEFAULT_REGION
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", "http://127.0.0.1:9")
    backend = SecretsManagerBackend.from_config("aws", Options({}, "backends.aws"))
    assert (backend.region, backend.endpoint_url, backend.timeout, backend.max_attempts) == \
        ("eu-central-1", "http://127.0.0.1:9", 30, 5)


def test_client_uses_configured_timeouts_and_standard_retries(monkeypatch):
    aws_env(monkeypatch)
    backend = SecretsManagerBackend.from_config(
        "aws", Options({"region": "eu-west-1", "timeout": "7s", "max_attempts": 3,
                        "endpoint_url": "http://127.0.0.1:9"}, "backends.aws"))
    config = backend.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (7, 7)
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 3  # first try included, as configured
    assert backend.client.meta.region_name == "eu-west-1"
    assert backend.client is backend.client  # created once, reused


def test_registry_builds_the_backend_from_config(monkeypatch):
    aws_env(monkeypatch)
    backend = create_backend("aws", Options({"type": "aws-secretsmanager", "region": "us-west-2"}, "backends.aws"))
    assert isinstance(backend, SecretsManagerBackend)
    assert isinstance(backend, SecretBackend) and isinstance(backend, StagingBackend)


def test_check_summarises_region_and_endpoint(aws_backend, moto_server):
    backend = SecretsManagerBackend("aws-test", endpoint_url=moto_server.url)  # its own client
    try:
        summary = backend.check()
    finally:
        backend.close()
    assert "us-east-1" in summary and moto_server.url in summary


# -- import hygiene (the Lambda imports this module) ---------------------------------------------
def test_import_pulls_in_no_hvac_yaml_apscheduler_or_engine():
    loaded = {m for m in modules_after_import("backends.aws_secretsmanager")
              if m.split(".")[0] in ("hvac", "yaml", "apscheduler", "rotator", "backends")}
    assert loaded <= {"backends", "backends.base", "backends.aws_secretsmanager",
                      "backends.aws_secretsmanager.coordination", "backends.aws_secretsmanager.staging",
                      "backends.aws_secretsmanager.tags", "backends.aws_secretsmanager.transport",
                      "rotator", "rotator.core", "rotator.core.options", "rotator.core.record", "rotator.core.redact",
                      "rotator.core.tags"}, loaded


def test_none_metadata_values_never_become_the_text_none(aws_backend):
    aws_backend.write("none-values", SECRET_TEXT, expected_version=None, metadata={"retired": None, "target": "t"},
                      rotation_id=str(uuid.uuid4()))
    tags = {t["Key"]: t["Value"] for t in aws_backend.client.describe_secret(SecretId="none-values")["Tags"]}
    assert "None" not in tags.values()
    assert aws_backend.read_metadata("none-values").get("retired") is None


# -- tags: only what is set takes room, and 50 per secret, everyone's tags counted ---------------
def test_a_removed_key_takes_no_tag_where_the_secret_has_none(aws_backend):
    aws_backend.write("jfrog/ci", SECRET_TEXT, expected_version=None, rotation_id=rid(),
                      metadata={**META, "last_error": None, "requested_by": None})
    assert "jfrog-rotator:last_error" not in tags(aws_backend, "jfrog/ci")
    aws_backend.patch_metadata("jfrog/ci", {"last_error": "boom"})
    aws_backend.patch_metadata("jfrog/ci", {"last_error": None, "requested_by": None})
    assert tags(aws_backend, "jfrog/ci")["jfrog-rotator:last_error"] == ""  # emptied: read back as absent
    assert "jfrog-rotator:requested_by" not in tags(aws_backend, "jfrog/ci")
    assert "last_error" not in aws_backend.read_metadata("jfrog/ci")


def test_tags_of_others_count_against_the_fifty_and_nothing_is_written_past_them(aws_backend):
    theirs = [{"Key": f"team:{i}", "Value": "x"} for i in range(45)]
    aws_backend.client.create_secret(Name="jfrog/busy", SecretString=SECRET_TEXT, Tags=theirs)
    before = tags(aws_backend, "jfrog/busy")
    with pytest.raises(BackendError) as raised:
        aws_backend.patch_metadata("jfrog/busy", {**META, "managed_by": MANAGED_BY})
    assert ("aws-test:jfrog/busy: TagResource: the secret would carry 51 tags, more than the 50 AWS allows: 45 of "
            "other tools or people, and 6 the rotator keeps") in str(raised.value)
    with pytest.raises(BackendError, match="would carry 51 tags"):
        aws_backend.check_metadata("jfrog/busy", {**META, "managed_by": MANAGED_BY})
    assert tags(aws_backend, "jfrog/busy") == before
    aws_backend.patch_metadata("jfrog/busy", {"token_id": "tid-1", "generation": "3", "last_error": None})
    assert len(tags(aws_backend, "jfrog/busy")) == 47
    aws_backend.check_metadata("jfrog/not-there", {**META})  # a secret that does not exist has room
