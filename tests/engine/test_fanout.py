"""Fan-out: one token written to several outputs, each read back by its consumer in its own shape
(docs/configuration.md "Fan-out", docs/architecture.md "Fan-out"). The primary runs on every store
kind; the other outputs are an AWS secret holding the bare token, a Vault KV v2 dockerconfigjson and
an env file, each on its real server."""

from __future__ import annotations

import base64
import json
import shlex
import uuid
from dataclasses import replace as with_

import hvac
import pytest

from backends.base import BackendError
from rotator.core.record import SecretRecord
from rotator.core.shapes import registry_hosts
from rotator.core.target import Output
from rotator.engine import Engine, RotationStep
from rotator.engine.status import target_status
from rotator.jfrog import AccessClient
from tests.fixtures.stores import STORE_NAME, still_known


class _Stores:
    def __init__(self, backends):
        self.backends = backends


@pytest.fixture
def others(make_store):
    """The outputs besides the primary, each in another store (named as a config would name them)."""
    return {"aws": make_store("aws"), "kv2": make_store("vault-kv2"), "files": make_store("file")}


@pytest.fixture
def fan_target(target):
    suffix = uuid.uuid4().hex[:8]
    return with_(target, outputs=(Output("aws", f"jfrog/lambda-{suffix}", "token"),
                                  Output("kv2", f"jfrog/docker-{suffix}", "dockerconfigjson"),
                                  Output("files", f"ci-env-{suffix}", "env")))


@pytest.fixture
def engines(users, clock, others):
    """``engines(primary, hook=None, backends=None)`` -> an Engine over the primary's store and the others."""
    clients = []

    def make(primary, *, hook=None, backends=None):
        client = AccessClient(users.url, access_token=users.admin_token)
        clients.append(client)
        return Engine(jfrog=client, backends=backends or {STORE_NAME: primary, **others}, has_admin=True,
                      clock=clock, step_hook=hook, verify_delay=0.01)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fan_engine(engines, store):
    """Engines whose primary is ``store`` (every store kind)."""
    return lambda **kwargs: engines(store, **kwargs)


def primary_record(engine, target) -> SecretRecord:
    return engine.read(target).record


# -- what each consumer reads ------------------------------------------------------------------
def aws_token(others, path) -> str:
    """As a consumer reads it (AWSCURRENT, which AWS reads by default; moto needs it named)."""
    return others["aws"].client.get_secret_value(SecretId=path, VersionStage="AWSCURRENT")["SecretString"]


def docker_password(others, path, url) -> tuple[str, str]:
    """The registry credentials the way Docker reads them from a .dockerconfigjson in Vault (via hvac)."""
    kv2 = others["kv2"]
    client = hvac.Client(url=kv2.client.url, token=kv2.client.token)
    data = client.secrets.kv.v2.read_secret_version(path, mount_point="secret", raise_on_deleted_version=True)
    auths = data["data"]["data"]["auths"]
    [host] = auths
    assert host == registry_hosts(url)[0]
    user, _, password = base64.b64decode(auths[host]["auth"]).decode().partition(":")
    assert password == auths[host]["password"]
    return user, password


def env_token(others, path) -> str:
    text = (others["files"].directory / f"{path}.json").read_text()
    values = dict(line.split("=", 1) for line in text.splitlines())
    return shlex.split(values["JFROG_ACCESS_TOKEN"])[0]


def tokens_everywhere(engine, target, others, url) -> set[str]:
    a, d, e = target.outputs
    return {primary_record(engine, target).access_token, aws_token(others, a.path),
            docker_password(others, d.path, url)[1], env_token(others, e.path)}


def test_one_token_reaches_every_output_in_its_shape(fan_engine, fan_target, others, users, clock, store):
    engine = fan_engine()
    result = engine.rotate(fan_target)
    assert result.outcome == "rotated", result.error
    assert [o.state for o in result.outputs] == ["rotated"] * 4 and result.outputs[0].primary
    assert {o.token_id for o in result.outputs} == {result.token_id}
    [token] = tokens_everywhere(engine, fan_target, others, users.url)
    assert users.authenticates(token)
    record = primary_record(engine, fan_target)
    assert record.outputs == tuple(o.id for o in fan_target.outputs) and record.outputs_pending == ()
    for output in fan_target.outputs:
        meta = others[output.backend].read_metadata(output.path)
        assert meta["output_of"] == "ci" and meta["token_id"] == result.token_id and "retired" not in meta
    status = target_status(_Stores({STORE_NAME: store, **others}), fan_target)
    assert status.state == "ok" and [o.state for o in status.outputs] == ["in-sync"] * 4

    again = engine.rotate(fan_target)
    assert again.outcome == "rotated" and again.previous_token_id == result.token_id, again.error
    [new] = tokens_everywhere(engine, fan_target, others, users.url)
    assert new != token and users.authenticates(token), "the previous token keeps working for the overlap"
    assert [r.token_id for r in primary_record(engine, fan_target).retired] == [result.token_id]
    clock.advance(fan_target.overlap + 1)
    swept = engine.sweep(fan_target)
    assert swept.retired_revoked == [result.token_id] and swept.errors == [] and swept.orphans_revoked == []
    assert not users.is_token_active(result.token_id) and users.authenticates(new)
    assert users.live_token_count(description_prefix="jfrog-rotator:ci:") == 1


def test_a_failed_output_keeps_its_working_token_and_the_next_run_syncs_it(fan_engine, fan_target, others, users,
                                                                           clock, store):
    engine = fan_engine()
    first = engine.rotate(with_(fan_target, overlap=0))
    aws = fan_target.outputs[0]

    class Down:
        """The AWS output refuses writes (a store outage, a missing permission)."""

        def __init__(self, inner):
            self.inner, self.name, self.metadata_without_secret = inner, inner.name, inner.metadata_without_secret

        def __getattr__(self, item):
            return getattr(self.inner, item)

        def write(self, path, text, **kwargs):
            raise BackendError("PutSecretValue failed: AccessDeniedException", backend="aws", path=path)

    target = with_(fan_target, overlap=0)
    broken = fan_engine(backends={STORE_NAME: store, **others, "aws": Down(others["aws"])})
    result = broken.rotate(target)
    assert result.outcome == "failed" and result.step == "outputs" and result.token_id != first.token_id
    assert f"{aws.key}: PutSecretValue failed: AccessDeniedException" in result.error
    assert [o.state for o in result.outputs] == ["rotated", "failed", "rotated", "rotated"]
    assert result.outputs[1].token_id == first.token_id
    assert aws_token(others, aws.path) != primary_record(engine, target).access_token
    assert users.authenticates(aws_token(others, aws.path)), "overlap 0, yet the token an output holds lives"
    assert primary_record(engine, target).outputs_pending == (aws.id,)
    status = target_status(_Stores({STORE_NAME: store, **others}), target)
    assert status.state == "out-of-sync" and [o.state for o in status.outputs][1] == "behind"
    assert "AccessDeniedException" in (status.last_error or "")
    swept = broken.sweep(target)  # still down: the sync fails, and the token it holds is not revoked
    assert any("AccessDeniedException" in e for e in swept.errors) and first.token_id not in swept.retired_revoked
    assert users.is_token_active(first.token_id)

    mints = users.mint_count
    synced = engine.sync_outputs(target)  # back up: the daemon's job when the target is not due
    assert synced.outcome == "synced" and users.mint_count == mints, synced.error
    assert [o.state for o in synced.outputs] == ["in-sync", "synced", "in-sync", "in-sync"]
    assert aws_token(others, aws.path) == primary_record(engine, target).access_token
    assert primary_record(engine, target).outputs_pending == ()
    status = target_status(_Stores({STORE_NAME: store, **others}), target)
    assert status.state == "ok" and status.last_error is None
    swept = engine.sweep(target)  # overlap 0, counted from the sync: the old token goes now
    assert swept.retired_revoked == [first.token_id] and not users.is_token_active(first.token_id)


class Crash(Exception):
    """Stands for the process dying at a hook."""


def crash_at_output(number):
    """A hook that crashes right before the ``number``-th output write (1: the first after the primary)."""
    seen = []

    def hook(step, when, rotation_id):
        if step is RotationStep.OUTPUTS and when == "before":
            seen.append(rotation_id)
            if len(seen) == number:
                raise Crash

    return hook


def test_the_overlap_of_a_replaced_token_starts_when_the_last_output_moved(fan_engine, fan_target, others, users,
                                                                           clock):
    engine = fan_engine()
    first = engine.rotate(fan_target)
    with pytest.raises(Crash):  # dies before the env file gets the new token
        fan_engine(hook=crash_at_output(3)).rotate(fan_target)
    env = fan_target.outputs[2]
    assert env_token(others, env.path) != primary_record(engine, fan_target).access_token
    assert primary_record(engine, fan_target).outputs_pending == tuple(o.id for o in fan_target.outputs)
    clock.advance(fan_target.overlap - 60)
    planned = engine.rotate(fan_target, dry_run=True)
    assert [o.state for o in planned.outputs] == ["in-sync", "in-sync", "in-sync", "behind"]
    swept = engine.sweep(fan_target)  # syncs the env file: the first token's overlap starts again now
    assert [o.state for o in swept.outputs] == ["in-sync", "in-sync", "in-sync", "synced"] and swept.errors == []
    assert env_token(others, env.path) == primary_record(engine, fan_target).access_token
    assert primary_record(engine, fan_target).outputs_pending == ()
    clock.advance(120)  # past the overlap counted from the crashed rotation, within the one counted from the sync
    assert engine.sweep(fan_target).retired_revoked == [] and users.is_token_active(first.token_id)
    clock.advance(fan_target.overlap)
    assert engine.sweep(fan_target).retired_revoked == [first.token_id]


def test_a_lost_race_touches_no_other_output(fan_engine, fan_target, others, users):
    engine = fan_engine()
    engine.rotate(fan_target)
    before = tokens_everywhere(engine, fan_target, others, users.url)
    rival = fan_engine()

    def race(step, when, rid):
        if step is RotationStep.STORE and when == "before":
            race.won = rival.rotate(fan_target)

    result = fan_engine(hook=race).rotate(fan_target)
    assert race.won.outcome == "rotated" and result.outcome == "lost-race"
    assert [o.state for o in result.outputs] == ["untouched"] * 3
    assert not users.is_token_active(result.token_id)
    winner = primary_record(engine, fan_target)
    assert winner.token_id == race.won.token_id
    assert tokens_everywhere(engine, fan_target, others, users.url) == {winner.access_token}
    assert not before & {winner.access_token}


def test_an_output_holding_a_working_token_is_adopted_in_its_shape_and_that_token_retired(fan_engine, fan_target,
                                                                                         others, users, clock):
    aws = fan_target.outputs[0]
    old = users.create_token("ci", scope="applied-permissions/groups:deployers", expires_in=14400,
                             force_revocable=True)
    others["aws"].client.create_secret(Name=aws.path, SecretString=json.dumps({"username": "ci",
                                                                              "password": old["access_token"]}))
    engine = fan_engine()
    target = with_(fan_target, outputs=(with_(aws, format=None), *fan_target.outputs[1:]))
    result = engine.rotate(target)
    assert result.outcome == "rotated", result.error
    kept = json.loads(aws_token(others, aws.path))
    assert set(kept) == {"username", "password"} and kept["password"] == primary_record(engine, target).access_token
    assert old["token_id"] in [r.token_id for r in primary_record(engine, target).retired]
    clock.advance(target.overlap + 1)
    assert old["token_id"] in engine.sweep(target).retired_revoked


def test_an_output_that_holds_no_token_is_left_untouched_and_reported(fan_engine, fan_target, others, users):
    aws = fan_target.outputs[0]
    others["aws"].client.create_secret(Name=aws.path, SecretString='{"api_key": "not a token"}')
    result = fan_engine().rotate(fan_target)
    assert result.outcome == "failed" and result.step == "outputs"
    assert "holds no JFrog token" in result.outputs[1].error and "left untouched" in result.outputs[1].error
    assert aws_token(others, aws.path) == '{"api_key": "not a token"}'
    assert [o.state for o in result.outputs] == ["rotated", "failed", "rotated", "rotated"]
    assert "nothing revoked" in " ".join(result.warnings)


@pytest.mark.parametrize("step", list(RotationStep))
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kind, behind", [("file", False), ("vault-kv2", False), ("vault-kv1", False), ("aws", False),
                                          ("file", True), ("aws", True)],
                         ids=["file", "vault-kv2", "vault-kv1", "aws", "file-one-behind", "aws-one-behind"])
def test_a_crash_at_any_step_of_a_two_output_target_converges(engines, make_store, target, others, users, kind,
                                                             behind, step, when):
    """A primary on each store kind + one AWS output, overlap 0 (what an output holds is all that
    keeps a token alive). ``one-behind``: the previous run died before the AWS output, so the
    crashed run starts by syncing it. (A SIGKILL at every step: tests/reliability/test_crash_matrix.py.)"""
    two = with_(target, overlap=0, outputs=(Output("aws", f"jfrog/two-{uuid.uuid4().hex[:8]}", "token"),))
    primary = make_store(kind)

    def fan_engine(**kwargs):
        return engines(primary, **kwargs)

    engine = fan_engine()
    assert engine.rotate(two).outcome == "rotated"
    if behind:
        with pytest.raises(Crash):  # the previous rotation died before the AWS output
            fan_engine(hook=crash_at_output(1)).rotate(two)

    def hook(s, w, rid):
        if (s, w) == (step, when):
            raise Crash

    with pytest.raises(Crash):
        fan_engine(hook=hook).rotate(two)
    again = engine.rotate(two)
    assert again.outcome == "rotated", again.error
    swept = engine.sweep(two)
    assert swept.errors == [], swept.errors
    record = primary_record(engine, two)
    assert aws_token(others, two.outputs[0].path) == record.access_token and users.authenticates(record.access_token)
    assert record.outputs_pending == ()
    known = still_known(primary, two.path)  # a revoked entry may stay in the record until the next write
    assert users.live_token_count(description_prefix="jfrog-rotator:ci:") == len(known)


def test_metadata_that_lists_other_pending_outputs_than_the_record_is_repaired(fan_engine, fan_target, others,
                                                                               store):
    """The primary's record is the truth; a metadata write lost after it (e.g. an AWS tag call that
    failed) must not keep the target out of sync."""
    engine = fan_engine()
    assert engine.rotate(fan_target).outcome == "rotated"
    aws = fan_target.outputs[0]
    store.patch_metadata(fan_target.path, {"outputs_pending": aws.id})  # as left by a lost metadata write
    stores = _Stores({STORE_NAME: store, **others})
    # status believes it where it reads only metadata (Vault KV v2, AWS); elsewhere it reads the record
    assert target_status(stores, fan_target).state == ("out-of-sync" if store.metadata_without_secret else "ok")
    synced = engine.sync_outputs(fan_target)
    assert synced.outcome == "synced" and synced.error is None
    if store.read(fan_target.path).metadata:  # READ sees the metadata (not on AWS, whose read skips the tags)
        assert any("as pending" in w for w in synced.warnings), synced.warnings
    status = target_status(stores, fan_target)
    assert status.state == "ok" and [o.state for o in status.outputs] == ["in-sync"] * 4


def test_a_replica_that_lost_the_lease_writes_no_output_and_mints_nothing(fan_engine, fan_target, others, users):
    """The daemon's fence (its lease check) is asked before a sync copies what READ found to the
    outputs: a replica paused past its lease must not copy a token read before the pause."""
    first = fan_engine().rotate(fan_target)
    with pytest.raises(Crash):  # the primary moved on; every other output still holds the first token
        fan_engine(hook=crash_at_output(1)).rotate(fan_target)
    aws = fan_target.outputs[0]
    behind = aws_token(others, aws.path)
    assert behind != primary_record(fan_engine(), fan_target).access_token
    fenced = fan_engine()
    fenced.fence = lambda: "not the leader any more: the lease is held by r2"
    mints = users.mint_count

    for result in (fenced.rotate(fan_target, reason="schedule"), fenced.sync_outputs(fan_target)):
        assert result.outcome == "skipped", result.error
        assert "not the leader any more" in " ".join(result.warnings)
    swept = fenced.sweep(fan_target)
    assert swept.retired_revoked == [] and swept.orphans_revoked == []
    assert users.mint_count == mints and aws_token(others, aws.path) == behind
    assert users.is_token_active(first.token_id)
    assert fan_engine().sync_outputs(fan_target).outcome == "synced"  # the leader's next run catches up
    assert aws_token(others, aws.path) == primary_record(fan_engine(), fan_target).access_token
