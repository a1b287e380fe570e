"""Tokens shorter than JFrog's persistency threshold are never stored by Access, so they cannot be
revoked: the retire policies do not ask for it, and the engine leaves them to expire
(https://jfrog.com/help/r/jfrog-platform-administration-documentation/persistency-threshold)."""

from __future__ import annotations

from dataclasses import replace as with_
from datetime import datetime, timedelta, timezone

import pytest

from rotator.core.record import RetiredToken, SecretRecord
from rotator.emulator import AccessPolicy, Emulator
from rotator.engine import AfterNextRotation, Engine, Overlap
from rotator.engine.records import PERSISTENCY_THRESHOLD, is_stored_by_access
from rotator.jfrog import AccessClient
from tests.fixtures.stores import STORE_NAME

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def record(lifetime: timedelta | None, *, retired=()) -> SecretRecord:
    issued = NOW - HOUR / 2
    return SecretRecord(access_token="a" * 40, token_id="cur", username="ci", scope="applied-permissions/user",
                        url="https://acme.jfrog.io", issued_at=issued,
                        expires_at=issued + lifetime if lifetime is not None else None, target="ci", retired=retired)


# -- the rule ---------------------------------------------------------------------------------
def test_the_default_is_jfrogs_three_hours():
    assert PERSISTENCY_THRESHOLD == 10_800


@pytest.mark.parametrize("lifetime, threshold, stored", [
    (timedelta(seconds=10_799), 10_800, False),
    (timedelta(seconds=10_800), 10_800, True),
    (None, 10_800, True),                      # a token that never expires is always stored
    (timedelta(minutes=5), 0, True),           # 0: every token is stored
])
def test_is_stored_by_access(lifetime, threshold, stored):
    assert is_stored_by_access(record(lifetime), threshold) is stored


# -- the CLI's and the daemon's policy --------------------------------------------------------
def test_overlap_lists_a_stored_token():
    assert Overlap(600).retired(record(4 * HOUR), "recreate", "new", NOW) == (
        RetiredToken("cur", NOW + timedelta(seconds=600), record(4 * HOUR).expires_at),)


def test_overlap_does_not_list_a_token_jfrog_never_stored():
    older = RetiredToken("older", NOW + HOUR)
    assert Overlap(600).retired(record(HOUR, retired=(older,)), "recreate", "new", NOW) == (older,)


def test_overlap_follows_the_configured_threshold():
    assert [r.token_id for r in Overlap(600, persistency_threshold=1800).retired(record(HOUR), "self", "new", NOW)] \
        == ["cur"]


# -- the Lambda's policy ----------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["after-next", "immediately", "never"])
def test_after_next_lists_an_unstored_token_as_due_only_after_it_expired(policy):
    current = record(HOUR)
    [entry] = AfterNextRotation(policy).retired(current, "recreate", "new", NOW)
    assert entry.token_id == "cur" and entry.expires_at == current.expires_at
    assert entry.revoke_after > current.expires_at, "due only once expired: the retire step never revokes it"


def test_the_next_rotation_does_not_pull_an_unstored_token_forward():
    demoted = AfterNextRotation().retired(record(HOUR), "recreate", "new", NOW)
    later = with_(record(HOUR, retired=demoted), token_id="new", issued_at=NOW)
    carried = AfterNextRotation().retired(later, "recreate", "newer", NOW + HOUR / 4)
    assert carried[0] == demoted[0]


def test_the_next_rotation_still_makes_a_stored_token_due():
    demoted = AfterNextRotation().retired(record(4 * HOUR), "recreate", "new", NOW)
    later = with_(record(4 * HOUR, retired=demoted), token_id="new", issued_at=NOW)
    carried = AfterNextRotation().retired(later, "recreate", "newer", NOW + HOUR)
    assert carried[0].token_id == "cur" and carried[0].revoke_after == NOW + HOUR


# -- the engine against the emulator ----------------------------------------------------------
def stored_record(store, target) -> SecretRecord:
    return SecretRecord.loads(store.read(target.path).text)


def test_a_short_token_is_left_to_expire_not_listed_as_retired(engine, store, target, emulator):
    target = with_(target, overlap=0, token=with_(target.token, expiry=3600))
    first = engine.rotate(target)
    second = engine.rotate(target)
    assert second.outcome == "rotated" and second.revoked == []
    assert stored_record(store, target).retired == ()
    assert emulator.is_token_active(first.token_id), "it cannot be revoked: it works until it expires"
    assert engine.sweep(target).retired_revoked == [] and engine.sweep(target).orphans_revoked == []


def test_a_lower_threshold_on_both_sides_lets_short_tokens_be_revoked(signing_key, store, target, clock):
    target = with_(target, overlap=0, token=with_(target.token, expiry=3600))
    with Emulator(policy=AccessPolicy(persistency_threshold=1800), signing_key=signing_key) as emulator, \
            AccessClient(emulator.url, access_token=emulator.admin_token) as client:
        emulator.create_user("ci", groups=("deployers",))
        engine = Engine(jfrog=client, backends={STORE_NAME: store}, has_admin=True, clock=clock,
                        verify_delay=0.01, persistency_threshold=1800)
        first = engine.rotate(target)
        second = engine.rotate(target)
        assert second.revoked == [first.token_id] and not emulator.is_token_active(first.token_id)
