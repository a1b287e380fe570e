"""The HTTP side of a Vault/OpenBao store: one hvac client, errors mapped once, TLS and path options.

:meth:`VaultTransport.call` is where every hvac/requests error becomes a :class:`BackendError`
that names the store, the path and the call (``docs/configuration.md``, the ``vault`` store).
It knows nothing of login: :class:`backends.vault.auth.VaultSession` wraps it for that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import hvac
import requests
from hvac import exceptions as hvac_exc

from backends.base import BackendError, CASConflict, WriteOutcomeUnknown
from rotator.core.http_env import default_verify, pin_environment
from rotator.core.options import Options
from rotator.core.redact import register, scrub

log = logging.getLogger(__name__)

T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
_CAS_MISMATCH = "check-and-set parameter did not match"
_STATUS = {hvac_exc.InvalidRequest: 400, hvac_exc.Unauthorized: 401, hvac_exc.Forbidden: 403,
           hvac_exc.InvalidPath: 404, hvac_exc.RateLimitExceeded: 429, hvac_exc.InternalServerError: 500,
           hvac_exc.VaultNotInitialized: 501, hvac_exc.BadGateway: 502, hvac_exc.VaultDown: 503}


class VaultPermissionDenied(BackendError):
    """Vault answered 403: the token lacks the capability, or it is no longer valid."""


class VaultTransport:
    """The hvac client of one store (one ``requests`` session, environment read once) and its error map."""

    def __init__(self, name: str, *, url: str, namespace: str | None, verify: bool | str, timeout: int) -> None:
        self.name = name
        self.url = url
        self.namespace = namespace
        self.timeout = timeout
        if verify is False:
            log.warning("%s: TLS certificate verification is disabled for %s", name, url)
        self.tls_verify = default_verify() if verify is True else verify
        # token="" stops hvac from picking up $VAULT_TOKEN or ~/.vault-token behind our back:
        # the token comes only from the configured auth method, at login.
        self.client = self.new_client("")

    def new_client(self, token: str) -> hvac.Client:
        """An hvac client for this server with ``token`` (ours at login, or a caller's)."""
        client = hvac.Client(url=self.url, token=token, verify=self.tls_verify, timeout=self.timeout,
                             namespace=self.namespace)
        pin_environment(client.adapter.session, self.url)
        return client

    def as_caller(self, token: str) -> hvac.Client:
        """A client that acts with a caller's token (never ours); the token is registered for redaction."""
        register(token)
        return self.new_client(token)

    def call(self, op: str, path: str, fn: Callable[[hvac.Client], T], *, write: bool = False,
             client: hvac.Client | None = None) -> T:
        """Run ``fn`` on the client (ours unless ``client`` is given); errors become :class:`BackendError`."""
        try:
            return fn(client or self.client)
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise self.error(op, path, exc, write) from None

    def error(self, op: str, path: str, exc: Exception, write: bool) -> BackendError:
        """Map an hvac/requests error to a BackendError naming store, path and operation."""
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

    def close(self) -> None:
        self.client.adapter.close()


# -- options --------------------------------------------------------------------------------------
def first_env(*names: str) -> str | None:
    """The first of these environment variables that is set and not blank."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def mount_option(options: Options, key: str, default: str) -> str:
    """A mount path option (``secret``, ``team/kv``): no empty, ``.`` or ``..`` parts, no spaces."""
    value = options.str(key, default).strip("/")
    if not value or any(part in ("", ".", "..") for part in value.split("/")) or any(c.isspace() for c in value):
        raise options.error(key, f"{value!r} is not a valid mount path")
    return value


def tls_verify_option(options: Options) -> bool | str:
    """``ca_cert`` (or $VAULT_CACERT/$BAO_CACERT) as the CA bundle; ``tls_verify: false`` turns checks off."""
    from_config = options.str("ca_cert", None)
    ca_cert = from_config or first_env("VAULT_CACERT", "BAO_CACERT")
    verify = options.bool("tls_verify", True)
    if not verify:
        return False
    if ca_cert:
        if not Path(ca_cert).is_file():
            origin = "" if from_config else " (from $VAULT_CACERT/$BAO_CACERT)"
            raise options.error("ca_cert", f"file {ca_cert}{origin} does not exist")
        return ca_cert
    return True


# -- paths and values -----------------------------------------------------------------------------
def clean_path(path: str) -> str:
    """A secret path without leading/trailing slashes; :class:`BackendError` for empty, ``.`` or ``..`` parts."""
    cleaned = str(path).strip("/")
    if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise BackendError(f"invalid secret path {path!r}")
    return cleaned


def metadata_value(value: str | None) -> str | None:
    """A custom_metadata value Vault accepts: non-empty, printable, at most 512 bytes; ``None`` removes it."""
    if value is None or value == "":
        return None
    printable = "".join(c if c.isprintable() else " " for c in str(value))  # Vault refuses the rest
    return printable.encode("utf-8")[:512].decode("utf-8", "ignore")


def strip_prefix(exc: BackendError) -> str:
    """The message of ``exc`` without its ``backend:path: `` prefix (to re-wrap it)."""
    text = str(exc)
    prefix = f"{exc.backend}:{exc.path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


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
