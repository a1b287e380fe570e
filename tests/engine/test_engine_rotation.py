"""The rotation state machine against the emulator and the file store."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace as with_

import pytest

from backends.base import BackendError, CASConflict, WriteOutcomeUnknown
from rotator.core.record import SecretRecord
from rotator.core.tags import description_tag
from rotator.engine import RotationStep
from tests.fixtures.stores import read_raw, write_raw


def stored_record(store, target) -> SecretRecord:
    return SecretRecord.loads(store.read(target.path).text)


def test_first_rotation_bootstraps_the_store(engine, store, target, emulator, admin):
    result = engine.rotate(target)
    assert result.outcome == "rotated" and result.strategy == "recreate" and result.generation == 1
    record = stored_record(store, target)
    assert record.token_id == result.token_id and record.username == "ci"
    assert record.scope == "applied-permissions/groups:deployers" and record.url == emulator.url
    assert record.expires_at is not None and record.retired == ()
    assert emulator.authenticates(record.access_token)
    assert admin.get_token(record.token_id)["description"] == description_tag("ci", result.rotation_id)


def test_second_rotation_retires_the_previous_token_with_overlap(engine, store, target, emulator, clock):
    first = engine.rotate(target)
    second = engine.rotate(target)
    record = stored_record(store, target)
    assert record.token_id == second.token_id and record.generation == 2
    assert [r.token_id for r in record.retired] == [first.token_id]
    assert (record.retired[0].revoke_after - clock.now).total_seconds() == pytest.approx(3600, abs=5)
    assert emulator.is_token_active(first.token_id), "the previous token keeps working during the overlap"


def test_overlap_zero_revokes_previous_at_once(engine, store, target, emulator):
    target = with_(target, overlap=0)
    first = engine.rotate(target)
    second = engine.rotate(target)
    assert second.revoked == [first.token_id]
    assert not emulator.is_token_active(first.token_id)
    assert store.read_metadata(target.path)["retired_count"] == "0", "nothing is left waiting"
    third = engine.rotate(target)
    assert third.revoked == [second.token_id]
    assert stored_record(store, target).retired[:-1] == (), "the next rotation's write drops the revoked entry"


def test_sweep_revokes_retired_after_overlap(engine, store, target, emulator, clock):
    first = engine.rotate(target)
    engine.rotate(target)
    assert engine.sweep(target).retired_revoked == []
    clock.advance(3601)
    swept = engine.sweep(target)
    assert swept.retired_revoked == [first.token_id]
    assert not emulator.is_token_active(first.token_id)
    assert store.read_metadata(target.path)["retired_count"] == "0"
    assert engine.sweep(target).retired_revoked == [], "revoked once"
    engine.rotate(target)
    assert first.token_id not in {r.token_id for r in stored_record(store, target).retired}


def test_non_revocable_retired_token_is_kept_until_it_expires(engine, store, target, emulator, clock):
    target = with_(target, overlap=0, token=with_(target.token, force_revocable=None))
    first = engine.rotate(target)
    second = engine.rotate(target)
    assert second.revoked == [] and emulator.is_token_active(first.token_id)
    assert [r.token_id for r in stored_record(store, target).retired] == [first.token_id]
    clock.advance(14401)  # past the old token's expiry: nothing left to revoke, the entry goes
    assert engine.sweep(target).retired_revoked == []
    assert store.read_metadata(target.path)["retired_count"] == "0"


def test_unknown_keys_written_by_people_are_kept(engine, store, target):
    engine.rotate(target)
    stored = store.read(target.path)
    data = json.loads(stored.text)
    data["owner"] = "team-ci"
    data["rotator"]["note"] = "do not delete"
    store.write(target.path, json.dumps(data), expected_version=stored.version, metadata={}, rotation_id=str(uuid.uuid4()))
    engine.rotate(target)
    data = json.loads(store.read(target.path).text)
    assert data["owner"] == "team-ci" and data["rotator"]["note"] == "do not delete"


def test_consumer_always_reads_a_working_token(make_engine, store, target, emulator):
    seen = []

    def hook(step, when, rid):
        stored = store.read(target.path)
        if stored.text is not None:
            token = SecretRecord.loads(stored.text).access_token
            seen.append((step, when, emulator.authenticates(token)))

    engine = make_engine(store, hook=hook)
    engine.rotate(target)
    engine.rotate(with_(target, overlap=0))
    engine.rotate(target)
    assert seen and all(ok for _, _, ok in seen), seen


def test_reference_token_is_stored_and_works(engine, store, target, emulator):
    target = with_(target, token=with_(target.token, reference=True))
    engine.rotate(target)
    record = stored_record(store, target)
    assert record.reference_token and record.reference_token.startswith("cmVmdGtu")
    assert emulator.authenticates(record.reference_token)
    engine.rotate(with_(target, overlap=0))
    assert not emulator.authenticates(record.reference_token), "revoking by id ends the reference token too"


# -- strategies -------------------------------------------------------------------------------


def test_refresh_strategy_rotates_and_old_token_dies(engine, store, target, emulator):
    target = with_(target, strategy="refresh", token=with_(target.token, refreshable=True))
    first = engine.rotate(target)
    assert first.strategy == "recreate"  # bootstrap: nothing to refresh yet
    old = stored_record(store, target)
    second = engine.rotate(target)
    assert second.strategy == "refresh" and second.outcome == "rotated"
    new = stored_record(store, target)
    assert new.token_id != old.token_id and new.refresh_token != old.refresh_token
    assert not emulator.authenticates(old.access_token)
    assert new.retired == (), "a refreshed token is dead at once: nothing to retire"


def test_refresh_falls_back_to_recreate_when_refresh_token_is_gone(engine, store, target, emulator, admin):
    target = with_(target, strategy="refresh", token=with_(target.token, refreshable=True))
    engine.rotate(target)
    old = stored_record(store, target)
    admin.revoke_token(old.token_id)  # refresh token gone with its token
    result = engine.rotate(target)
    assert result.outcome == "rotated" and result.strategy == "recreate"
    assert emulator.authenticates(stored_record(store, target).access_token)


def test_refresh_without_fallback_fails_and_keeps_the_store(engine, store, target, emulator, admin):
    target = with_(target, strategy="refresh", fallback_to_recreate=False, token=with_(target.token, refreshable=True))
    engine.rotate(target)
    old = stored_record(store, target)
    admin.revoke_token(old.token_id)
    result = engine.rotate(target)
    assert result.outcome == "failed" and result.step == "mint"
    assert stored_record(store, target).token_id == old.token_id


def test_self_strategy_needs_no_admin(make_engine, store, target, emulator):
    target = with_(target, strategy="self", token=with_(target.token, groups=None, username=None, expiry=3600))
    seed = emulator.create_token("ci", expires_in=7200)
    store.write(target.path, json.dumps({"access_token": seed["access_token"], "token_id": seed["token_id"],
                                         "rotator": {"target": "ci"}}), expected_version=None, metadata={},
                rotation_id=str(uuid.uuid4()))
    engine = make_engine(store, has_admin=False)
    result = engine.rotate(target)
    assert result.outcome == "rotated" and result.strategy == "self", result.error
    record = stored_record(store, target)
    assert record.username == "ci" and emulator.authenticates(record.access_token)
    assert [r.token_id for r in record.retired] == [seed["token_id"]]


def test_self_strategy_cannot_bootstrap_without_admin(make_engine, store, target, emulator):
    engine = make_engine(store, has_admin=False)
    result = engine.rotate(with_(target, strategy="self"))
    assert result.outcome == "failed" and "needs a token in the store" in result.error
    assert emulator.mint_count == 0 and store.read(target.path).text is None


def test_self_strategy_sweep_revokes_with_the_current_token(make_engine, store, target, emulator, clock):
    target = with_(target, strategy="self", overlap=60, token=with_(target.token, groups=None, username=None))
    seed = emulator.create_token("ci", expires_in=14400, force_revocable=True)
    store.write(target.path, json.dumps({"access_token": seed["access_token"], "token_id": seed["token_id"]}),
                expected_version=None, metadata={}, rotation_id=str(uuid.uuid4()))
    engine = make_engine(store, has_admin=False)
    engine.rotate(target)
    clock.advance(61)
    assert engine.sweep(target).retired_revoked == [seed["token_id"]]
    assert not emulator.is_token_active(seed["token_id"])


# -- failures ---------------------------------------------------------------------------------


MALFORMED_OBJECTS = [
    ('{"token_id": "x"}', "field 'access_token' is missing"),
    ('{"access_token": "a", "token_id": "b", "rotator": {"retired": [{"token_id": "c", "revoke_after": "soon"}]}}',
     "rotator.retired[0].revoke_after"),
    ('{"access_token": "a", "token_id": "b", "rotator": {"generation": -1}}', "rotator.generation"),
]


@pytest.mark.parametrize("text,message", MALFORMED_OBJECTS)
def test_malformed_record_is_reported_and_not_overwritten(engine, store, target, emulator, text, message):
    write_raw(store, target.path, text)
    before = read_raw(store, target.path)
    result = engine.rotate(target)
    assert result.outcome == "failed" and result.step == "read"
    assert message in result.error and "left untouched" in result.error
    assert read_raw(store, target.path) == before
    assert emulator.mint_count == 0


@pytest.mark.parametrize("store_kind", ["file", "aws"], indirect=True)  # Vault KV holds JSON objects only
@pytest.mark.parametrize("text,message", [("{not json", "not valid JSON"), ('["a", "list"]', "not an object")])
def test_value_that_is_not_a_json_object_is_reported_and_kept(engine, store, target, emulator, text, message):
    write_raw(store, target.path, text)
    result = engine.rotate(target)
    assert result.outcome == "failed" and message in result.error
    assert read_raw(store, target.path) == text
    assert emulator.mint_count == 0


def test_record_of_another_target_is_refused(engine, store, target, emulator):
    engine.rotate(with_(target, name="other"))
    result = engine.rotate(target)
    assert result.outcome == "failed" and "belongs to target 'other'" in result.error
    assert emulator.mint_count == 1


def test_verify_failure_revokes_the_new_token(engine, store, target, emulator):
    engine.rotate(target)
    before = stored_record(store, target)
    emulator.inject_fault("/access/api/v1/tokens/me", status=500, count=20)
    result = engine.rotate(target)
    assert result.outcome == "failed" and result.step == "verify"
    assert not emulator.is_token_active(result.token_id)
    assert stored_record(store, target).token_id == before.token_id


def test_mint_failure_leaves_store_untouched(engine, store, target, emulator):
    engine.rotate(target)
    before = stored_record(store, target)
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=500, count=20)
    result = engine.rotate(target)
    assert result.outcome == "failed" and result.step == "mint" and "500" in result.error
    after = stored_record(store, target)
    assert (after.access_token, after.generation, after.retired) == (before.access_token, 1, ())


class FlakyStore:
    """Wraps a store; its next write raises ``error`` (after writing, if ``land``)."""

    def __init__(self, inner, error, land=False):
        self.inner, self.error, self.land = inner, error, land
        self.name, self.metadata_without_secret = inner.name, inner.metadata_without_secret

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def write(self, path, text, **kwargs):
        if self.error is None:
            return self.inner.write(path, text, **kwargs)
        error, self.error = self.error, None
        if self.land:
            self.inner.write(path, text, **kwargs)
        raise error


def test_store_failure_revokes_the_new_token(make_engine, store, target, emulator):
    make_engine(store).rotate(target)
    flaky = FlakyStore(store, BackendError("disk full", backend="store", path="ci"))
    result = make_engine(flaky).rotate(target)
    assert result.outcome == "failed" and result.step == "store" and "disk full" in result.error
    assert not emulator.is_token_active(result.token_id)


def test_unknown_write_outcome_that_landed_keeps_the_token(make_engine, store, target, emulator):
    flaky = FlakyStore(store, WriteOutcomeUnknown("timed out", backend="store", path="ci"), land=True)
    result = make_engine(flaky).rotate(target)
    assert result.outcome == "rotated"
    assert emulator.is_token_active(result.token_id)
    assert stored_record(store, target).token_id == result.token_id


def test_unknown_write_outcome_that_did_not_land_revokes(make_engine, store, target, emulator):
    flaky = FlakyStore(store, WriteOutcomeUnknown("timed out", backend="store", path="ci"), land=False)
    result = make_engine(flaky).rotate(target)
    assert result.outcome == "failed" and not emulator.is_token_active(result.token_id)


def test_lost_cas_race_revokes_our_token(make_engine, store, target, emulator):
    winner = make_engine(store)
    raced = {}

    def hook(step, when, rid):
        if step is RotationStep.STORE and when == "before" and not raced:
            raced["result"] = winner.rotate(target)

    loser = make_engine(store, hook=hook)
    winner.rotate(target)
    result = loser.rotate(target)
    assert result.outcome == "lost-race"
    assert not emulator.is_token_active(result.token_id)
    assert stored_record(store, target).token_id == raced["result"].token_id
    assert emulator.is_token_active(raced["result"].token_id)


def test_cas_conflict_from_store_is_a_race_not_a_failure(make_engine, store, target, emulator):
    flaky = FlakyStore(store, CASConflict("changed", backend="store", path="ci"))
    result = make_engine(flaky).rotate(target)
    assert result.outcome == "lost-race" and not emulator.is_token_active(result.token_id)


@pytest.mark.parametrize("step", [s for s in RotationStep if s is not RotationStep.OUTPUTS])  # fan-out: test_fanout.py
@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_at_any_step_converges_after_rerun_and_sweep(make_engine, store, target, emulator, step, when):
    make_engine(store).rotate(target)

    class Crash(Exception):
        pass

    def hook(s, w, rid):
        if (s, w) == (step, when):
            raise Crash

    with pytest.raises(Crash):
        make_engine(store, hook=hook).rotate(target)
    engine = make_engine(store)
    assert engine.rotate(target).outcome == "rotated"
    engine.sweep(target)
    record = stored_record(store, target)
    known = {record.token_id} | {r.token_id for r in record.retired}
    assert emulator.authenticates(record.access_token)
    assert emulator.live_token_count(description_prefix="jfrog-rotator:ci:") == len(known)


def test_sweep_revokes_orphans_but_not_other_targets(engine, store, target, emulator):
    engine.rotate(target)
    orphan = emulator.create_token("ci", scope="applied-permissions/groups:deployers",
                                   description="jfrog-rotator:ci:crashed-run extra")
    lookalike = emulator.create_token("ci", scope="applied-permissions/groups:deployers",
                                      description="jfrog-rotator:ci-deployer:other")
    swept = engine.sweep(target)
    assert swept.orphans_revoked == [orphan["token_id"]]
    assert emulator.is_token_active(lookalike["token_id"])
    assert emulator.authenticates(stored_record(store, target).access_token)


def test_sweep_spares_young_orphans_of_inflight_rotations(engine, store, target, emulator):
    engine.rotate(target)
    young = emulator.create_token("ci", description="jfrog-rotator:ci:inflight", scope="applied-permissions/user")
    assert engine.sweep(with_(target, orphan_grace=600)).orphans_revoked == []
    assert emulator.is_token_active(young["token_id"])


def test_dry_run_mints_and_writes_nothing(engine, store, target, emulator):
    result = engine.rotate(target, dry_run=True)
    assert result.outcome == "dry-run" and emulator.mint_count == 0 and store.read(target.path).text is None


def test_failure_is_recorded_in_metadata(engine, store, target, emulator):
    engine.rotate(target)
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=500, count=20)
    engine.rotate(target)
    assert "500" in store.read_metadata(target.path)["last_error"]
    emulator.clear_faults()
    engine.rotate(target)
    assert "last_error" not in store.read_metadata(target.path)


def test_no_secret_in_logs(engine, store, target, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    t = with_(target, token=with_(target.token, refreshable=True, reference=True), overlap=0)
    engine.rotate(t)
    first = stored_record(store, t)
    emulator.inject_fault("/access/api/v1/tokens/me", status=500, count=20)
    engine.rotate(t)
    emulator.clear_faults()
    engine.rotate(t)
    second = stored_record(store, t)
    for secret in (first.access_token, first.refresh_token, first.reference_token, second.access_token,
                   second.refresh_token, second.reference_token, emulator.admin_token):
        assert secret not in caplog.text


def test_only_if_version_skips_when_the_store_moved_on(engine, store, target, emulator):
    engine.rotate(target)
    seen = store.read(target.path).version
    engine.rotate(target)  # someone else served the request meanwhile
    result = engine.rotate(target, reason="vault-flag", only_if_version=seen)
    assert result.outcome == "skipped" and result.token_id is None
    assert emulator.mint_count == 2
    current = store.read(target.path).version
    assert engine.rotate(target, reason="vault-flag", only_if_version=current).outcome == "rotated"
