"""HashiCorp Vault / OpenBao KV backend (hvac): KV v2 with check-and-set, KV v1 with a revision counter.

One target is one KV secret ``<mount>/<path>``; its data is the stored record (a JSON object).

* **KV v2** (the normal case): the compare-and-set version is Vault's ``current_version`` and the
  write uses ``cas=``, so a concurrent writer makes our write fail instead of being overwritten.
  Non-secret facts (token id, expiry, generation, ``managed_by``) go into ``custom_metadata`` so
  status and triggers can read them with a policy that cannot read the token.
* **KV v1** has neither versions nor metadata. The record carries ``rotator.revision`` (the CAS
  version) and ``rotator.metadata``; a write re-reads and compares the revision first. That is a
  *weaker* guarantee: the read-check-write is not atomic, so two writers racing within one round
  trip can both succeed (last one wins). Prefer KV v2.

Auth methods: ``token`` (env/file, falling back to ``$VAULT_TOKEN`` then ``$BAO_TOKEN``), ``approle``
and ``kubernetes``. Credentials are resolved at first use, not at construction. Every remote call
goes through :meth:`VaultBackend._call`, which logs in again once and retries when a token from
AppRole/Kubernetes is refused (expired, revoked, past its max TTL) instead of failing until restart.

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
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as hvac_exc
from hvac.utils import format_url

from backends.base import BackendError, CASConflict, StoredValue, Version, WriteOutcomeUnknown
from rotator.core.http_env import default_verify, pin_environment
from rotator.core.options import ConfigError, Options, SecretRef
from rotator.core.record import MANAGED_BY
from rotator.core.redact import register, scrub

log = logging.getLogger(__name__)

T = TypeVar("T")

AUTH_METHODS = ("token", "approle", "kubernetes")
DEFAULT_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_REQUEST_PREFIX = "jfrog-rotator-requests"
MAX_LIST_DEPTH = 16
MERGE_PATCH = "application/merge-patch+json"
_CAS_MISMATCH = "check-and-set parameter did not match"
_STATUS = {hvac_exc.InvalidRequest: 400, hvac_exc.Unauthorized: 401, hvac_exc.Forbidden: 403,
           hvac_exc.InvalidPath: 404, hvac_exc.RateLimitExceeded: 429, hvac_exc.InternalServerError: 500,
           hvac_exc.VaultNotInitialized: 501, hvac_exc.BadGateway: 502, hvac_exc.VaultDown: 503}


class VaultPermissionDenied(BackendError):
    """Vault answered 403: the token lacks the capability, or it is no longer valid."""


def _first_env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


# ---------------------------------------------------------------------------------------------
# Auth configuration: read eagerly (key-path errors at load time), resolved lazily (at login)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Credentials:
    """Resolved login material; never printed."""

    token: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    jwt: str | None = None

    def __repr__(self) -> str:
        return "Credentials(***)"


@dataclass(frozen=True)
class AuthSettings:
    """The ``auth`` mapping of a vault backend. ``where``/``source`` build key-path errors later."""

    method: str = "token"
    where: str = "auth"
    source: str = ""
    mount: str = ""
    token: SecretRef | None = None
    role_id: str | None = None
    role_id_ref: SecretRef | None = None
    secret_id: SecretRef | None = None
    role: str | None = None
    jwt_file: str = DEFAULT_JWT_FILE

    @property
    def can_relogin(self) -> bool:
        """A fixed token cannot be replaced; AppRole and Kubernetes can fetch a fresh one."""
        return self.method != "token"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source, f"{self.where}.{key}" if self.where else key, message)

    @classmethod
    def from_options(cls, auth: Options) -> AuthSettings:
        method = auth.str("method", "token", choices=AUTH_METHODS)
        common = {"method": method, "where": auth.where, "source": auth.source}
        if method == "token":
            settings = cls(**common, token=auth.secret("token", "Vault token"))
        elif method == "approle":
            settings = cls(**common, mount=_mount_name(auth, "mount", "approle"), **_read_role_id(auth),
                           secret_id=auth.secret("secret_id", "AppRole secret_id", required=True))
        else:
            settings = cls(**common, mount=_mount_name(auth, "mount", "kubernetes"), role=auth.str("role"),
                           jwt_file=auth.str("jwt_file", DEFAULT_JWT_FILE))
        auth.finish()  # keys of another method (or typos) are errors, not silently ignored
        return settings

    def resolve(self) -> Credentials:
        """Read the secrets from env/files now; :class:`ConfigError` names the key on failure."""
        if self.method == "token":
            creds = Credentials(token=self._resolve_token())
        elif self.method == "approle":
            role_id = self.role_id or self._resolve_ref(self.role_id_ref, "role_id")
            creds = Credentials(role_id=role_id, secret_id=self._resolve_ref(self.secret_id, "secret_id"))
        else:
            creds = Credentials(jwt=self._read_jwt())
        register(creds.token, creds.role_id, creds.secret_id, creds.jwt)
        return creds

    def _resolve_token(self) -> str:
        if self.token is not None and self.token.is_set():
            return self._resolve_ref(self.token, "token")
        token = _first_env("VAULT_TOKEN", "BAO_TOKEN")
        if not token:
            raise self.error("token_env", "no Vault token: set token_env or token_file, "
                                          "or export VAULT_TOKEN (or BAO_TOKEN)")
        return token

    def _resolve_ref(self, ref: SecretRef | None, base: str) -> str:
        if ref is None:
            raise self.error(f"{base}_env", "is required")
        key = f"{base}_env" if ref.env else f"{base}_file" if ref.file else f"{base}_insecure_inline"
        try:
            return ref.resolve()
        except ValueError as exc:
            # SecretRef's message starts with its own key path; ours names the exact key instead.
            raise self.error(key, str(exc).removeprefix(f"{ref.what}: ")) from None

    def _read_jwt(self) -> str:
        try:
            jwt = Path(self.jwt_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.error("jwt_file", f"cannot read {self.jwt_file}: {exc.strerror}") from None
        if not jwt:
            raise self.error("jwt_file", f"{self.jwt_file} is empty")
        return jwt


def _read_role_id(auth: Options) -> dict[str, Any]:
    """``role_id`` may be a plain string (it is an identifier, not the secret half) or env/file."""
    ref_keys = ("role_id_env", "role_id_file", "role_id_insecure_inline")
    if auth.has("role_id"):
        for key in ref_keys:
            if auth.has(key):
                raise auth.error(key, f"give only one of role_id, {key}")
        return {"role_id": auth.str("role_id")}
    if not any(auth.has(k) for k in ref_keys):
        raise auth.error("role_id", "is required (role_id, role_id_env or role_id_file)")
    return {"role_id_ref": auth.secret("role_id", "AppRole role_id")}


def _mount_name(options: Options, key: str, default: str) -> str:
    value = options.str(key, default).strip("/")
    if not value or any(part in ("", ".", "..") for part in value.split("/")) or any(c.isspace() for c in value):
        raise options.error(key, f"{value!r} is not a valid mount path")
    return value


# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------
class VaultBackend:
    """A Vault/OpenBao KV mount as a :class:`backends.base.SecretBackend`."""

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
        self._kv_version = kv_version
        self._logged_in = False
        self._auth_lock = threading.RLock()
        if verify is False:
            log.warning("%s: TLS certificate verification is disabled for %s", name, self.url)
        # token="" stops hvac from picking up $VAULT_TOKEN or ~/.vault-token behind our back:
        # the token comes only from the configured auth method, at login().
        self._tls_verify = default_verify() if verify is True else verify
        self._client = hvac.Client(url=self.url, token="", verify=self._tls_verify, timeout=timeout,
                                   namespace=self.namespace)
        pin_environment(self._client.adapter.session, self.url)

    def __repr__(self) -> str:
        ns = f", namespace={self.namespace!r}" if self.namespace else ""
        return f"VaultBackend({self.name!r}, url={self.url!r}, mount={self.mount!r}{ns}, auth={self.auth.method!r})"

    # -- construction from config ------------------------------------------------------------
    @classmethod
    def from_config(cls, name: str, options: Options) -> VaultBackend:
        """Read this backend's options (the registry calls ``options.finish()`` afterwards)."""
        options.str("type", "vault")  # chosen by the registry; consumed here so finish() accepts it
        url = options.str("url", None) or _first_env("VAULT_ADDR", "BAO_ADDR")
        if not url:
            raise options.error("url", "is required (or export VAULT_ADDR or BAO_ADDR)")
        if not url.startswith(("http://", "https://")):
            raise options.error("url", f"must start with http:// or https://, not {url!r}")
        kv = options.str("kv_version", "auto", choices=("auto", "1", "2"))
        namespace = (options.str("namespace", None) or _first_env("VAULT_NAMESPACE", "BAO_NAMESPACE") or "").strip("/")
        timeout = options.duration("timeout", 30)
        if timeout <= 0:
            raise options.error("timeout", "must be more than 0 seconds")
        return cls(
            name, url=url, mount=_mount_name(options, "mount", "secret"),
            kv_version=None if kv == "auto" else int(kv), namespace=namespace or None,
            verify=_tls_verify(options), timeout=timeout,
            reconcile_interval=_positive(options, "reconcile_interval", 30),
            request_prefix=options.str("request_prefix", DEFAULT_REQUEST_PREFIX),
            renew_before=options.share_or_duration("renew_before", "10%"),
            events=options.bool("events", False),
            auth=AuthSettings.from_options(options.mapping("auth", None)),
        )

    def validate_credentials(self) -> None:
        """Resolve the configured secrets now (env vars set, files readable); ConfigError otherwise."""
        self.auth.resolve()

    # -- properties --------------------------------------------------------------------------
    @property
    def kv_version(self) -> int:
        """1 or 2: from the config, else detected once from the mount (a remote call)."""
        if self._kv_version is None:
            self._kv_version = self._detect_kv_version()
        return self._kv_version

    @property
    def metadata_without_secret(self) -> bool:
        """KV v2 keeps custom_metadata apart from the data; KV v1 keeps it inside the record."""
        return self.kv_version == 2

    @property
    def accepts_requests(self) -> bool:
        """backends.base.RotationRequests: flags and request objects need KV v2's custom_metadata."""
        return self.kv_version == 2

    def flag_location(self, path: str) -> str:
        return f"{self.mount}/metadata/{_clean_path(path)}"

    # -- SecretBackend ----------------------------------------------------------------------
    def read(self, path: str) -> StoredValue:
        path = _clean_path(path)
        return self._v2_read(path) if self.kv_version == 2 else self._v1_read(path)

    def write(self, path: str, text: str, *, expected_version: Version, metadata: Mapping[str, str],
              rotation_id: str) -> Version:
        """Compare-and-set write; returns the new version (KV v2) or revision (KV v1).

        KV v2: the data write (``cas=expected_version or 0``) is the commit point; custom_metadata is
        merged after it. If that merge fails the value *is* stored, so the error raised is
        :class:`WriteOutcomeUnknown` (re-read to see it), never a plain failure.
        KV v1: see the module docstring: the check and the write are two requests, not atomic.
        """
        path = _clean_path(path)
        data = _json_object(text, self.name, path)
        log.debug("%s: write %s (kv v%s, expected version %s, rotation %s)", self.name, path,
                  self.kv_version, expected_version, rotation_id)
        if self.kv_version == 2:
            return self._v2_write(path, data, expected_version, metadata)
        return self._v1_write(path, data, expected_version, metadata)

    def read_metadata(self, path: str) -> dict[str, str] | None:
        """custom_metadata plus ``vault_current_version`` and ``vault_updated_time``.

        KV v2 reads only the metadata endpoint, so a policy without ``read`` on ``data/`` suffices.
        KV v1 must read the record (``rotator.metadata``); ``vault_current_version`` is then the
        rotator revision, i.e. what :meth:`write` expects, and ``vault_updated_time`` is empty.
        """
        path = _clean_path(path)
        if self.kv_version == 2:
            return self._v2_read_metadata(path)
        obj = self._v1_get(path, "read metadata")
        if obj is None:
            return None
        return {**_v1_metadata(obj), "vault_current_version": str(_v1_revision(obj)), "vault_updated_time": ""}

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """Merge ``updates`` into the metadata; a ``None`` value removes that key."""
        path = _clean_path(path)
        if self.kv_version == 2:
            self._v2_patch_custom_metadata(path, updates, "patch metadata")
        else:
            self._v1_patch_metadata(path, updates)

    def list_managed(self) -> list[str]:
        """Paths under the mount whose metadata says ``managed_by=jfrog-token-rotator`` (sorted)."""
        found: list[str] = []
        self._walk("", 0, found)
        return sorted(found)

    def check(self) -> str:
        """Token lookup-self and mount version, as one line without secrets."""
        info = self._call("check", "auth/token/lookup-self", lambda c: c.auth.token.lookup_self())["data"]
        ttl = info.get("ttl") or 0
        where = f"{self.url}" + (f" namespace {self.namespace}" if self.namespace else "")
        summary = (f"{self.name}: {where}: mount {self.mount}/ is KV v{self.kv_version}; "
                   f"auth {self.auth.method} ok (policies {', '.join(info.get('policies') or []) or 'none'}, "
                   f"token ttl {f'{ttl}s' if ttl else 'none'})")
        return scrub(summary)

    def close(self) -> None:
        self._client.adapter.close()

    # -- Vault-triggered renewal: requests, flags, the caller's rights -----------------------
    def pending_requests(self) -> dict[str, list[str]]:
        """Request objects waiting under ``<mount>/<request_prefix>/``: target name -> request ids.

        One LIST of the prefix, then one LIST per target that has requests (not per target).
        https://openbao.org/api-docs/secret/kv/kv-v2/#list-secrets
        """
        found: dict[str, list[str]] = {}
        for entry in self._list(self.request_prefix):
            if entry.endswith("/"):
                ids = self.requests_for(entry.rstrip("/"))
                if ids:
                    found[entry.rstrip("/")] = ids
        return found

    def requests_for(self, target: str) -> list[str]:
        """The ids of the request objects waiting for one target (one LIST)."""
        return sorted(i for i in self._list(f"{self.request_prefix}/{target}") if not i.endswith("/"))

    def read_request(self, target: str, request_id: str) -> dict[str, str]:
        """The request object's fields (``requested_by``, ``reason``); ``{}`` when it is gone."""
        stored = self._v2_read(f"{self.request_prefix}/{target}/{request_id}")
        if stored.text is None:
            return {}
        data = json.loads(stored.text)
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def delete_request(self, target: str, request_id: str) -> None:
        """``DELETE <mount>/metadata/<prefix>/<target>/<id>``: the request and all its versions."""
        path = f"{self.request_prefix}/{target}/{request_id}"
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)
        self._call("delete request", path, lambda c: c.adapter.delete(url))

    def caller_capabilities(self, token: str, path: str) -> list[str]:
        """What ``token`` (a caller's, not ours) may do on the target's metadata path.

        ``POST sys/capabilities-self`` authenticated *as the caller*: the daemon never uses its
        own rights to decide for someone else. https://openbao.org/api-docs/system/capabilities-self/
        """
        metadata_path = f"{self.mount}/metadata/{_clean_path(path)}"
        try:
            resp = self._as_caller(token).adapter.post("/v1/sys/capabilities-self", json={"paths": [metadata_path]})
        except hvac_exc.Forbidden:
            return []
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self._error("check caller capabilities", path, exc, False) from None
        data = resp.get("data", resp) if isinstance(resp, dict) else {}
        caps = data.get(metadata_path) or data.get("capabilities") or []
        return [str(c) for c in caps]

    def request_rotation(self, path: str, *, token: str, reason: str, requested_by: str, at: str) -> None:
        """Set ``rotate_requested=true`` in the target's custom_metadata *with the caller's token*
        (needs only the ``patch`` capability on the metadata path)."""
        path = _clean_path(path)
        body = json.dumps({"custom_metadata": {"rotate_requested": "true",
                                               "requested_by": _metadata_value(requested_by),
                                               "requested_reason": _metadata_value(reason),
                                               "requested_at": at}})
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)
        try:
            self._as_caller(token).adapter.request("PATCH", url, headers={"Content-Type": MERGE_PATCH}, data=body)
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self._error("request rotation", path, exc, False) from None

    def write_request(self, target: str, request_id: str, fields: Mapping[str, str], *, token: str) -> str:
        """Create the request object ``<prefix>/<target>/<id>`` *with the caller's token*
        (needs only ``create`` on the request prefix); returns its path."""
        path = f"{self.request_prefix}/{target}/{request_id}"
        try:
            self._as_caller(token).secrets.kv.v2.create_or_update_secret(path=path, secret=dict(fields), cas=0,
                                                                         mount_point=self.mount)
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self._error("write request", path, exc, False) from None
        return f"{self.mount}/{path}"

    def caller_name(self, token: str) -> str:
        """The caller token's display name (``token/lookup-self``), or ``""`` when it may not ask."""
        try:
            data = self._as_caller(token).auth.token.lookup_self().get("data") or {}
        except (hvac_exc.VaultError, requests.RequestException):
            return ""
        return str(data.get("display_name") or "")

    def event_subscription(self, event_type: str) -> tuple[str, dict[str, str]]:
        """WebSocket URL and headers to subscribe to ``event_type`` (Vault Enterprise >= 1.16).

        https://developer.hashicorp.com/vault/docs/concepts/events
        """
        self.login()
        scheme = "wss" if self.url.startswith("https://") else "ws"
        url = f"{scheme}://{self.url.split('://', 1)[1]}/v1/sys/events/subscribe/{event_type}?json=true"
        headers = {"X-Vault-Token": self._client.token}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        return url, headers

    def _as_caller(self, token: str) -> hvac.Client:
        register(token)
        client = hvac.Client(url=self.url, token=token, verify=self._tls_verify, timeout=self.timeout,
                             namespace=self.namespace)
        pin_environment(client.adapter.session, self.url)
        return client

    def _list(self, path: str) -> list[str]:
        def fn(c: hvac.Client) -> list[str]:
            try:
                return list((c.secrets.kv.v2.list_secrets(path=path, mount_point=self.mount).get("data") or {})
                            .get("keys") or [])
            except hvac_exc.InvalidPath:
                return []

        return self._call("list", path, fn)

    # -- auth lifecycle ----------------------------------------------------------------------
    def login(self) -> None:
        """Authenticate once (idempotent). The token method only installs the token."""
        with self._auth_lock:
            if not self._logged_in:
                self._login()

    def token_ttl(self) -> int | None:
        """Seconds the current token has left; ``None`` for a token that never expires."""
        info = self._call("token ttl", "auth/token/lookup-self", lambda c: c.auth.token.lookup_self())["data"]
        return int(info.get("ttl") or 0) or None

    def refresh_auth(self, *, min_ttl: int = 60) -> str:
        """Keep the token alive: ``"ok"`` (nothing to do), ``"renewed"`` or ``"relogin"``.

        Renews (``renew_self``) when the token is renewable and has less than
        ``max(min_ttl, creation_ttl / 3)`` left; logs in again (AppRole/Kubernetes) when it is not
        renewable, renewal cannot lift it above that threshold (max TTL reached), or it is no
        longer valid. A fixed token that is no longer valid raises :class:`VaultPermissionDenied`.
        """
        self.login()
        try:
            info = self._call("lookup-self", "auth/token/lookup-self",
                              lambda c: c.auth.token.lookup_self(), relogin=False)["data"]
        except VaultPermissionDenied:
            return self._relogin_or_raise("the token is no longer valid")
        ttl, creation_ttl = int(info.get("ttl") or 0), int(info.get("creation_ttl") or 0)
        threshold = max(min_ttl, creation_ttl // 3)
        if not ttl or ttl >= threshold:
            return "ok"
        if info.get("renewable"):
            renewed = self._renew(max(creation_ttl, min_ttl))
            if renewed is not None and (renewed >= threshold or not self.auth.can_relogin):
                return "renewed"
        if self.auth.can_relogin:
            self._relogin()
            return "relogin"
        log.warning("%s: the Vault token expires in %ss and cannot be renewed; auth method 'token' "
                    "cannot log in again: replace the token", self.name, ttl)
        return "ok"

    def _renew(self, increment: int) -> int | None:
        """``POST auth/token/renew-self`` (https://openbao.org/api-docs/auth/token/#renew-a-token-self).

        Returns the new TTL, or ``None`` when renewal was refused (a relogin is then attempted).
        """
        try:
            resp = self._call("renew", "auth/token/renew-self",
                              lambda c: c.auth.token.renew_self(increment=increment), relogin=False)
        except BackendError as exc:
            if not self.auth.can_relogin:
                raise
            log.info("%s: token renewal failed (%s); logging in again", self.name, exc)
            return None
        return int((resp.get("auth") or {}).get("lease_duration") or 0)

    def _relogin_or_raise(self, why: str) -> str:
        if not self.auth.can_relogin:
            raise VaultPermissionDenied(f"auth: {why} and auth method 'token' cannot log in again",
                                        backend=self.name, path="auth/token")
        log.info("%s: %s; logging in again with %s", self.name, why, self.auth.method)
        self._relogin()
        return "relogin"

    def _relogin(self, failed_token: str | None = None) -> None:
        """Log in again, unless another thread already replaced ``failed_token`` meanwhile."""
        with self._auth_lock:
            if failed_token is not None and self._client.token != failed_token:
                return
            self._login()

    def _login(self) -> None:
        """Obtain a token with the configured method.

        AppRole: https://openbao.org/api-docs/auth/approle/#login-with-approle ;
        Kubernetes: https://openbao.org/api-docs/auth/kubernetes/#login .
        """
        try:
            creds = self.auth.resolve()
        except ConfigError as exc:
            raise BackendError(f"login: {exc}", backend=self.name, path=f"auth/{self.auth.mount or 'token'}") from None
        self._logged_in = False
        if self.auth.method == "token":
            self._client.token = creds.token
        else:
            self._client.token = ""  # the login request itself must not carry a dead token
            self._raw_call("login", f"auth/{self.auth.mount}", self._login_request(creds))
        register(self._client.token)
        self._logged_in = True
        log.debug("%s: logged in with %s", self.name, self.auth.method)

    def _login_request(self, creds: Credentials) -> Callable[[hvac.Client], Any]:
        auth = self.auth
        if auth.method == "approle":
            return lambda c: c.auth.approle.login(role_id=creds.role_id, secret_id=creds.secret_id,
                                                  mount_point=auth.mount, use_token=True)
        return lambda c: c.auth.kubernetes.login(role=auth.role, jwt=creds.jwt, mount_point=auth.mount,
                                                 use_token=True)

    # -- the one door to hvac ------------------------------------------------------------------
    def _call(self, op: str, path: str, fn: Callable[[hvac.Client], T], *, write: bool = False,
              relogin: bool = True) -> T:
        """Run one hvac call with auth handled and errors mapped to :class:`BackendError`.

        A 403 with AppRole/Kubernetes auth usually means the token expired or was revoked (max TTL
        reached, Vault restarted); log in again once and retry, so a long-running daemon recovers
        on its own. A 403 means nothing was applied, so retrying a write is safe.
        """
        self.login()
        token = self._client.token
        try:
            return fn(self._client)
        except hvac_exc.Forbidden as exc:
            if not (relogin and self.auth.can_relogin):
                raise self._error(op, path, exc, write) from None
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self._error(op, path, exc, write) from None
        log.info("%s: %s %s: permission denied; logging in again with %s and retrying once",
                 self.name, op, path, self.auth.method)
        self._relogin(failed_token=token)
        return self._raw_call(op, path, fn, write=write)

    def _raw_call(self, op: str, path: str, fn: Callable[[hvac.Client], T], *, write: bool = False) -> T:
        """One hvac call without login handling (used by login itself and by the retry)."""
        try:
            return fn(self._client)
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self._error(op, path, exc, write) from None

    def _error(self, op: str, path: str, exc: Exception, write: bool) -> BackendError:
        """Map an hvac/requests error to a BackendError naming backend, path and operation."""
        kw = {"backend": self.name, "path": path}
        if isinstance(exc, requests.RequestException):
            reason = _transport_reason(exc, self.timeout)
            # Only a TLS failure proves the request never reached Vault; anything else during a
            # write (timeout, reset, refused after a retry) leaves its outcome open.
            cls = WriteOutcomeUnknown if write and not isinstance(exc, requests.exceptions.SSLError) else BackendError
            return cls(f"{op}: cannot reach {self.url}: {reason}", **kw)
        detail = _server_says(exc)
        status = _STATUS.get(type(exc))
        if isinstance(exc, hvac_exc.InvalidRequest) and _CAS_MISMATCH in detail:
            return CASConflict(f"{op}: the value changed since it was read ({detail})", **kw)
        if isinstance(exc, hvac_exc.Forbidden):
            return VaultPermissionDenied(f"{op}: permission denied", **kw)
        if isinstance(exc, hvac_exc.InvalidPath):
            return BackendError(f"{op}: not found{': ' + detail if detail else ''}", **kw)
        # A gateway error or an unexpected status may hide a write that was applied behind it.
        unknown = write and isinstance(exc, (hvac_exc.BadGateway, hvac_exc.UnexpectedError))
        cls = WriteOutcomeUnknown if unknown else BackendError
        return cls(f"{op}: {detail or 'failed'}{f' (HTTP {status})' if status else ''}", **kw)

    # -- mount detection ---------------------------------------------------------------------
    def _detect_kv_version(self) -> int:
        """``GET sys/internal/ui/mounts/<mount>`` -> options.version.

        https://openbao.org/api-docs/system/internal-ui-mounts/
        """
        where = f"{self.mount}/"
        try:
            resp = self._call("detect KV version", where,
                              lambda c: c.adapter.get(format_url("/v1/sys/internal/ui/mounts/{0}", self.mount)))
        except BackendError as exc:
            raise BackendError(f"{_strip_prefix(exc)} (set kv_version: 1 or 2 to skip detection)",
                               backend=self.name, path=where) from None
        data = resp.get("data") or {}
        if data.get("type") not in ("kv", "generic"):
            raise BackendError(f"detect KV version: mount is of type {data.get('type')!r}, not kv",
                               backend=self.name, path=where)
        version = str((data.get("options") or {}).get("version") or "1")
        log.debug("%s: mount %s is KV v%s", self.name, where, version)
        return 2 if version == "2" else 1

    # -- KV v2 -------------------------------------------------------------------------------
    def _v2_read(self, path: str) -> StoredValue:
        """``GET <mount>/data/<path>`` (https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-version)."""
        def fn(c: hvac.Client) -> dict | None:
            try:
                return c.secrets.kv.v2.read_secret_version(path=path, mount_point=self.mount,
                                                           raise_on_deleted_version=False)
            except hvac_exc.InvalidPath as exc:
                # A deleted or destroyed current version answers 404 *with* its metadata; a path
                # that never existed answers 404 without any.
                meta = ((exc.json or {}).get("data") or {}).get("metadata") if isinstance(exc.json, dict) else None
                return exc.json if isinstance(meta, dict) and meta.get("version") else None

        resp = self._call("read", path, fn)
        if resp is None:
            return StoredValue(None, None)
        data = resp.get("data") or {}
        meta = data.get("metadata") or {}
        value = data.get("data")
        text = json.dumps(value) if value is not None else None
        return StoredValue(text, int(meta.get("version") or 0), _str_map(meta.get("custom_metadata")))

    def _v2_write(self, path: str, data: dict, expected: Version, metadata: Mapping[str, str]) -> int:
        """``POST <mount>/data/<path>`` with ``options.cas``
        (https://openbao.org/api-docs/secret/kv/kv-v2/#create-update-secret)."""
        resp = self._call("write", path, lambda c: c.secrets.kv.v2.create_or_update_secret(
            path=path, secret=data, cas=int(expected or 0), mount_point=self.mount), write=True)
        version = int(resp["data"]["version"])
        if metadata:
            # rotator_version tells later readers which version the rotator wrote: a higher
            # current_version means someone wrote the secret by hand (Vault-triggered renewal).
            metadata = {**metadata, "rotator_version": str(version)}
            try:
                self._v2_patch_custom_metadata(path, metadata, "write metadata")
            except BackendError as exc:
                raise WriteOutcomeUnknown(f"write: the value was stored as version {version}, but updating "
                                          f"its custom_metadata failed: {_strip_prefix(exc)}",
                                          backend=self.name, path=path) from None
        return version

    def _v2_patch_custom_metadata(self, path: str, updates: Mapping[str, str | None], op: str) -> None:
        """``PATCH <mount>/metadata/<path>`` as a JSON merge patch; hvac has no method for it.

        https://openbao.org/api-docs/secret/kv/kv-v2/#patch-metadata (needs the ``patch`` capability).
        """
        # Vault refuses empty values and values over 512 bytes: an empty value removes the key
        # (merge-patch null), a long one is cut.
        body = json.dumps({"custom_metadata": {str(k): _metadata_value(v) for k, v in updates.items()}})
        url = format_url("/v1/{0}/metadata/{1}", self.mount, path)
        self._call(op, path, lambda c: c.adapter.request("PATCH", url, headers={"Content-Type": MERGE_PATCH},
                                                          data=body))

    def _v2_read_metadata(self, path: str) -> dict[str, str] | None:
        """``GET <mount>/metadata/<path>`` (https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-metadata)."""
        def fn(c: hvac.Client) -> dict | None:
            try:
                return c.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.mount)
            except hvac_exc.InvalidPath:
                return None

        resp = self._call("read metadata", path, fn)
        if resp is None:
            return None
        data = resp.get("data") or {}
        return {**_str_map(data.get("custom_metadata")),
                "vault_current_version": str(data.get("current_version") or 0),
                "vault_updated_time": str(data.get("updated_time") or "")}

    # -- KV v1 -------------------------------------------------------------------------------
    def _v1_get(self, path: str, op: str = "read") -> dict | None:
        """``GET <mount>/<path>`` (https://openbao.org/api-docs/secret/kv/kv-v1/#read-secret)."""
        def fn(c: hvac.Client) -> dict | None:
            try:
                return c.secrets.kv.v1.read_secret(path=path, mount_point=self.mount)
            except hvac_exc.InvalidPath:
                return None

        resp = self._call(op, path, fn)
        return None if resp is None else (resp.get("data") or {})

    def _v1_read(self, path: str) -> StoredValue:
        obj = self._v1_get(path)
        if obj is None:
            return StoredValue(None, None)
        return StoredValue(json.dumps(obj), _v1_revision(obj), _v1_metadata(obj))

    def _v1_write(self, path: str, data: dict, expected: Version, metadata: Mapping[str, str | None],
                  op: str = "write") -> int:
        """Re-read, compare ``rotator.revision`` with ``expected``, then ``POST <mount>/<path>``.

        Not atomic (KV v1 has no CAS): https://openbao.org/api-docs/secret/kv/kv-v1/#create-update-secret
        """
        current = self._v1_get(path, op)
        found = None if current is None else _v1_revision(current)
        if not _revision_matches(expected, found):
            raise CASConflict(f"{op}: expected revision {expected}, found "
                              f"{'no value' if found is None else found}", backend=self.name, path=path)
        merged = {**(_v1_metadata(current) if current else {}), **metadata}
        rotator = dict(data["rotator"]) if isinstance(data.get("rotator"), dict) else {}
        rotator["revision"] = (found or 0) + 1
        rotator["metadata"] = {str(k): str(v) for k, v in merged.items() if v is not None}
        record = {**data, "rotator": rotator}
        self._call(op, path, lambda c: c.secrets.kv.v1.create_or_update_secret(
            path=path, secret=record, mount_point=self.mount), write=True)
        return rotator["revision"]

    def _v1_patch_metadata(self, path: str, updates: Mapping[str, str | None], attempts: int = 3) -> None:
        """Read-modify-write of ``rotator.metadata``; retried when another writer got in between."""
        for attempt in range(attempts):
            current = self._v1_get(path, "patch metadata")
            if current is None:
                raise BackendError("patch metadata: not found", backend=self.name, path=path)
            try:
                self._v1_write(path, current, _v1_revision(current), updates, op="patch metadata")
                return
            except CASConflict:
                if attempt == attempts - 1:
                    raise

    # -- listing -----------------------------------------------------------------------------
    def _walk(self, prefix: str, depth: int, found: list[str]) -> None:
        """Recursive LIST (https://openbao.org/api-docs/secret/kv/kv-v2/#list-secrets), depth-bounded."""
        if depth > MAX_LIST_DEPTH:
            log.warning("%s: not listing below %s: deeper than %d levels", self.name, prefix, MAX_LIST_DEPTH)
            return
        for key in self._list(prefix):
            child = prefix + key
            if key.endswith("/"):
                self._walk(child, depth + 1, found)
            elif self._is_managed(child):
                found.append(child)

    def _list(self, prefix: str) -> list[str]:
        kv = self._kv_api()

        def fn(c: hvac.Client) -> list[str]:
            try:
                resp = kv(c).list_secrets(path=prefix, mount_point=self.mount)
            except hvac_exc.InvalidPath:  # an empty folder or mount answers 404
                return []
            return list((resp.get("data") or {}).get("keys") or [])

        return self._call("list", prefix or f"{self.mount}/", fn)

    def _kv_api(self) -> Callable[[hvac.Client], Any]:
        """The hvac KV API object for this mount's version."""
        version = self.kv_version
        return (lambda c: c.secrets.kv.v2) if version == 2 else (lambda c: c.secrets.kv.v1)

    def _is_managed(self, path: str) -> bool:
        if self.kv_version == 2:
            meta = self._v2_read_metadata(path) or {}
        else:
            obj = self._v1_get(path, "list")
            meta = _v1_metadata(obj) if obj else {}
        return meta.get("managed_by") == MANAGED_BY


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------
def _tls_verify(options: Options) -> bool | str:
    """``ca_cert`` (or $VAULT_CACERT/$BAO_CACERT) as the CA bundle; ``tls_verify: false`` turns checks off."""
    from_config = options.str("ca_cert", None)
    ca_cert = from_config or _first_env("VAULT_CACERT", "BAO_CACERT")
    verify = options.bool("tls_verify", True)
    if not verify:
        return False
    if ca_cert:
        if not Path(ca_cert).is_file():
            origin = "" if from_config else " (from $VAULT_CACERT/$BAO_CACERT)"
            raise options.error("ca_cert", f"file {ca_cert}{origin} does not exist")
        return ca_cert
    return True


def _clean_path(path: str) -> str:
    cleaned = str(path).strip("/")
    if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise BackendError(f"invalid secret path {path!r}")
    return cleaned


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


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _v1_revision(obj: Any) -> int:
    """``rotator.revision`` of a KV v1 record; 0 when absent or not a non-negative integer."""
    rotator = obj.get("rotator") if isinstance(obj, Mapping) else None
    revision = rotator.get("revision") if isinstance(rotator, Mapping) else None
    if isinstance(revision, str) and revision.isdigit():
        revision = int(revision)
    return revision if isinstance(revision, int) and not isinstance(revision, bool) and revision >= 0 else 0


def _v1_metadata(obj: Any) -> dict[str, str]:
    rotator = obj.get("rotator") if isinstance(obj, Mapping) else None
    return _str_map(rotator.get("metadata")) if isinstance(rotator, Mapping) else {}


def _revision_matches(expected: Version, found: int | None) -> bool:
    """``None`` expects no value at all (create-only); 0 also accepts a missing value."""
    if expected is None:
        return found is None
    return int(expected) == (found or 0)


def _server_says(exc: Exception) -> str:
    """The server's error text without Go's multierror wrapping ("1 error occurred:\\n\\t* ...")."""
    errors = getattr(exc, "errors", None) or ([exc.args[0]] if exc.args and exc.args[0] else [])
    lines: list[str] = []
    for error in errors:
        for line in str(error).splitlines():
            line = line.strip().lstrip("*").strip()
            if line and not line.endswith("error occurred:") and not line.endswith("errors occurred:"):
                lines.append(line)
    return scrub("; ".join(lines))


def _transport_reason(exc: requests.RequestException, timeout: int) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (check ca_cert / tls_verify)"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout}s"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name not resolved"
    return f"connection failed ({type(exc).__name__})"


def _strip_prefix(exc: BackendError) -> str:
    """The message of ``exc`` without its ``backend:path: `` prefix (to re-wrap it)."""
    text = str(exc)
    prefix = f"{exc.backend}:{exc.path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


__all__ = ["AuthSettings", "Credentials", "VaultBackend", "VaultPermissionDenied"]


def _metadata_value(value: str | None) -> str | None:
    """A custom_metadata value Vault accepts: non-empty, printable, at most 512 bytes; ``None`` removes it."""
    if value is None or value == "":
        return None
    printable = "".join(c if c.isprintable() else " " for c in str(value))  # Vault refuses the rest
    return printable.encode("utf-8")[:512].decode("utf-8", "ignore")
