"""HashiCorp Vault / OpenBao KV store (hvac): KV v2 with check-and-set, KV v1 with a revision counter.

One target is one KV secret ``<mount>/<path>``; its data is the stored record (a JSON object).
:class:`VaultBackend` is what the config builds (``type: vault``, ``docs/configuration.md``); it
hands the KV work to :class:`~backends.vault.kv_v2.KvV2` or :class:`~backends.vault.kv_v1.KvV1`,
chosen once the mount's version is known (from ``kv_version``, else detected at the first remote
call: loading a config makes none). The package, low to high:

* ``transport``: the hvac client, TLS options, the one place hvac/requests errors become ours;
* ``auth``: the ``auth`` options, login, renewal and re-login (:class:`VaultSession`);
* ``kv_v2`` / ``kv_v1``: one method per remote call of each KV version;
* ``requests``: Vault-triggered renewal (flags, request objects, the caller's rights, events).

A policy for the rotator on mount ``secret`` (KV v2)::

    path "secret/data/jfrog/*"     { capabilities = ["create", "update", "read"] }
    path "secret/metadata/jfrog/*" { capabilities = ["read", "patch", "list"] }
    path "secret/metadata/"        { capabilities = ["list"] }        # list_managed()
    path "sys/internal/ui/mounts/secret" { capabilities = ["read"] }  # kv_version: auto

API pages: https://openbao.org/api-docs/secret/kv/kv-v2/ , https://openbao.org/api-docs/secret/kv/kv-v1/
(the same endpoints as https://developer.hashicorp.com/vault/api-docs/secret/kv).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import hvac
from hvac.utils import format_url

from backends.base import BackendError, LeaseRecord, StoredValue, Unsupported, Version
from backends.vault.auth import AuthSettings, Credentials, VaultSession
from backends.vault.coordination import VaultCoordination
from backends.vault.kv_v1 import KvV1
from backends.vault.kv_v2 import KvV2
from backends.vault.requests import VaultRequests
from backends.vault.transport import (
    VaultPermissionDenied,
    VaultTransport,
    clean_path,
    first_env,
    mount_option,
    strip_prefix,
    tls_verify_option,
)
from rotator.core.options import Options
from rotator.core.record import MANAGED_BY
from rotator.core.redact import scrub

log = logging.getLogger(__name__)

DEFAULT_REQUEST_PREFIX = "jfrog-rotator-requests"
MAX_LIST_DEPTH = 16


class VaultBackend:
    """A Vault/OpenBao KV mount as a :class:`backends.base.SecretBackend`.

    Also ``backends.base.RenewableAuth`` (it keeps its token alive), ``RotationRequests`` (flags and
    request objects; ``accepts_requests()`` is false on a KV v1 mount), ``EventStream``, and
    ``LeaderLease`` and ``RotationClaims`` (KV v2 only; a KV v1 mount refuses them).
    """

    lease_expires = True  # backends.base.LeaderLease: a KV secret its holder renews with cas

    def __init__(self, name: str, *, url: str, auth: AuthSettings, mount: str = "secret",
                 kv_version: int | None = None, namespace: str | None = None,
                 verify: bool | str = True, timeout: int = 30, reconcile_interval: int = 30,
                 request_prefix: str = DEFAULT_REQUEST_PREFIX,
                 renew_before: tuple[int | None, float | None] = (None, 0.1), events: bool = False) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.auth = auth
        self.mount = mount.strip("/")
        self.namespace = namespace or None
        self.verify = verify
        self.timeout = timeout
        # Vault-triggered renewal (rotator.triggers): how often the daemon reads metadata, where
        # requests land, how early "near expiry" is (seconds or a share of the lifetime), and
        # whether to listen to Vault Enterprise events.
        self.reconcile_interval = reconcile_interval
        self.request_prefix = request_prefix.strip("/")
        self.renew_before = renew_before
        self.events = events
        self.transport = VaultTransport(name, url=self.url, namespace=self.namespace, verify=verify, timeout=timeout)
        self.session = VaultSession(self.transport, auth)
        # Request objects are KV v2 secrets whatever this mount is; the data goes through _kv.
        self._kv2 = KvV2(self.session, self.mount)
        self._requests = VaultRequests(self.session, self._kv2, self.request_prefix)
        self._coordination = VaultCoordination(self._kv2)
        self._kv_version = kv_version
        self._kv_api: KvV1 | KvV2 | None = None

    def __repr__(self) -> str:
        ns = f", namespace={self.namespace!r}" if self.namespace else ""
        return f"VaultBackend({self.name!r}, url={self.url!r}, mount={self.mount!r}{ns}, auth={self.auth.method!r})"

    @classmethod
    def from_config(cls, name: str, options: Options) -> VaultBackend:
        """Read this store's options (the registry calls ``options.finish()`` afterwards); no remote call."""
        options.str("type", "vault")  # chosen by the registry; consumed here so finish() accepts it
        url = options.str("url", None) or first_env("VAULT_ADDR", "BAO_ADDR")
        if not url:
            raise options.error("url", "is required (or export VAULT_ADDR or BAO_ADDR)")
        if not url.startswith(("http://", "https://")):
            raise options.error("url", f"must start with http:// or https://, not {url!r}")
        kv = options.str("kv_version", "auto", choices=("auto", "1", "2"))
        namespace = (options.str("namespace", None) or first_env("VAULT_NAMESPACE", "BAO_NAMESPACE") or "").strip("/")
        timeout = _positive(options, "timeout", 30)
        return cls(
            name, url=url, mount=mount_option(options, "mount", "secret"),
            kv_version=None if kv == "auto" else int(kv), namespace=namespace or None,
            verify=tls_verify_option(options), timeout=timeout,
            reconcile_interval=_positive(options, "reconcile_interval", 30),
            request_prefix=options.str("request_prefix", DEFAULT_REQUEST_PREFIX),
            renew_before=options.share_or_duration("renew_before", "10%"),
            events=options.bool("events", False),
            auth=AuthSettings.from_options(options.mapping("auth", None)),
        )

    # -- what the mount is -------------------------------------------------------------------------
    @property
    def kv_version(self) -> int:
        """1 or 2: from the config, else detected once from the mount (a remote call)."""
        if self._kv_version is None:
            self._kv_version = self._detect_kv_version()
        return self._kv_version

    @property
    def metadata_without_secret(self) -> bool:
        """KV v2 keeps custom_metadata apart from the data; KV v1 keeps it inside the record."""
        return self._kv.metadata_without_secret

    def keeps_metadata_apart(self) -> bool:
        """backends.base.DocumentStore: KV v2's custom_metadata lives beside any value; KV v1 has none."""
        return self.metadata_without_secret

    def layout_known(self) -> bool:
        """backends.base.LazyLayout: the KV version is configured (or was detected already)."""
        return self._kv_version is not None

    def accepts_requests(self) -> bool:
        """backends.base.RotationRequests: flags and request objects need KV v2's custom_metadata
        (with ``kv_version: auto`` this may be the call that detects the version)."""
        return self._kv.accepts_requests

    @property
    def client(self) -> hvac.Client:
        """The hvac client, logged in with the store's token once a call has been made (for tests
        and tools that write beside the rotator)."""
        return self.transport.client


    # -- SecretBackend ---------------------------------------------------------------------------
    def read(self, path: str) -> StoredValue:
        stored = self._kv.read(clean_path(path))
        text = _text_of(stored.text)
        return stored if text is stored.text else StoredValue(text, stored.version, stored.metadata)

    def write(self, path: str, text: str, *, expected_version: Version, metadata: Mapping[str, str | None],
              rotation_id: str) -> Version:
        """Compare-and-set write; returns the new version (KV v2) or revision (KV v1).

        KV v2: see :meth:`KvV2.write` (a failed metadata merge is :class:`WriteOutcomeUnknown`).
        KV v1: see :mod:`backends.vault.kv_v1` (the check and the write are two requests, not atomic).
        """
        path = clean_path(path)
        data = _json_object(text, self.name, path) if text.lstrip().startswith("{") else {TEXT_KEY: text}
        log.debug("%s: write %s (kv v%s, expected version %s, rotation %s)", self.name, path,
                  self.kv_version, expected_version, rotation_id)
        return self._kv.write(path, data, expected_version, metadata)

    def read_metadata(self, path: str) -> dict[str, str] | None:
        """The target's metadata plus ``current_version`` and ``vault_updated_time``.

        KV v2 reads only the metadata endpoint, so a policy without ``read`` on ``data/`` suffices.
        KV v1 must read the record; ``current_version`` is then the rotator revision.
        """
        return self._kv.read_metadata(clean_path(path))

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """Merge ``updates`` into the metadata; a ``None`` value removes that key."""
        self._kv.patch_metadata(clean_path(path), updates)

    def list_managed(self) -> list[str]:
        """Paths under the mount whose metadata says ``managed_by=jfrog-token-rotator`` (sorted)."""
        found: list[str] = []
        self._walk(self._kv, "", 0, found)
        return sorted(found)

    def check(self) -> str:
        """Token lookup-self and mount version, as one line without secrets."""
        info = self.session.lookup_self(op="check")
        ttl = info.get("ttl") or 0
        where = f"{self.url}" + (f" namespace {self.namespace}" if self.namespace else "")
        summary = (f"{self.name}: {where}: mount {self.mount}/ is KV v{self.kv_version}; "
                   f"auth {self.auth.method} ok (policies {', '.join(info.get('policies') or []) or 'none'}, "
                   f"token ttl {f'{ttl}s' if ttl else 'none'})")
        return scrub(summary)

    def close(self) -> None:
        self.transport.close()

    # -- RenewableAuth ---------------------------------------------------------------------------
    def validate_credentials(self) -> None:
        """Resolve the configured secrets now (env vars set, files readable); ConfigError otherwise."""
        self.session.validate_credentials()

    def refresh_auth(self, *, min_ttl: int = 60) -> str:
        """Renew or log in again when the token runs short: ``"ok"``, ``"renewed"`` or ``"relogin"``
        (:meth:`VaultSession.refresh_auth`)."""
        return self.session.refresh_auth(min_ttl=min_ttl)

    def login(self) -> None:
        """Authenticate now (idempotent); every call does it by itself when needed."""
        self.session.login()

    def token_ttl(self) -> int | None:
        """Seconds the store's token has left; ``None`` for a token that never expires."""
        return self.session.token_ttl()

    # -- RotationRequests: backends.vault.requests does the work; KV v1 mounts hold no requests --
    def flag_location(self, path: str) -> str:
        """Where the rotation flag of ``path`` lives: its custom_metadata (``secret/metadata/ci/token``)."""
        return f"{self.mount}/metadata/{clean_path(path)}"

    def pending_requests(self) -> dict[str, list[str]]:
        self._needs_kv2("list requests")
        return self._requests.pending_requests()

    def requests_for(self, target: str) -> list[str]:
        self._needs_kv2("list requests")
        return self._requests.requests_for(target)

    def read_request(self, target: str, request_id: str) -> dict[str, str]:
        self._needs_kv2("read request")
        return self._requests.read_request(target, request_id)

    def request_created(self, target: str, request_id: str) -> str:
        self._needs_kv2("read request")
        return self._requests.request_created(target, request_id)

    def delete_request(self, target: str, request_id: str) -> None:
        self._needs_kv2("delete request")
        self._requests.delete_request(target, request_id)

    def caller_capabilities(self, token: str, path: str) -> list[str]:
        return self._requests.caller_capabilities(token, path)

    def caller_name(self, token: str) -> str:
        return self._requests.caller_name(token)

    def request_rotation(self, path: str, *, token: str, reason: str, requested_by: str, at: str) -> None:
        self._needs_kv2("request rotation")
        self._requests.request_rotation(path, token=token, reason=reason, requested_by=requested_by, at=at)

    def write_request(self, target: str, request_id: str, fields: Mapping[str, str], *, token: str) -> str:
        self._needs_kv2("write request")
        return self._requests.write_request(target, request_id, fields, token=token)

    # -- LeaderLease and RotationClaims: backends.vault.coordination, on KV v2 only -----------------
    def read_lease(self, path: str) -> LeaseRecord:
        return self._kv2_coordination("a leader lease").read_lease(clean_path(path))

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> Version:
        return self._kv2_coordination("a leader lease").take_lease(clean_path(path), holder, fields,
                                                                    expected=expected)

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> Version:
        return self._kv2_coordination("a leader lease").renew_lease(clean_path(path), holder, fields, held=held)

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        self._kv2_coordination("a leader lease").release_lease(clean_path(path), holder, held=held)

    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        return self._kv2_coordination("a rotation claim").claim_rotation(
            clean_path(path), version, holder=holder, rotation_id=rotation_id, ttl=ttl)

    def release_claim(self, path: str, version: Version, *, holder: str) -> None:
        self._kv2_coordination("a rotation claim").release_claim(clean_path(path), version, holder=holder)

    def _kv2_coordination(self, what: str) -> VaultCoordination:
        if self.kv_version != 2:
            raise Unsupported(f"mount {self.mount}/ is KV v{self.kv_version}, which has no check-and-set: "
                              f"{what} needs a KV v2 mount", backend=self.name, path=self.mount)
        return self._coordination

    # -- EventStream -----------------------------------------------------------------------------
    def event_subscription(self, event_type: str) -> tuple[str, dict[str, str]]:
        return self._requests.event_subscription(event_type)

    # -- inside ----------------------------------------------------------------------------------
    @property
    def _kv(self) -> KvV1 | KvV2:
        """The KV API of this mount's version (detecting it is the first remote call, if needed)."""
        if self._kv_api is None:
            self._kv_api = self._kv2 if self.kv_version == 2 else KvV1(self.session, self.mount)
        return self._kv_api

    def _needs_kv2(self, op: str) -> None:
        if not self.accepts_requests():
            raise BackendError(f"{op}: mount {self.mount}/ is KV v{self.kv_version}; rotation requests "
                               "need a KV v2 mount", backend=self.name, path=self.request_prefix)

    def _walk(self, kv: KvV1 | KvV2, prefix: str, depth: int, found: list[str]) -> None:
        """Depth-bounded recursive LIST of the mount, reading the metadata of each secret."""
        if depth > MAX_LIST_DEPTH:
            log.warning("%s: not listing below %s: deeper than %d levels", self.name, prefix, MAX_LIST_DEPTH)
            return
        for key in kv.list_secrets(prefix):
            child = prefix + key
            if child == f"{self._coordination.claim_prefix}/":
                continue  # the replicas' rotation claims: no target there
            if key.endswith("/"):
                self._walk(kv, child, depth + 1, found)
            elif (kv.read_metadata(child) or {}).get("managed_by") == MANAGED_BY:
                found.append(child)

    def _detect_kv_version(self) -> int:
        """``GET sys/internal/ui/mounts/<mount>`` -> options.version.

        https://openbao.org/api-docs/system/internal-ui-mounts/
        """
        where = f"{self.mount}/"
        try:
            resp = self.session.call("detect KV version", where, lambda c: c.adapter.get(
                format_url("/v1/sys/internal/ui/mounts/{0}", self.mount)))
        except BackendError as exc:
            raise BackendError(f"{strip_prefix(exc)} (set kv_version: 1 or 2 to skip detection)",
                               backend=self.name, path=where) from None
        data = resp.get("data") or {}
        if data.get("type") not in ("kv", "generic"):
            raise BackendError(f"detect KV version: mount is of type {data.get('type')!r}, not kv",
                               backend=self.name, path=where)
        version = str((data.get("options") or {}).get("version") or "1")
        log.debug("%s: mount %s is KV v%s", self.name, where, version)
        return 2 if version == "2" else 1


#: Vault KV holds JSON objects; a value that is plain text (a bare token, env text) is kept as
#: ``{"value": <text>}`` (``bao kv get -field=value``) and read back as the text.
TEXT_KEY = "value"


def _text_of(stored_text: str | None) -> str | None:
    if stored_text is None or not stored_text.startswith('{"value"'):
        return stored_text
    data = json.loads(stored_text)
    if isinstance(data, dict) and set(data) == {TEXT_KEY} and isinstance(data[TEXT_KEY], str):
        return data[TEXT_KEY]
    return stored_text


def _json_object(text: str, backend: str, path: str) -> dict:
    """Vault KV stores a JSON object (a map), so the text must be one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackendError(f"write: the value is not valid JSON ({exc.msg})", backend=backend, path=path) from None
    if not isinstance(data, dict):
        raise BackendError(f"write: Vault KV stores a JSON object, not a JSON {type(data).__name__}",
                           backend=backend, path=path)
    return data


def _positive(options: Options, key: str, default: int) -> int:
    seconds = options.duration(key, default)
    if seconds <= 0:
        raise options.error(key, "must be more than 0 seconds")
    return seconds


__all__ = ["AuthSettings", "Credentials", "VaultBackend", "VaultPermissionDenied"]
