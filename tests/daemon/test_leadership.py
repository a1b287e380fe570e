"""The election and the fencing of ``rotator.daemon.leadership``, round by round, on the real stores.

Each replica is a :class:`Leadership` over a store of its own (sharing the data of one OpenBao
mount, one moto server or one directory) with a monotonic clock the test moves: no thread, no
sleep, every round is a :meth:`Leadership.tick` the test calls. The daemon processes that run
these loops for real are in tests/daemon/test_replicas.py.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from backends.base import BackendError
from rotator.core.record import SecretRecord
from rotator.core.target import Target
from rotator.core.token_spec import TokenSpec
from rotator.daemon.leadership import Leadership, MintGuard
from rotator.engine import Engine
from rotator.jfrog import AccessClient
from tests.fixtures.clocks import Clock
from tests.fixtures.stores import STORE_NAME

TTL = 15.0
EXPIRING = ("vault-kv2", "aws")


class Replica:
    """One replica: a store, a clock and its election, counting what it announced."""

    def __init__(self, store, name: str, path: str) -> None:
        self.clock = Clock(1000.0)
        self.announced: list[str] = []
        self.lease = Leadership(store, path=path, ttl=TTL, replica=name, clock=self.clock,
                                on_elected=lambda: self.announced.append("elected"),
                                on_deposed=lambda: self.announced.append("deposed"))

    def round(self, seconds: float = TTL / 3) -> bool:
        """Let ``seconds`` pass, then one round of the loop; whether it leads afterwards."""
        self.clock.now += seconds
        self.lease.tick()
        self.lease.announce()
        return self.lease.leading


def replicas(make_store, kind: str, count: int = 2) -> list[Replica]:
    path = f"leases/{uuid.uuid4().hex[:12]}"
    return [Replica(make_store(kind), f"replica-{i}", path) for i in range(count)]


@pytest.mark.parametrize("kind", EXPIRING)
def test_a_renewing_leader_keeps_the_lease_round_after_round(make_store, kind):
    first, second, third = replicas(make_store, kind, 3)
    assert first.round(0) and not second.round(0) and not third.round(0)
    for _ in range(12):  # four TTLs: the standbys see a new version at every round
        leaders = [r.round() for r in (first, second, third)]
        assert leaders == [True, False, False]
    assert first.announced == ["elected"] and second.announced == third.announced == []
    assert second.lease.seen_holder == first.lease.holder


@pytest.mark.parametrize("kind", EXPIRING)
def test_a_standby_takes_over_once_it_saw_the_lease_unchanged_for_a_ttl(make_store, kind):
    first, second = replicas(make_store, kind)
    assert first.round(0)
    assert not second.round(0)  # sees the lease: the TTL counts from here, by its own clock
    assert not second.round(TTL - 0.5), "half a second short of the TTL: still the other's"
    assert second.round(0.5), "unchanged for a whole TTL: taken over"
    assert second.announced == ["elected"] and second.lease.term == 1
    # the old leader's own count ran out too; its next round finds the lease moved on
    first.clock.now += TTL
    assert not first.lease.leading
    assert not first.round(0)
    assert first.announced == ["elected", "deposed"]
    assert first.lease.seen_holder == second.lease.holder


@pytest.mark.parametrize("kind", EXPIRING)
def test_a_replica_starting_late_waits_a_whole_ttl_whatever_the_record_says(make_store, kind):
    first, second = replicas(make_store, kind)
    assert first.round(0)
    second.clock.now += 10 * TTL  # a clock far ahead changes nothing: only what it saw counts
    assert not second.round(0)
    assert not second.round(TTL / 2)
    assert second.round(TTL / 2)


@pytest.mark.parametrize("kind", EXPIRING + ("file",))
def test_a_released_lease_is_taken_at_the_next_round(make_store, kind):
    first, second = replicas(make_store, kind)
    assert first.round(0) and not second.round(0)
    first.lease.stop()  # a clean stop (SIGTERM) releases it
    assert not first.lease.leading
    assert second.round(0.1), "no TTL to wait for"


def test_a_flock_is_never_taken_over_while_its_holder_lives(make_store):
    first, second = replicas(make_store, "file")
    assert first.round(0)
    for _ in range(6):
        assert not second.round(TTL), "a live holder keeps a flock, however long it is quiet"
    assert first.lease.confirm() is None


@pytest.mark.parametrize("kind", EXPIRING)
def test_a_leader_paused_past_its_ttl_is_fenced_at_its_next_mint_check(make_store, kind):
    first, second = replicas(make_store, kind)
    assert first.round(0) and not second.round(0)
    first.clock.now += 3 * TTL  # SIGSTOP: its clock runs on, its loop does not
    assert second.round(TTL) and second.round()
    refused = first.lease.confirm()
    assert refused and second.lease.holder in refused and "not the leader" in refused
    assert not first.lease.leading
    assert second.lease.confirm() is None


@pytest.mark.parametrize("kind", EXPIRING)
def test_a_paused_leader_nobody_took_over_renews_at_its_mint_check(make_store, kind):
    first, second = replicas(make_store, kind)
    assert first.round(0)
    held = first.lease.held_version
    first.clock.now += 3 * TTL
    assert not first.lease.leading
    assert first.lease.confirm() is None, "the renewal proves nobody took over"
    assert first.lease.leading and first.lease.held_version != held


# -- the engine's before_mint ----------------------------------------------------------------------
@pytest.fixture
def guarded(make_store, emulator):
    """``guarded(kind)`` -> (engine with a MintGuard, its Replica, another Replica, target)."""
    emulator.create_user("ci", groups=("deployers",))
    clients = []

    def make(kind: str, strategy: str = "recreate"):
        mine, other = replicas(make_store, kind)
        client = AccessClient(emulator.url, access_token=emulator.admin_token)
        clients.append(client)
        engine = Engine(jfrog=client, backends={STORE_NAME: mine.lease.store}, has_admin=True, verify_delay=0.01,
                        before_mint=MintGuard(mine.lease))
        target = Target(name="ci", backend=STORE_NAME, path=f"jfrog/guarded-{uuid.uuid4().hex[:8]}",
                        token=TokenSpec(username="ci", groups="deployers", expiry=14400, force_revocable=True,
                                        refreshable=strategy == "refresh"), strategy=strategy, overlap=3600)
        return engine, mine, other, target

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("kind", EXPIRING + ("file",))
def test_the_leader_rotates_under_its_claim_and_a_standby_mints_nothing(guarded, emulator, kind):
    engine, mine, other, target = guarded(kind)
    assert mine.round(0)
    assert engine.rotate(target).outcome == "rotated"
    before, stored = emulator.mint_count, engine.backends[STORE_NAME].read(target.path)
    # another replica's claim on the version we are about to rotate from holds us back
    assert engine.backends[STORE_NAME].claim_rotation(target.path, stored.version, holder=other.lease.holder,
                                                      rotation_id="theirs", ttl=TTL) == other.lease.holder
    held_back = engine.rotate(target)
    assert held_back.outcome == "skipped" and other.lease.holder in held_back.warnings[0]
    assert emulator.mint_count == before and engine.backends[STORE_NAME].read(target.path).text == stored.text
    # a replica that is not the leader mints nothing at all
    mine.lease.stop()
    standby = engine.rotate(target)
    assert standby.outcome == "skipped" and "not the leader" in standby.warnings[0]
    assert emulator.mint_count == before


def test_a_refresh_needs_a_claim_a_kv1_mount_cannot_hold(make_store, guarded, emulator, openbao):
    engine, mine, _, target = guarded("vault-kv2", strategy="refresh")
    kv1 = make_store("vault-kv1")
    engine.backends = {STORE_NAME: kv1}
    assert mine.round(0)
    assert engine.rotate(target).outcome == "rotated", "the first token is created, not refreshed"
    before, stored = emulator.mint_count, SecretRecord.loads(kv1.read(target.path).text)
    refused = engine.rotate(target)
    assert refused.outcome == "failed" and refused.step == "mint"
    assert "a refresh runs only under a rotation claim" in refused.error and "KV v1" in refused.error
    after = SecretRecord.loads(kv1.read(target.path).text)
    assert emulator.mint_count == before and after.token_id == stored.token_id and after.generation == 1
    assert emulator.authenticates(after.access_token), "the refresh token was not spent"
    recreate = engine.rotate(dataclasses.replace(target, strategy="recreate"))
    assert recreate.outcome == "rotated", "recreate on KV v1: the lease alone keeps replicas apart"


def test_a_lease_the_leader_cannot_read_fails_the_rotation_before_minting(guarded, emulator, monkeypatch):
    engine, mine, _, target = guarded("vault-kv2")
    assert mine.round(0)

    def unreachable(path):
        raise BackendError("read: cannot reach the server", backend="store", path=path)

    monkeypatch.setattr(mine.lease.store, "read_lease", unreachable)
    before = emulator.mint_count
    failed = engine.rotate(target)
    assert failed.outcome == "failed" and failed.step == "mint"
    assert "cannot check the leader lease" in failed.error and emulator.mint_count == before
