"""Vault-triggered renewal on a KV v2 mount: rotation flags, request objects, the caller's rights.

A caller asks for a rotation with *their own* narrow token: either the flag
``rotate_requested=true`` in the target's custom_metadata (``patch`` on
``<mount>/metadata/<path>``) or a request object ``<mount>/<request_prefix>/<target>/<id>``
(``create`` there). The daemon's reconcile loop reads both with the store's token and decides
with the caller's rights, never its own (``docs/vault-triggers.md``).
Request objects are always KV v2 secrets: a KV v1 mount cannot hold them. With ``events: true`` the
daemon also subscribes to Vault Enterprise's event stream to hear of a request at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping

import hvac

from backends.base import BackendError
from backends.vault.auth import VaultSession
from backends.vault.kv_v2 import KvV2
from backends.vault.transport import VaultPermissionDenied, clean_path


class VaultRequests:
    """The rotation requests of one KV v2 mount (``backends.base.RotationRequests`` behind the store)."""

    def __init__(self, session: VaultSession, kv: KvV2, request_prefix: str) -> None:
        self.session = session
        self.kv = kv
        self.request_prefix = request_prefix

    # -- read and served by the daemon, with the store's token -----------------------------------
    def pending_requests(self) -> dict[str, list[str]]:
        """Request objects waiting under ``<mount>/<request_prefix>/``: target name -> request ids.

        One LIST of the prefix, then one LIST per target that has requests (not per target).
        """
        found: dict[str, list[str]] = {}
        for entry in self.kv.list_secrets(self.request_prefix):
            if entry.endswith("/"):
                ids = self.requests_for(entry.rstrip("/"))
                if ids:
                    found[entry.rstrip("/")] = ids
        return found

    def requests_for(self, target: str) -> list[str]:
        """The ids of the request objects waiting for one target (one LIST; sub-folders are not requests)."""
        return sorted(i for i in self.kv.list_secrets(f"{self.request_prefix}/{target}") if not i.endswith("/"))

    def read_request(self, target: str, request_id: str) -> dict[str, str]:
        """The request object's fields (``requested_by``, ``reason``); ``{}`` when it is gone."""
        stored = self.kv.read_secret_version(f"{self.request_prefix}/{target}/{request_id}")
        if stored.text is None:
            return {}
        data = json.loads(stored.text)
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def request_created(self, target: str, request_id: str) -> str:
        """``created_time`` of the request object's metadata (Vault's clock); ``""`` when it is gone."""
        meta = self.kv.read_secret_metadata(f"{self.request_prefix}/{target}/{request_id}")
        return meta.get("created_time", "") if meta else ""

    def delete_request(self, target: str, request_id: str) -> None:
        """Delete a served request object with all its versions."""
        self.kv.delete_metadata_and_all_versions(f"{self.request_prefix}/{target}/{request_id}",
                                                 op="delete request")

    # -- asked with the caller's token ----------------------------------------------------------
    def caller_capabilities(self, token: str, path: str) -> list[str]:
        """What ``token`` (a caller's, not ours) may do on the target's metadata path.

        ``POST sys/capabilities-self`` authenticated *as the caller*: the daemon never uses its
        own rights to decide for someone else. https://openbao.org/api-docs/system/capabilities-self/
        """
        metadata_path = f"{self.kv.mount}/metadata/{clean_path(path)}"
        with self.as_caller(token) as caller:
            try:
                resp = self.session.transport.call(
                    "check caller capabilities", path,
                    lambda c: c.adapter.post("/v1/sys/capabilities-self", json={"paths": [metadata_path]}),
                    client=caller)
            except VaultPermissionDenied:
                return []
        data = resp.get("data", resp) if isinstance(resp, dict) else {}
        caps = data.get(metadata_path) or data.get("capabilities") or []
        return [str(c) for c in caps]

    def caller_name(self, token: str) -> str:
        """The caller token's display name (``auth/token/lookup-self``), ``""`` when it may not ask.

        https://openbao.org/api-docs/auth/token/#lookup-a-token-self
        """
        with self.as_caller(token) as caller:
            try:
                data = self.session.transport.call("caller name", "auth/token/lookup-self",
                                                   lambda c: c.auth.token.lookup_self(), client=caller)
            except BackendError:  # no name: the caller is then named another way
                return ""
        return str((data.get("data") or {}).get("display_name") or "")

    def request_rotation(self, path: str, *, token: str, reason: str, requested_by: str, at: str) -> None:
        """Set ``rotate_requested=true`` in the target's custom_metadata *with the caller's token*
        (needs only the ``patch`` capability on the metadata path)."""
        flag = {"rotate_requested": "true", "requested_by": requested_by, "requested_reason": reason,
                "requested_at": at}
        with self.as_caller(token) as caller:
            self.kv.patch_metadata(clean_path(path), flag, op="request rotation", caller=caller)

    def write_request(self, target: str, request_id: str, fields: Mapping[str, str], *, token: str) -> str:
        """Create the request object ``<prefix>/<target>/<id>`` *with the caller's token*
        (needs only ``create`` on the request prefix); returns where it was written."""
        path = f"{self.request_prefix}/{target}/{request_id}"
        with self.as_caller(token) as caller:
            self.kv.create_or_update_secret(path, fields, cas=0, op="write request", caller=caller)
        return f"{self.kv.mount}/{path}"

    # -- pushed by Vault Enterprise ----------------------------------------------------------------
    def event_subscription(self, event_type: str) -> tuple[str, dict[str, str]]:
        """WebSocket URL and headers to subscribe to ``event_type`` (Vault Enterprise >= 1.16).

        https://developer.hashicorp.com/vault/docs/concepts/events
        """
        transport = self.session.transport
        headers = {"X-Vault-Token": self.session.token()}
        scheme = "wss" if transport.url.startswith("https://") else "ws"
        url = f"{scheme}://{transport.url.split('://', 1)[1]}/v1/sys/events/subscribe/{event_type}?json=true"
        if transport.namespace:
            headers["X-Vault-Namespace"] = transport.namespace
        return url, headers

    @contextlib.contextmanager
    def as_caller(self, token: str) -> Iterator[hvac.Client]:
        client = self.session.transport.as_caller(token)
        try:
            yield client
        finally:
            client.adapter.close()
