"""KV version 2 of one mount: one method per remote call, named after the API (as hvac's ``kv_v2``).

The compare-and-set version is Vault's ``current_version`` and a write names it with ``cas=``,
so a concurrent writer makes our write fail instead of being overwritten. Non-secret facts
(token id, expiry, generation, ``managed_by``) live in ``custom_metadata``, which a policy can
let status and triggers read without the right to read the token.

API page: https://openbao.org/api-docs/secret/kv/kv-v2/ (the same endpoints as
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TypeVar

import hvac
from hvac import exceptions as hvac_exc
from hvac.utils import format_url

from backends.base import BackendError, MetadataNotWritten, StoredValue, Version
from backends.inline_metadata import string_map
from backends.vault.auth import VaultSession
from backends.vault.transport import MERGE_PATCH, LeanRequests, metadata_value, strip_prefix

T = TypeVar("T")


class KvV2:
    """A KV v2 mount, reached through a logged-in :class:`VaultSession`.

    ``caller=`` (an hvac client from :meth:`VaultTransport.as_caller`) makes a call with someone
    else's token instead of ours: Vault-triggered renewal asks with the requester's own rights.
    """

    version = 2
    metadata_without_secret = True  # custom_metadata is an endpoint of its own
    accepts_requests = True

    def __init__(self, session: VaultSession, mount: str) -> None:
        self.session = session
        self.mount = mount

    # -- data -------------------------------------------------------------------------------------
    def read_secret_version(self, path: str) -> StoredValue:
        """``GET <mount>/data/<path>``: the current value, its version and custom_metadata.

        Like the other hot calls (the metadata read, the compare-and-set write, the metadata
        patch) it goes by :class:`~backends.vault.transport.LeanRequests`.
        https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-version
        """
        url = format_url("/v1/{0}/data/{1}", self.mount, path)

        def fn(c: hvac.Client) -> Mapping | None:
            try:
                return self._lean(c).request("GET", url)
            except hvac_exc.InvalidPath as exc:
                # A deleted or destroyed current version answers 404 *with* its metadata; a path
                # that never existed answers 404 without any.
                meta = ((exc.json or {}).get("data") or {}).get("metadata") if isinstance(exc.json, dict) else None
                return exc.json if isinstance(meta, dict) and meta.get("version") else None

        resp = self.session.call("read", path, fn)
        if resp is None:
            return StoredValue(None, None)
        data = resp.get("data") or {}
        meta = data.get("metadata") or {}
        value = data.get("data")
        text = json.dumps(value) if value is not None else None
        return StoredValue(text, int(meta.get("version") or 0), string_map(meta.get("custom_metadata")))

    def create_or_update_secret(self, path: str, data: Mapping, *, cas: int, op: str = "write",
                                caller: hvac.Client | None = None) -> int:
        """``POST <mount>/data/<path>`` with ``options.cas``; returns the new version.

        https://openbao.org/api-docs/secret/kv/kv-v2/#create-update-secret
        """
        url = format_url("/v1/{0}/data/{1}", self.mount, path)
        body = {"options": {"cas": cas}, "data": dict(data)}
        resp = self._call(op, path, lambda c: self._lean(c).request("POST", url, body=body), write=True, caller=caller)
        return int((resp or {})["data"]["version"])

    def delete_metadata_and_all_versions(self, path: str, *, op: str = "delete") -> None:
        """``DELETE <mount>/metadata/<path>``: the secret, every version and its metadata.

        https://openbao.org/api-docs/secret/kv/kv-v2/#delete-metadata-and-all-versions
        """
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)
        self.session.call(op, path, lambda c: c.adapter.delete(url))

    # -- metadata ---------------------------------------------------------------------------------
    def read_secret_metadata(self, path: str) -> dict[str, str] | None:
        """``GET <mount>/metadata/<path>``: custom_metadata plus ``current_version``, when it and the
        path were created (``current_version_created``, ``created_time``: Vault's clock) and
        ``vault_updated_time``; ``None`` when the path does not exist.

        https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-metadata
        """
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)

        def fn(c: hvac.Client) -> Mapping | None:
            try:
                return self._lean(c).request("GET", url)
            except hvac_exc.InvalidPath:
                return None

        resp = self.session.call("read metadata", path, fn)
        if resp is None:
            return None
        data = resp.get("data") or {}
        current = str(data.get("current_version") or 0)
        versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
        return {**string_map(data.get("custom_metadata")),
                "current_version": current,
                "current_version_created": str((versions.get(current) or {}).get("created_time") or ""),
                "created_time": str(data.get("created_time") or ""),
                "vault_updated_time": str(data.get("updated_time") or "")}

    def patch_metadata(self, path: str, custom_metadata: Mapping[str, str | None], *, op: str = "patch metadata",
                       caller: hvac.Client | None = None) -> None:
        """``PATCH <mount>/metadata/<path>`` as a JSON merge patch of ``custom_metadata``; a ``None``
        value removes the key. hvac has no method for it; it needs the ``patch`` capability.

        https://openbao.org/api-docs/secret/kv/kv-v2/#patch-metadata
        """
        # Vault refuses empty values and values over 512 bytes: an empty value removes the key
        # (merge-patch null), a long one is cut.
        body = json.dumps({"custom_metadata": {str(k): metadata_value(v) for k, v in custom_metadata.items()}})
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)
        self._call(op, path, lambda c: self._lean(c).request("PATCH", url, body=body, content_type=MERGE_PATCH),
                   caller=caller)

    def list_secrets(self, path: str) -> list[str]:
        """``LIST <mount>/metadata/<path>``: the keys below ``path``, folders ending in ``/``;
        ``[]`` for an empty folder or mount (Vault answers 404).

        https://openbao.org/api-docs/secret/kv/kv-v2/#list-secrets
        """
        def fn(c: hvac.Client) -> list[str]:
            try:
                resp = c.secrets.kv.v2.list_secrets(path=path, mount_point=self.mount)
            except hvac_exc.InvalidPath:
                return []
            return list((resp.get("data") or {}).get("keys") or [])

        return self.session.call("list", path or f"{self.mount}/", fn)

    # -- the store's compare-and-set write ------------------------------------------------------
    def write(self, path: str, data: Mapping, expected: Version, metadata: Mapping[str, str | None]) -> int:
        """The data write (``cas=expected or 0``) is the commit point; ``metadata`` is merged after it.

        If that merge fails the value *is* stored, so the error raised is
        :class:`WriteOutcomeUnknown` (re-read to see it), never a plain failure.
        """
        version = self.create_or_update_secret(path, data, cas=int(expected or 0))
        if metadata:
            # rotator_version tells later readers which version the rotator wrote: a higher
            # current_version means someone wrote the secret by hand (Vault-triggered renewal).
            try:
                self.patch_metadata(path, {**metadata, "rotator_version": str(version)}, op="write metadata")
            except BackendError as exc:
                raise MetadataNotWritten(f"write: the value was stored as version {version}, but updating "
                                         f"its custom_metadata failed: {strip_prefix(exc)}", version=version,
                                         backend=self.session.name, path=path) from None
        return version

    # The store's read and read_metadata are these two calls.
    read = read_secret_version
    read_metadata = read_secret_metadata

    def _lean(self, client: hvac.Client) -> LeanRequests:
        return self.session.transport.lean(client)

    def _call(self, op: str, path: str, fn: Callable[[hvac.Client], T], *, write: bool = False,
              caller: hvac.Client | None = None) -> T:
        if caller is None:
            return self.session.call(op, path, fn, write=write)
        return self.session.transport.call(op, path, fn, write=write, client=caller)
