"""``Engine.sweep_all``: one ``GET /tokens?description=jfrog-rotator:*`` per sweep, grouped by
target, and a store read only for a target the list shows work for. Real emulator, real stores."""

from __future__ import annotations

import uuid
from dataclasses import replace as with_

import pytest

from rotator.core.record import SecretRecord
from rotator.core.tags import fleet_filter

REMOTE = ("vault-kv2", "vault-kv1", "aws")  # the file store is local: it is always read


class CountingReads:
    """A store that counts the values read from it (everything else goes to the real store)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def read(self, path):
        self.reads.append(path)
        return self.inner.read(path)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture(params=REMOTE)
def remote(request, make_store):
    return make_store(request.param)


def lists(emulator) -> list[str]:
    """The ``description`` filter of every ``GET /tokens`` the emulator answered."""
    return [r.query.get("description", [""])[0] for r in emulator.requests
            if r.method == "GET" and r.path == "/access/api/v1/tokens"]


def named(target, name):
    return with_(target, name=name, path=f"jfrog/{name}-{uuid.uuid4().hex[:8]}")


def test_one_list_per_sweep_and_reads_only_where_there_is_work(make_engine, remote, target, users, clock):
    store = CountingReads(remote)
    engine = make_engine(store)
    steady, due, orphaned, empty = (named(target, n) for n in ("steady", "due", "orphaned", "empty"))
    engine.rotate(steady)
    first_due = engine.rotate(due)
    engine.rotate(due)
    engine.rotate(orphaned)
    orphan = users.create_token("ci", scope="applied-permissions/groups:deployers",
                                description="jfrog-rotator:orphaned:crashed-run")
    clock.advance(3601)
    users.clear_requests()
    store.reads.clear()

    results = engine.sweep_all([steady, due, orphaned, empty])

    assert lists(users) == [fleet_filter()], "one list for the whole sweep"
    assert sorted(store.reads) == sorted([due.path, orphaned.path]), "no read where the list shows nothing to do"
    by_name = {r.target: r for r in results}
    assert [r.target for r in results] == ["steady", "due", "orphaned", "empty"]
    assert by_name["due"].retired_revoked == [first_due.token_id]
    assert by_name["orphaned"].orphans_revoked == [orphan["token_id"]]
    assert all(not r.errors for r in results)
    for t in (steady, due, orphaned):
        assert users.authenticates(SecretRecord.loads(remote.read(t.path).text).access_token)


def test_a_retired_token_within_its_overlap_is_read_but_left_alone(make_engine, remote, target, users):
    store = CountingReads(remote)
    engine = make_engine(store)
    first = engine.rotate(target)
    engine.rotate(target)
    [result] = engine.sweep_all([target])
    assert store.reads and result.retired_revoked == [] and result.orphans_revoked == []
    assert users.is_token_active(first.token_id)


def test_short_tokens_are_not_listed_so_one_listed_token_is_not_the_stored_one(make_engine, remote, target, users,
                                                                                clock):
    store = CountingReads(remote)
    engine = make_engine(store)
    long_lived = engine.rotate(target)  # 4 h: JFrog stores and lists it
    short = with_(target, token=with_(target.token, expiry=3600))  # 1 h: under the 3 h persistency threshold
    assert engine.rotate(short).outcome == "rotated"
    clock.advance(3601)
    store.reads.clear()
    [result] = engine.sweep_all([short])
    assert store.reads == [short.path]
    assert result.retired_revoked == [long_lived.token_id] and not users.is_token_active(long_lived.token_id)


def test_a_lone_listed_token_is_taken_for_the_stored_one_unless_targets_are_named(make_engine, remote, target,
                                                                                   users):
    class Crash(Exception):
        pass

    def crash_after_mint(step, when, rid):
        if (step.value, when) == ("mint", "after"):
            raise Crash

    with pytest.raises(Crash):
        make_engine(remote, hook=crash_after_mint).rotate(target)  # the first rotation dies: the store is empty
    store = CountingReads(remote)
    engine = make_engine(store)
    # Without reading the store a lone orphan looks like a stored token: the lean sweep leaves it
    # (the next rotation adds a second listed token, and the sweep after it revokes the orphan).
    [lean] = engine.sweep_all([target])
    assert store.reads == [] and lean.orphans_revoked == []
    assert users.live_token_count(description_prefix="jfrog-rotator:ci:") == 1
    [named_result] = engine.sweep_all([target], read_all=True)  # `sweep ci`: the named targets are read
    assert store.reads == [target.path] and len(named_result.orphans_revoked) == 1
    assert users.live_token_count(description_prefix="jfrog-rotator:ci:") == 0


def test_a_failed_list_is_reported_for_every_target_and_nothing_is_read(make_engine, remote, target, users):
    store = CountingReads(remote)
    engine = make_engine(store)
    engine.rotate(target)
    other = named(target, "other")
    users.inject_fault("/access/api/v1/tokens", method="GET", status=500, count=20)
    store.reads.clear()
    results = engine.sweep_all([target, other])
    assert [r.target for r in results] == ["ci", "other"]
    assert all(len(r.errors) == 1 and "list tokens" in r.errors[0] and "500" in r.errors[0] for r in results)
    assert store.reads == []


def test_without_an_admin_each_target_lists_with_its_own_token(make_engine, remote, target, users):
    bootstrap = make_engine(remote)
    selfish = with_(target, strategy="self")
    bootstrap.rotate(selfish)
    orphan = users.create_token("ci", scope="applied-permissions/groups:deployers",
                                description="jfrog-rotator:ci:crashed-run")
    engine = make_engine(remote, has_admin=False)
    users.clear_requests()
    [result] = engine.sweep_all([selfish])
    assert result.orphans_revoked == [orphan["token_id"]]
    assert lists(users) == ["jfrog-rotator:ci:*"]


def test_stores_are_read_in_parallel_and_results_keep_the_targets_order(make_engine, make_store, target, users):
    engine = make_engine(make_store("vault-kv2"))
    targets = [named(target, f"p{i}") for i in range(6)]
    orphans = {}
    for t in targets:
        engine.rotate(t)
        orphans[t.name] = users.create_token("ci", scope="applied-permissions/groups:deployers",
                                             description=f"jfrog-rotator:{t.name}:crashed-run")["token_id"]
    results = engine.sweep_all(targets, parallel=4)
    assert [r.target for r in results] == [t.name for t in targets]
    assert [r.orphans_revoked for r in results] == [[orphans[t.name]] for t in targets]


def test_a_stopping_daemon_sweeps_no_further_target(make_engine, make_store, target, users):
    engine = make_engine(make_store("vault-kv2"))
    targets = [named(target, f"s{i}") for i in range(3)]
    asked = []
    results = engine.sweep_all(targets, stopping=lambda: asked.append(1) or len(asked) > 1)
    assert [r.target for r in results] == ["s0"]


def test_tokens_younger_than_overlap_and_grace_need_no_read_until_one_may_be_due(make_engine, remote, target,
                                                                                  users, clock):
    target = with_(target, orphan_grace=600)  # overlap 3600
    store = CountingReads(remote)
    engine = make_engine(store)
    first = engine.rotate(target)
    engine.rotate(target)
    store.reads.clear()
    [result] = engine.sweep_all([target])
    assert store.reads == [] and result.retired_revoked == []  # right after the rotation: nothing can be due
    clock.advance(601)  # an orphan as old as these could be due: read, but the retired one is not due yet
    [result] = engine.sweep_all([target])
    assert store.reads == [target.path] and result.retired_revoked == []
    assert users.is_token_active(first.token_id)
    clock.advance(3000)
    [result] = engine.sweep_all([target])
    assert result.retired_revoked == [first.token_id] and not users.is_token_active(first.token_id)
