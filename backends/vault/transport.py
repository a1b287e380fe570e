"""The HTTP side of a Vault/OpenBao store: one hvac client, errors mapped once, TLS and path options.

:meth:`VaultTransport.call` is where every hvac/requests error becomes a :class:`BackendError`
that names the store, the path and the call (``docs/configuration.md``, the ``vault`` store).
It knows nothing of login: :class:`backends.vault.auth.VaultSession` wraps it for that.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
import urllib3
from hvac import exceptions as hvac_exc
from hvac.utils import raise_for_error
from requests.utils import select_proxy
from urllib3 import exceptions as u3_exc

from backends.base import BackendError, CASConflict, WriteOutcomeUnknown
from rotator.core.http_env import default_verify, pin_environment, warn_verify_off
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
            warn_verify_off(log, f"backends.{name}.tls_verify: false", url,
                            "%s: TLS certificate verification is disabled for %s (backends.%s.tls_verify: false)",
                            name, url, name)
        self.tls_verify = default_verify() if verify is True else verify
        # token="" stops hvac from picking up $VAULT_TOKEN or ~/.vault-token behind our back:
        # the token comes only from the configured auth method, at login.
        self.client = self.new_client("")
        self._lean: LeanRequests | None = None
        self._lean_lock = threading.Lock()

    def new_client(self, token: str) -> hvac.Client:
        """An hvac client for this server with ``token`` (ours at login, or a caller's)."""
        client = hvac.Client(url=self.url, token=token, verify=self.tls_verify, timeout=self.timeout,
                             namespace=self.namespace)
        pin_environment(client.adapter.session, self.url)
        return client

    def lean(self, client: hvac.Client) -> LeanRequests:
        """The lean request path on ``client``'s own session (kept for our client, made for a caller's)."""
        if client is not self.client:
            return LeanRequests(client, verify=self.tls_verify, timeout=self.timeout)
        with self._lean_lock:
            if self._lean is None:
                self._lean = LeanRequests(client, verify=self.tls_verify, timeout=self.timeout)
            return self._lean

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
        # A server or gateway error (500, 502, 503 from a load balancer or a proxy in front of Vault,
        # an unexpected status) may hide a write that was applied behind it: re-read to decide.
        unknown = write and isinstance(exc, (hvac_exc.InternalServerError, hvac_exc.BadGateway, hvac_exc.VaultDown,
                                             hvac_exc.UnexpectedError))
        cls = WriteOutcomeUnknown if unknown else BackendError
        return cls(f"{op}: {detail or 'failed'}{f' (HTTP {status})' if status else ''}", **kw)

    def close(self) -> None:
        self.client.adapter.close()
        with self._lean_lock:
            self._lean = None  # a call after close() opens new connections, as requests would


class LeanRequests:
    """The hot calls (metadata GET, data GET, the compare-and-set POST, metadata PATCH) sent
    straight to the urllib3 connection pool of hvac's own ``requests`` session: the same kept-alive
    connections, TLS settings, proxy and headers hvac would send (``X-Vault-Token`` read from the
    client on each call, so a new login applies at once, ``X-Vault-Request``, ``X-Vault-Namespace``),
    without the Python work hvac and ``requests`` do per call around it (bench/RESULTS.md, the
    reconcile pass). Errors come out as hvac's (:func:`hvac.utils.raise_for_error`, as hvac raises
    them) and ``requests``' exceptions, so :meth:`VaultTransport.error` maps them as before. A
    redirect (a standby node pointing at the active one) is followed by hvac itself.
    """

    def __init__(self, client: hvac.Client, *, verify: bool | str, timeout: float) -> None:
        self.client = client
        adapter = client.adapter
        session = adapter.session
        base = requests.Request("GET", adapter.base_uri).prepare()
        transport = session.get_adapter(adapter.base_uri)
        self.pool = transport.get_connection_with_tls_context(base, verify, session.proxies, session.cert)
        proxied = select_proxy(adapter.base_uri, session.proxies) and not adapter.base_uri.startswith("https://")
        self.prefix = adapter.base_uri.rstrip("/") if proxied else ""  # an HTTP proxy wants the whole URL
        self.retries = transport.max_retries
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # What Vault needs, and no more (each header costs Python time on every call).
        self.headers = {"User-Agent": str(session.headers.get("User-Agent", "")), "X-Vault-Request": "true"}
        if adapter.namespace:
            self.headers["X-Vault-Namespace"] = adapter.namespace

    def request(self, method: str, path: str, *, body: Any = None,
                content_type: str = "application/json") -> Mapping[str, Any] | None:
        """``method path`` (``/v1/...``): the JSON answer, ``None`` for 204; hvac's error otherwise."""
        headers = dict(self.headers)
        if self.client.token:
            headers["X-Vault-Token"] = self.client.token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        try:
            answer = self.pool.urlopen(method, self.prefix + path, body=data, headers=headers, retries=self.retries,
                                       redirect=False, assert_same_host=False, timeout=self.timeout,
                                       preload_content=True)
        except (u3_exc.HTTPError, OSError) as exc:
            raise _as_requests_error(exc) from None
        if answer.status in (301, 302, 303, 307, 308):
            return self._through_hvac(method, path, data, content_type)
        if answer.status == 204:
            return None
        parsed = _json_or_none(answer.data) if "json" in (answer.headers.get("Content-Type") or "") else None
        if 200 <= answer.status < 300:
            return parsed if isinstance(parsed, dict) else {}
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        text = answer.data.decode("utf-8", "replace")
        raise_for_error(method, self.client.adapter.base_uri + path, answer.status, None if errors else text,
                        errors=errors, text=text, json=parsed)
        return None  # raise_for_error always raises

    def _through_hvac(self, method: str, path: str, data: Any, content_type: str) -> Mapping[str, Any] | None:
        headers = {"Content-Type": content_type} if data is not None else None
        answer = self.client.adapter.request(method, path, headers=headers, data=data)
        return answer if isinstance(answer, dict) else None


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _as_requests_error(exc: Exception) -> requests.RequestException:
    """The ``requests`` exception its own adapter raises for this urllib3 or socket error."""
    reason = exc.reason if isinstance(exc, u3_exc.MaxRetryError) and exc.reason is not None else exc
    if isinstance(reason, u3_exc.SSLError):
        return requests.exceptions.SSLError(reason)
    if isinstance(reason, u3_exc.ProxyError):
        return requests.exceptions.ProxyError(reason)
    if isinstance(reason, u3_exc.ConnectTimeoutError) and not isinstance(reason, u3_exc.NewConnectionError):
        return requests.exceptions.ConnectTimeout(reason)
    if isinstance(reason, u3_exc.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(reason)
    return requests.exceptions.ConnectionError(reason)


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
    if not value or any(part in ("", ".", "..") for part in value.split("/")) \
            or any(c.isspace() or not c.isprintable() for c in value):
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
