"""``LeaderLease`` and ``RotationClaims`` (backends.base): the daemon replicas' lease and claims, on
every store that offers them (the file store's flock, Vault KV v2 on OpenBao, Secrets Manager on
moto's server), and a KV v1 mount refusing both.

Two stores of one kind made in a test share their data (tests/fixtures/plugin.py ``make_store``):
they play two replicas.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from backends.base import CASConflict, LeaderLease, RotationClaims, Unsupported
from backends.vault import VaultBackend

LEASE_STORES = ("file", "vault-kv2", "aws")


@pytest.fixture(params=LEASE_STORES)
def lease_kind(request) -> str:
    return request.param


def new_path(prefix: str = "coordination") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def two(make_store, kind):
    first, second = make_store(kind), make_store(kind)
    assert isinstance(first, LeaderLease) and isinstance(first, RotationClaims)
    return first, second


def test_only_one_of_two_takes_a_free_lease(make_store, lease_kind):
    first, second = two(make_store, lease_kind)
    path = new_path()
    free = first.read_lease(path)
    assert free.holder is None
    held = first.take_lease(path, "replica-a/1", {"replica": "replica-a"}, expected=free.version)
    with pytest.raises(CASConflict):
        second.take_lease(path, "replica-b/2", {"replica": "replica-b"}, expected=free.version)
    seen = second.read_lease(path)
    assert seen.holder == "replica-a/1" and seen.version == held


def test_a_renewal_changes_the_version_standbys_watch(make_store, lease_kind):
    first, second = two(make_store, lease_kind)
    path = new_path()
    held = first.take_lease(path, "replica-a/1", {"replica": "replica-a"}, expected=None)
    versions = [held]
    for _ in range(3):
        versions.append(first.renew_lease(path, "replica-a/1", {"replica": "replica-a"}, held=versions[-1]))
        seen = second.read_lease(path)
        assert seen.holder == "replica-a/1" and seen.version == versions[-1]
    if first.lease_expires:
        assert len(set(versions[-2:])) == 2, "each renewal is a new version to watch"
        if lease_kind == "aws":  # two versions per holder, AWSCURRENT moved between them: no version per renewal
            versions_made = first.client.list_secret_version_ids(SecretId=path)["Versions"]
            assert len(versions_made) == 2
    else:
        assert len(set(versions)) == 1, "a flock is held, not renewed"


@pytest.mark.parametrize("kind", ["vault-kv2", "aws"])  # a flock is never taken over: see the next test
def test_a_standby_takes_over_an_expiring_lease_and_the_old_holder_finds_out(make_store, kind):
    first, second = two(make_store, kind)
    assert first.lease_expires
    path = new_path()
    held = first.take_lease(path, "replica-a/1", {}, expected=None)
    # the standby decides the lease expired (it saw this version unchanged for the TTL) and takes it
    taken = second.take_lease(path, "replica-b/2", {}, expected=second.read_lease(path).version)
    assert taken != held
    with pytest.raises(CASConflict):
        first.renew_lease(path, "replica-a/1", {}, held=held)
    assert first.read_lease(path).holder == "replica-b/2"


def test_a_flock_lease_passes_on_when_its_holder_releases_or_closes(make_store, tmp_path):
    first, second = two(make_store, "file")
    path = new_path()
    first.take_lease(path, "replica-a/1", {}, expected=None)
    assert second.read_lease(path).holder == "replica-a/1"
    with pytest.raises(CASConflict):
        second.take_lease(path, "replica-b/2", {}, expected=None)
    first.close()  # the process ending is the same: the kernel drops the lock with the descriptor
    assert second.read_lease(path).holder is None
    second.take_lease(path, "replica-b/2", {}, expected=None)
    lease_file = tmp_path / "secrets" / f"{path}.lease"
    assert json.loads(lease_file.read_text())["holder"] == "replica-b/2"
    assert oct(lease_file.stat().st_mode & 0o777) == "0o600"


def test_a_released_lease_is_free_at_once(make_store, lease_kind):
    first, second = two(make_store, lease_kind)
    path = new_path()
    held = first.take_lease(path, "replica-a/1", {}, expected=None)
    first.release_lease(path, "replica-a/1", held=held)
    free = second.read_lease(path)
    assert free.holder is None
    second.take_lease(path, "replica-b/2", {}, expected=free.version)
    assert first.read_lease(path).holder == "replica-b/2"
    first.release_lease(path, "replica-a/1", held=held)  # too late: nothing of ours to give up
    assert first.read_lease(path).holder == "replica-b/2"


def _target(store, kind) -> tuple[str, object]:
    """A target path with a value (Secrets Manager claims need the secret) and its version."""
    path = new_path("claims")
    text = json.dumps({"access_token": f"claim-test-{uuid.uuid4().hex}", "token_id": "tid",
                       "rotator": {"schema": 1, "target": "ci"}})
    version = store.write(path, text, expected_version=None, metadata={}, rotation_id=str(uuid.uuid4()))
    return path, version


def test_of_two_claims_on_one_version_one_wins_and_the_value_is_untouched(make_store, lease_kind):
    first, second = two(make_store, lease_kind)
    path, version = _target(first, lease_kind)
    before = first.read(path)
    assert first.claim_rotation(path, version, holder="replica-a/1", rotation_id=str(uuid.uuid4()), ttl=60) \
        == "replica-a/1"
    assert second.claim_rotation(path, version, holder="replica-b/2", rotation_id=str(uuid.uuid4()), ttl=60) \
        == "replica-a/1", "the loser is told who holds the claim"
    # the winner may claim again (a retry of its rotation)
    assert first.claim_rotation(path, version, holder="replica-a/1", rotation_id=str(uuid.uuid4()), ttl=60) \
        == "replica-a/1"
    after = first.read(path)
    assert after.text == before.text and after.version == before.version, "a claim never changes the value"
    assert first.list_managed() == second.list_managed(), "claims are not targets"


def test_a_claim_on_an_older_version_or_past_its_ttl_does_not_block(make_store, lease_kind):
    first, second = two(make_store, lease_kind)
    path, version = _target(first, lease_kind)
    assert first.claim_rotation(path, version, holder="replica-a/1", rotation_id="r1", ttl=60) == "replica-a/1"
    newer = first.write(path, first.read(path).text.replace("claim-test", "claim-test-2"), expected_version=version,
                        metadata={}, rotation_id=str(uuid.uuid4()))
    assert second.claim_rotation(path, newer, holder="replica-b/2", rotation_id="r2", ttl=60) == "replica-b/2"
    # a claimer that stopped: after the TTL its claim no longer holds anyone back
    assert first.claim_rotation(path, newer, holder="replica-a/1", rotation_id="r3", ttl=0) == "replica-a/1"
    assert second.claim_rotation(path, newer, holder="replica-b/2", rotation_id="r4", ttl=60) == "replica-a/1"


@pytest.mark.parametrize("kind", ["file", "vault-kv2"])
def test_claims_made_at_the_same_moment_have_one_winner(make_store, kind):
    # (moto's server applies two concurrent PutSecretValue calls without a lock of its own, so the
    # AWS case is the sequential collision above; Secrets Manager itself refuses the second.)
    stores = [make_store(kind) for _ in range(6)]
    path, version = _target(stores[0], kind)
    barrier = threading.Barrier(len(stores))
    answers: list[str] = []

    def claim(index: int) -> None:
        barrier.wait()
        answers.append(stores[index].claim_rotation(path, version, holder=f"replica-{index}",
                                                    rotation_id=str(uuid.uuid4()), ttl=60))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == len(stores) and len(set(answers)) == 1, answers  # everyone names one winner
    assert answers[0] in {f"replica-{i}" for i in range(len(stores))}


def test_a_kv1_mount_refuses_a_lease_and_a_claim_and_writes_nothing(make_store):
    store = make_store("vault-kv1")
    assert isinstance(store, VaultBackend)
    path = new_path()
    for call in (lambda: store.read_lease(path),
                 lambda: store.take_lease(path, "replica-a/1", {}, expected=None),
                 lambda: store.claim_rotation(path, None, holder="replica-a/1", rotation_id="r", ttl=60)):
        with pytest.raises(Unsupported) as refused:
            call()
        assert "KV v1" in str(refused.value) and "needs a KV v2 mount" in str(refused.value)
    assert store.read(path).text is None
    assert store.read(f"jfrog-rotator-claims/{path}").text is None
