"""One store write per rotation: the version history of Vault KV v2 and AWS Secrets Manager.

A rotation writes its record once. Retired tokens it finds due are revoked before that write, so
the record leaves them out; a token revoked after it (overlap 0) or by a sweep changes only the
metadata, and the next rotation's write drops it from the record. Real OpenBao and moto's server.
"""

from __future__ import annotations

from dataclasses import replace as with_

import pytest

from rotator.core.record import SecretRecord
from tests.fixtures.stores import versions_kept

VERSIONED = ("vault-kv2", "aws")


@pytest.fixture(params=VERSIONED)
def versioned(request, make_store):
    return make_store(request.param)


def stored(store, target) -> SecretRecord:
    return SecretRecord.loads(store.read(target.path).text)


def deletes_of(emulator, token_id: str) -> int:
    return sum(1 for r in emulator.requests if r.method == "DELETE" and r.path == f"/access/api/v1/tokens/{token_id}")


def test_each_rotation_with_overlap_zero_writes_one_version(make_engine, versioned, target, emulator):
    engine, target = make_engine(versioned), with_(target, overlap=0)
    results = [engine.rotate(target) for _ in range(4)]
    assert [r.outcome for r in results] == ["rotated"] * 4
    assert versions_kept(versioned, target.path) == 4
    for previous, result in zip(results, results[1:]):
        assert result.revoked == [previous.token_id] and not emulator.is_token_active(previous.token_id)
    assert [r.token_id for r in stored(versioned, target).retired] == [results[2].token_id], \
        "only the token the last rotation revoked is still listed; its metadata says it is done"
    assert versioned.read_metadata(target.path)["retired_count"] == "0"
    assert emulator.live_token_count(description_prefix="jfrog-rotator:ci:") == 1


def test_a_sweep_revokes_without_a_version_and_the_next_rotation_drops_the_entry(make_engine, versioned, target,
                                                                                   emulator, clock):
    engine = make_engine(versioned)
    first = engine.rotate(target)
    engine.rotate(target)
    clock.advance(3601)
    assert engine.sweep(target).retired_revoked == [first.token_id]
    assert versions_kept(versioned, target.path) == 2, "the sweep wrote no version"
    assert versioned.read_metadata(target.path)["retired_count"] == "0"
    third = engine.rotate(target)
    assert versions_kept(versioned, target.path) == 3
    assert first.token_id not in {r.token_id for r in stored(versioned, target).retired}
    assert third.revoked == [], "the entry is dropped, not reported revoked again"


def test_on_vault_a_token_revoked_by_a_sweep_is_not_revoked_again(make_engine, make_store, target, emulator, clock):
    store = make_store("vault-kv2")
    engine = make_engine(store)
    first = engine.rotate(target)
    engine.rotate(target)
    clock.advance(3601)
    engine.sweep(target)
    engine.rotate(target)
    engine.sweep(target)
    assert deletes_of(emulator, first.token_id) == 1, "the metadata beside the record says it is done"


def test_a_due_token_is_revoked_before_the_write_that_leaves_it_out(make_engine, versioned, target, emulator, clock):
    engine = make_engine(versioned)
    first = engine.rotate(target)
    second = engine.rotate(target)
    clock.advance(3601)  # first is due; second is replaced by the next rotation and waits its overlap
    third = engine.rotate(target)
    assert third.revoked == [first.token_id] and not emulator.is_token_active(first.token_id)
    assert [r.token_id for r in stored(versioned, target).retired] == [second.token_id]
    assert emulator.is_token_active(second.token_id), "never revoked before its overlap is over"
    assert versions_kept(versioned, target.path) == 3


def test_a_failed_revocation_keeps_the_entry_for_the_sweep(make_engine, store, target, emulator, clock):
    engine = make_engine(store)
    first = engine.rotate(target)
    engine.rotate(target)
    clock.advance(3601)
    emulator.inject_fault(f"/access/api/v1/tokens/{first.token_id}", method="DELETE", status=500, count=20)
    third = engine.rotate(target)
    assert third.outcome == "rotated" and third.revoked == []
    assert first.token_id in {r.token_id for r in stored(store, target).retired}, "a live token id is never lost"
    assert emulator.is_token_active(first.token_id)
    emulator.clear_faults()
    assert engine.sweep(target).retired_revoked == [first.token_id]
    assert not emulator.is_token_active(first.token_id)
