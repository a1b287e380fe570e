"""Metadata follows the record: a Vault write that timed out but landed later (OpenBao answered
too late) leaves the new record under the old custom_metadata; the next ``status``, ``sweep`` or
rotation sees the difference and repairs it, and the failed run says what happened."""

from __future__ import annotations

import json

import pytest
import requests

from backends.base import create_backend
from rotator.core.options import Options
from rotator.engine import RotationStep
from rotator.engine.status import target_status
from tests.fixtures.tcp_proxy import TcpProxy


class _Stores:
    def __init__(self, backends):
        self.backends = backends


@pytest.fixture
def proxied_vault(openbao):
    """A KV v2 store reached through a proxy that can hold OpenBao's answers back (1 s timeout)."""
    with TcpProxy("127.0.0.1", openbao.port) as proxy:
        backend = create_backend("store", Options({
            "type": "vault", "url": proxy.url, "mount": "secret", "kv_version": "2", "timeout": "1s",
            "auth": {"method": "token", "token_insecure_inline": openbao.root_token}}, "backends.store"))
        yield proxy, backend
        backend.close()


def vault_truth(openbao, path):
    """The value and custom_metadata as OpenBao holds them (straight to the server, no proxy)."""
    headers = {"X-Vault-Token": openbao.root_token}
    data = requests.get(f"{openbao.addr}/v1/secret/data/{path}", headers=headers, timeout=5).json()["data"]
    meta = requests.get(f"{openbao.addr}/v1/secret/metadata/{path}", headers=headers, timeout=5).json()["data"]
    return data["data"], data["metadata"]["version"], meta["custom_metadata"]


@pytest.fixture
def landed_late(proxied_vault, make_engine, target, openbao):
    """One good rotation, then one whose data write lands while OpenBao's answers are held back."""
    proxy, backend = proxied_vault
    engine = make_engine(backend)
    first = engine.rotate(target)
    assert first.outcome == "rotated", first.error

    def stall_from_store_on(step, when, rotation_id):
        if step is RotationStep.STORE and when == "before":
            proxy.stall_responses.set()

    engine.step_hook = stall_from_store_on
    try:
        lost = engine.rotate(target)
    finally:
        proxy.stall_responses.clear()
        engine.step_hook = None
    value, version, meta = vault_truth(openbao, target.path)
    assert value["token_id"] == lost.token_id and version == 2, "the write did land"
    assert meta["token_id"] == first.token_id and meta["rotator_version"] == "1", "its metadata did not"
    return engine, backend, first, lost


def test_the_failed_run_says_the_outcome_is_unknown_and_nothing_else(landed_late):
    _, _, _, lost = landed_late
    assert lost.outcome == "failed" and lost.step == "store"
    assert "the outcome is unknown" in lost.error and "repairs the metadata" in lost.error
    assert "stored as version" not in lost.error


def test_status_repairs_the_metadata_and_reports_the_stored_token(landed_late, target, openbao):
    _, backend, first, lost = landed_late
    status = target_status(_Stores({"store": backend}), target)
    assert status.state == "ok" and status.token_id == lost.token_id and status.generation == 2
    assert status.repaired and first.token_id in status.repaired and lost.token_id in status.repaired
    _, _, meta = vault_truth(openbao, target.path)
    assert meta["token_id"] == lost.token_id and meta["generation"] == "2" and meta["rotator_version"] == "2"
    again = target_status(_Stores({"store": backend}), target)
    assert again.state == "ok" and again.repaired is None  # repaired once, then consistent


def test_a_sweep_repairs_the_metadata_and_keeps_the_stored_token(landed_late, target, openbao, users):
    engine, _, _, lost = landed_late
    swept = engine.sweep(target)
    assert swept.repaired and lost.token_id in swept.repaired and swept.errors == []
    assert lost.token_id not in swept.orphans_revoked and users.is_token_active(lost.token_id)
    _, _, meta = vault_truth(openbao, target.path)
    assert meta["token_id"] == lost.token_id and meta["rotator_version"] == "2"


def test_the_next_rotation_repairs_then_rotates(landed_late, target, openbao):
    engine, _, _, lost = landed_late
    result = engine.rotate(target)
    assert result.outcome == "rotated" and result.previous_token_id == lost.token_id
    assert any(lost.token_id in w for w in result.warnings)
    value, version, meta = vault_truth(openbao, target.path)
    assert meta["token_id"] == value["token_id"] == result.token_id and meta["rotator_version"] == str(version)
    assert json.dumps(result.to_json())  # the warning is reported in the run's JSON too
