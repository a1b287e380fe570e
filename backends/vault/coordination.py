"""Daemon replicas coordinating on a KV v2 mount: the leader lease and per-rotation claims.

Both are KV v2 secrets written with check-and-set (``cas=<the version read>``), the primitive
Vault's own HA lock rests on: of two writers naming the same version, Vault applies one and
answers the other ``check-and-set parameter did not match`` (:class:`~backends.base.CASConflict`).

* The lease is the secret ``<mount>/data/<daemon.leader.path>``: ``{"holder", "replica",
  "renewed_at", "ttl"}``. Taking it and every renewal are a ``cas`` write, so each makes a new
  version: the version is what standbys watch and what the holder checks before it mints.
* A claim is the secret ``<mount>/data/jfrog-rotator-claims/<target path>``: ``{"version",
  "holder", "rotation_id", "at"}``, the target's version the claimer read. It is written with
  ``cas`` on the claim's own version, so two replicas claiming one rotation cannot both win.

A KV v1 mount has no check-and-set: both are refused (:class:`~backends.base.Unsupported`).

API page: https://openbao.org/api-docs/secret/kv/kv-v2/#create-update-secret (the same endpoint
as https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from backends.base import CASConflict, LeaseRecord, Version, live_claim_holder
from backends.vault.kv_v2 import KvV2

#: Where claims live on a mount: ``<mount>/data/<CLAIM_PREFIX>/<target path>``.
CLAIM_PREFIX = "jfrog-rotator-claims"


class VaultCoordination:
    """The lease and the claims on one KV v2 mount (:class:`KvV2` makes the calls)."""

    def __init__(self, kv2: KvV2, claim_prefix: str = CLAIM_PREFIX) -> None:
        self.kv2 = kv2
        self.claim_prefix = claim_prefix.strip("/")

    # -- the leader lease -----------------------------------------------------------------------
    def read_lease(self, path: str) -> LeaseRecord:
        """``GET <mount>/data/<path>``: one call."""
        stored = self.kv2.read_secret_version(path)
        data = _object(stored.text)
        holder = str(data.get("holder") or "") or None
        return LeaseRecord(holder, stored.version, {str(k): str(v) for k, v in data.items() if k != "holder"})

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> int:
        """``POST <mount>/data/<path>`` with ``cas=expected`` (0: the lease does not exist yet)."""
        return self.kv2.create_or_update_secret(path, {"holder": holder, **fields}, cas=int(expected or 0),
                                                op="take lease")

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> int:
        return self.kv2.create_or_update_secret(path, {"holder": holder, **fields}, cas=int(held or 0),
                                                op="renew lease")

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        try:
            self.kv2.create_or_update_secret(path, {"holder": "", "released_by": holder}, cas=int(held or 0),
                                             op="release lease")
        except CASConflict:
            pass  # taken over already: nothing of ours to give up

    # -- claims -----------------------------------------------------------------------------------
    def claim_key(self, path: str) -> str:
        return f"{self.claim_prefix}/{path}"

    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        """Read the target's claim (one GET), then write ours with ``cas`` on it (one POST)."""
        key = self.claim_key(path)
        stored = self.kv2.read_secret_version(key)
        other = live_claim_holder(_object(stored.text), version, holder, ttl, time.time())
        if other:
            return other
        claim = {"version": str(version), "holder": holder, "rotation_id": rotation_id, "at": f"{time.time():.3f}"}
        try:
            self.kv2.create_or_update_secret(key, claim, cas=int(stored.version or 0), op="claim rotation")
        except CASConflict:  # another replica wrote the claim between our read and our write
            return str(_object(self.kv2.read_secret_version(key).text).get("holder") or "another replica")
        return holder

    def release_claim(self, path: str, version: Version, *, holder: str) -> None:
        """Read the claim (one GET); when it is still ours from ``version``, free it with ``cas`` (one POST)."""
        key = self.claim_key(path)
        stored = self.kv2.read_secret_version(key)
        found = _object(stored.text)
        if found.get("holder") != holder or str(found.get("version")) != str(version):
            return
        try:
            self.kv2.create_or_update_secret(key, {"version": str(version), "holder": "", "released_by": holder,
                                                   "at": f"{time.time():.3f}"}, cas=int(stored.version or 0),
                                             op="release claim")
        except CASConflict:
            pass  # claimed again by someone else meanwhile: not ours to free


def _object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
