"""KV version 1 of one mount: one method per remote call, named after the API (as hvac's ``kv_v1``).

KV v1 has neither versions nor metadata, so the record carries its own (``rotator.revision`` as
the compare-and-set version, ``rotator.metadata``; the rules are :mod:`backends.inline_metadata`,
shared with the file store). A write re-reads and compares the revision first. That is a *weaker*
guarantee than KV v2's ``cas``: the read-check-write is not atomic, so two writers racing within
one round trip can both succeed (last one wins). Prefer KV v2.

API page: https://openbao.org/api-docs/secret/kv/kv-v1/ (the same endpoints as
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import hvac
from hvac import exceptions as hvac_exc

from backends import inline_metadata
from backends.base import BackendError, CASConflict, StoredValue, Version
from backends.vault.auth import VaultSession


class KvV1:
    """A KV v1 mount, reached through a logged-in :class:`VaultSession`."""

    version = 1
    metadata_without_secret = False  # the metadata is inside the record: reading it reads the token
    accepts_requests = False  # flags and request objects need KV v2's custom_metadata

    def __init__(self, session: VaultSession, mount: str) -> None:
        self.session = session
        self.mount = mount

    # -- remote calls -----------------------------------------------------------------------------
    def read_secret(self, path: str, *, op: str = "read") -> dict | None:
        """``GET <mount>/<path>``: the stored JSON object, ``None`` when there is none.

        https://openbao.org/api-docs/secret/kv/kv-v1/#read-secret
        """
        def fn(c: hvac.Client) -> dict | None:
            try:
                return c.secrets.kv.v1.read_secret(path=path, mount_point=self.mount)
            except hvac_exc.InvalidPath:
                return None

        resp = self.session.call(op, path, fn)
        return None if resp is None else (resp.get("data") or {})

    def create_or_update_secret(self, path: str, record: Mapping, *, op: str = "write") -> None:
        """``POST <mount>/<path>``: replace the stored object (no compare-and-set in KV v1).

        https://openbao.org/api-docs/secret/kv/kv-v1/#create-update-secret
        """
        self.session.call(op, path, lambda c: c.secrets.kv.v1.create_or_update_secret(
            path=path, secret=dict(record), mount_point=self.mount), write=True)

    def list_secrets(self, path: str) -> list[str]:
        """``LIST <mount>/<path>``: the keys below ``path``, folders ending in ``/``; ``[]`` for an
        empty folder or mount (Vault answers 404).

        https://openbao.org/api-docs/secret/kv/kv-v1/#list-secrets
        """
        def fn(c: hvac.Client) -> list[str]:
            try:
                resp = c.secrets.kv.v1.list_secrets(path=path, mount_point=self.mount)
            except hvac_exc.InvalidPath:
                return []
            return list((resp.get("data") or {}).get("keys") or [])

        return self.session.call("list", path or f"{self.mount}/", fn)

    # -- the store's operations, with the revision and metadata inside the record -----------------
    def read(self, path: str) -> StoredValue:
        record = self.read_secret(path)
        if record is None:
            return StoredValue(None, None)
        return StoredValue(json.dumps(record), inline_metadata.revision(record), inline_metadata.metadata(record))

    def write(self, path: str, data: Mapping, expected: Version, metadata: Mapping[str, str | None], *,
              op: str = "write") -> int:
        """Re-read, compare ``rotator.revision`` with ``expected``, then write the next record."""
        current = self.read_secret(path, op=op)
        found = None if current is None else inline_metadata.revision(current)
        if not inline_metadata.revision_matches(expected, found):
            raise CASConflict(f"{op}: {inline_metadata.mismatch(expected, found)}",
                              backend=self.session.name, path=path)
        record, revision = inline_metadata.next_record(current, data, metadata)
        self.create_or_update_secret(path, record, op=op)
        return revision

    def read_metadata(self, path: str) -> dict[str, str] | None:
        """``rotator.metadata`` (read from the record) plus ``current_version`` (the revision,
        i.e. what :meth:`write` expects) and an empty ``vault_updated_time``."""
        record = self.read_secret(path, op="read metadata")
        if record is None:
            return None
        return {**inline_metadata.metadata(record), "current_version": str(inline_metadata.revision(record)),
                "vault_updated_time": ""}

    def patch_metadata(self, path: str, updates: Mapping[str, str | None], *, attempts: int = 3) -> None:
        """Read-modify-write of ``rotator.metadata``; retried when another writer got in between."""
        for attempt in range(attempts):
            current = self.read_secret(path, op="patch metadata")
            if current is None:
                raise BackendError("patch metadata: not found", backend=self.session.name, path=path)
            try:
                self.write(path, current, inline_metadata.revision(current), updates, op="patch metadata")
                return
            except CASConflict:
                if attempt == attempts - 1:
                    raise
