"""How a Vault/OpenBao store logs in and keeps its token alive: ``token``, ``approle``, ``kubernetes``.

The ``auth`` options are read eagerly (a wrong key is an error at load time) and the secrets they
point to are resolved lazily, at the first login (``docs/configuration.md``, the ``vault`` store).
:class:`VaultSession` makes every authenticated call: it logs in once, and when a token from
AppRole/Kubernetes is refused (expired, revoked, past its max TTL) it logs in again and retries once,
so a long-running daemon recovers instead of failing until restart.

API pages: https://openbao.org/api-docs/auth/token/ , https://openbao.org/api-docs/auth/approle/ ,
https://openbao.org/api-docs/auth/kubernetes/
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as hvac_exc

from backends.base import BackendError
from backends.vault.transport import VaultPermissionDenied, VaultTransport, first_env, mount_option
from rotator.core.options import ConfigError, Options, SecretRef
from rotator.core.redact import register

log = logging.getLogger(__name__)

T = TypeVar("T")

AUTH_METHODS = ("token", "approle", "kubernetes")
DEFAULT_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


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
    """The ``auth`` mapping of a vault store. ``where``/``source`` build key-path errors later."""

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
            settings = cls(**common, mount=mount_option(auth, "mount", "approle"), **_read_role_id(auth),
                           secret_id=auth.secret("secret_id", "AppRole secret_id", required=True))
        else:
            settings = cls(**common, mount=mount_option(auth, "mount", "kubernetes"), role=auth.str("role"),
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
        token = first_env("VAULT_TOKEN", "BAO_TOKEN")
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


class VaultSession:
    """The logged-in side of a :class:`VaultTransport`: authenticated calls, renewal, re-login."""

    def __init__(self, transport: VaultTransport, settings: AuthSettings) -> None:
        self.transport = transport
        self.settings = settings
        self.name = transport.name
        self._logged_in = False
        self._lock = threading.RLock()

    def validate_credentials(self) -> None:
        """Resolve the configured secrets now (env vars set, files readable); ConfigError otherwise."""
        self.settings.resolve()

    def login(self) -> None:
        """Authenticate once (idempotent). The token method only installs the token."""
        with self._lock:
            if not self._logged_in:
                self._login()

    def token(self) -> str:
        """Our current token, after logging in if needed (for the events WebSocket's header)."""
        self.login()
        return self.transport.client.token

    def call(self, op: str, path: str, fn: Callable[[hvac.Client], T], *, write: bool = False,
             relogin: bool = True) -> T:
        """Run one hvac call logged in, errors mapped by :meth:`VaultTransport.call`.

        A 403 with AppRole/Kubernetes auth usually means the token expired or was revoked (max TTL
        reached, Vault restarted); log in again once and retry. A 403 means nothing was applied,
        so retrying a write is safe.
        """
        self.login()
        client = self.transport.client
        token = client.token
        try:
            return fn(client)
        except hvac_exc.Forbidden as exc:
            if not (relogin and self.settings.can_relogin):
                raise self.transport.error(op, path, exc, write) from None
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self.transport.error(op, path, exc, write) from None
        log.info("%s: %s %s: permission denied; logging in again with %s and retrying once",
                 self.name, op, path, self.settings.method)
        self._relogin(failed_token=token)
        return self.transport.call(op, path, fn, write=write)

    def lookup_self(self, *, op: str = "lookup-self", relogin: bool = True) -> dict[str, Any]:
        """``GET auth/token/lookup-self``: our token's TTL, policies, display name.

        https://openbao.org/api-docs/auth/token/#lookup-a-token-self
        """
        return self.call(op, "auth/token/lookup-self", lambda c: c.auth.token.lookup_self(), relogin=relogin)["data"]

    def token_ttl(self) -> int | None:
        """Seconds the current token has left; ``None`` for a token that never expires."""
        return int(self.lookup_self(op="token ttl").get("ttl") or 0) or None

    def refresh_auth(self, *, min_ttl: int = 60) -> str:
        """Keep the token alive: ``"ok"`` (nothing to do), ``"renewed"`` or ``"relogin"``.

        Renews (``renew_self``) when the token is renewable and has less than
        ``max(min_ttl, creation_ttl / 3)`` left; logs in again (AppRole/Kubernetes) when it is not
        renewable, renewal cannot lift it above that threshold (max TTL reached), or it is no
        longer valid. A fixed token that is no longer valid raises :class:`VaultPermissionDenied`.
        """
        self.login()
        try:
            info = self.lookup_self(relogin=False)
        except VaultPermissionDenied:
            return self._relogin_or_raise("the token is no longer valid")
        ttl, creation_ttl = int(info.get("ttl") or 0), int(info.get("creation_ttl") or 0)
        threshold = max(min_ttl, creation_ttl // 3)
        if not ttl or ttl >= threshold:
            return "ok"
        if info.get("renewable"):
            renewed = self.renew_self(max(creation_ttl, min_ttl))
            if renewed is not None and (renewed >= threshold or not self.settings.can_relogin):
                return "renewed"
        if self.settings.can_relogin:
            self._relogin()
            return "relogin"
        log.warning("%s: the Vault token expires in %ss and cannot be renewed; auth method 'token' "
                    "cannot log in again: replace the token", self.name, ttl)
        return "ok"

    def renew_self(self, increment: int) -> int | None:
        """``POST auth/token/renew-self`` (https://openbao.org/api-docs/auth/token/#renew-a-token-self).

        Returns the new TTL, or ``None`` when renewal was refused (a relogin is then attempted).
        """
        try:
            resp = self.call("renew", "auth/token/renew-self",
                             lambda c: c.auth.token.renew_self(increment=increment), relogin=False)
        except BackendError as exc:
            if not self.settings.can_relogin:
                raise
            log.info("%s: token renewal failed (%s); logging in again", self.name, exc)
            return None
        return int((resp.get("auth") or {}).get("lease_duration") or 0)

    def _relogin_or_raise(self, why: str) -> str:
        if not self.settings.can_relogin:
            raise VaultPermissionDenied(f"auth: {why} and auth method 'token' cannot log in again",
                                        backend=self.name, path="auth/token")
        log.info("%s: %s; logging in again with %s", self.name, why, self.settings.method)
        self._relogin()
        return "relogin"

    def _relogin(self, failed_token: str | None = None) -> None:
        """Log in again, unless another thread already replaced ``failed_token`` meanwhile."""
        with self._lock:
            if failed_token is not None and self.transport.client.token != failed_token:
                return
            self._login()

    def _login(self) -> None:
        """Obtain a token with the configured method.

        AppRole: https://openbao.org/api-docs/auth/approle/#login-with-approle ;
        Kubernetes: https://openbao.org/api-docs/auth/kubernetes/#login .
        """
        settings, client = self.settings, self.transport.client
        try:
            creds = settings.resolve()
        except ConfigError as exc:
            raise BackendError(f"login: {exc}", backend=self.name,
                               path=f"auth/{settings.mount or 'token'}") from None
        self._logged_in = False
        if settings.method == "token":
            client.token = creds.token
        else:
            client.token = ""  # the login request itself must not carry a dead token
            self.transport.call("login", f"auth/{settings.mount}", self._login_request(creds))
        register(client.token)
        self._logged_in = True
        log.debug("%s: logged in with %s", self.name, settings.method)

    def _login_request(self, creds: Credentials) -> Callable[[hvac.Client], Any]:
        settings = self.settings
        if settings.method == "approle":
            return lambda c: c.auth.approle.login(role_id=creds.role_id, secret_id=creds.secret_id,
                                                  mount_point=settings.mount, use_token=True)
        return lambda c: c.auth.kubernetes.login(role=settings.role, jwt=creds.jwt, mount_point=settings.mount,
                                                 use_token=True)
