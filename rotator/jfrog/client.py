"""A client for the JFrog Platform Access API, one method per remote call.

One :class:`requests.Session` per server: connections are kept alive, every call has a timeout,
and 429/5xx answers are retried by urllib3's :class:`~urllib3.util.Retry` (exponential backoff,
``Retry-After`` honoured but capped) in the transport adapter. API pages:
https://jfrog.com/help/r/jfrog-rest-apis/access-tokens
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
import requests.auth
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from rotator import __version__
from rotator.core.http_env import default_verify, pin_environment, warn_verify_off
from rotator.core.redact import REDACTED, register, scrub
from rotator.jfrog.aws_iam import AWS_TOKEN, signed_identity_headers
from rotator.jfrog.errors import JFrogConfigError, JFrogConnectionError, JFrogHTTPError
from rotator.jfrog.gojson import go_json

log = logging.getLogger(__name__)

TOKENS = "/access/api/v1/tokens"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class RetryPolicy:
    """How 429 and 5xx answers and refused connections are retried.

    ``retries`` extra attempts; waits grow ``backoff_factor * 2**n`` up to ``backoff_max``
    seconds; a server's ``Retry-After`` is honoured up to ``backoff_max`` too, so one call takes
    at most about ``(retries + 1) * timeout + retries * backoff_max`` seconds.
    """

    retries: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0

    def to_urllib3(self) -> Retry:
        return _CappedRetry(
            total=self.retries,
            connect=self.retries,
            # A read timeout on POST /tokens may have minted a token already: never replay it.
            read=0,
            status=self.retries,
            other=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # 429/5xx are retried for every method, as the JFrog CLI does
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,
        )


#: The policy of a client built without one (the config has no retry settings).
DEFAULT_RETRY = RetryPolicy()


class _CappedRetry(Retry):
    """urllib3 Retry that never sleeps longer than ``backoff_max`` for a ``Retry-After``."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.backoff_max)


@dataclass(frozen=True, repr=False)
class TokenResponse:
    """The answer of create/refresh (https://jfrog.com/help/r/jfrog-rest-apis/create-token).

    ``raw`` keeps the server's keys in order."""

    access_token: str
    token_id: str
    token_type: str = "Bearer"
    scope: str = ""
    expires_in: int | None = None
    refresh_token: str | None = None
    reference_token: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenResponse:
        register(data.get("access_token"), data.get("refresh_token"), data.get("reference_token"))
        expires_in = data.get("expires_in")
        return cls(
            access_token=str(data.get("access_token") or ""),
            token_id=str(data.get("token_id") or ""),
            token_type=str(data.get("token_type") or "Bearer"),
            scope=str(data.get("scope") or ""),
            expires_in=int(expires_in) if expires_in not in (None, "") else None,
            refresh_token=data.get("refresh_token") or None,
            reference_token=data.get("reference_token") or None,
            raw=dict(data),
        )

    def __repr__(self) -> str:
        return (
            f"TokenResponse(token_id={self.token_id!r}, scope={self.scope!r}, "
            f"expires_in={self.expires_in!r}, access_token={REDACTED!r}, "
            f"refresh_token={'***' if self.refresh_token else None!r}, "
            f"reference_token={'***' if self.reference_token else None!r})"
        )


def _token_answer(method: str, path: str, data: Mapping[str, Any]) -> TokenResponse:
    """A token answer as :class:`TokenResponse`; :class:`JFrogHTTPError` naming the call when it is
    not one (no ``access_token`` or ``token_id`` string, an ``expires_in`` that is not a number)."""
    register(*(v for k in ("access_token", "refresh_token", "reference_token")
               if isinstance(v := data.get(k), str)))
    missing = [key for key in ("access_token", "token_id") if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        raise JFrogHTTPError(method, path, 200, f"(answer has no {' and '.join(missing)})", "")
    problems = ["'access_token' is not a JWT"] if data["access_token"].count(".") != 2 else []
    problems += [f"'{key}' is not a string" for key in ("refresh_token", "reference_token", "scope")
                 if data.get(key) is not None and not isinstance(data.get(key), str)]
    expires_in = data.get("expires_in")
    if expires_in not in (None, "") and not (isinstance(expires_in, int) and not isinstance(expires_in, bool)
                                             or isinstance(expires_in, str) and expires_in.isascii()
                                             and expires_in.isdigit()):
        problems.append("'expires_in' is not a number of seconds")
    if problems:
        raise JFrogHTTPError(method, path, 200, f"(answer is not a token: {'; '.join(problems)})", "")
    return TokenResponse.from_json(data)


class AccessClient:
    """Talks to one JFrog Platform (``url`` is the platform base, e.g. ``https://acme.jfrog.io``).

    Authentication is a Bearer access token or reference token; an mTLS client certificate
    (``client_cert`` + ``client_key``) may be added. TLS is verified against the system store or
    ``ca_bundle``; ``verify=False`` turns verification off and logs a warning naming
    ``verify_setting`` (the config key or flag that turned it off), once per process.
    """

    def __init__(
        self,
        url: str,
        *,
        access_token: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        pool_size: int = 10,
        verify_setting: str = "verify=False",
    ) -> None:
        if not url:
            raise JFrogConfigError("no JFrog Platform URL given")
        if not url.startswith(("http://", "https://")):
            raise JFrogConfigError(f"JFrog Platform URL must start with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = access_token or None
        register(access_token)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"jfrog-token-rotator/{__version__}"
        adapter = HTTPAdapter(
            max_retries=(retry or DEFAULT_RETRY).to_urllib3(),
            pool_connections=pool_size,
            pool_maxsize=pool_size,
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        pin_environment(self.session, self.url)
        self._verify = _verify_setting(verify, ca_bundle)
        if verify is False:
            # Said once per process and setting (a daemon makes a client per reload); urllib3 would
            # otherwise repeat it on every request.
            warn_verify_off(log, verify_setting, self.url, "TLS certificate verification is OFF for %s (%s); "
                                                           "use only for testing", self.url, verify_setting)
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._cert = _client_cert(client_cert, client_key) if (client_cert or client_key) else None

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AccessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AccessClient(url={self.url!r}, access_token={'***' if self._token else None!r})"

    # -- tokens ----------------------------------------------------------------------------
    def create_token(self, body: Mapping[str, Any], *, token: str | None = None) -> TokenResponse:
        """``POST /access/api/v1/tokens`` with a JSON body, sent in the given key order.

        ``token`` authenticates this one call instead of the client's own credential (a token
        minting its own successor). https://jfrog.com/help/r/jfrog-rest-apis/create-token
        """
        return _token_answer("POST", TOKENS, self._json("POST", TOKENS, json_body=dict(body), token=token))

    def refresh_token(
        self,
        refresh_token: str,
        *,
        access_token: str | None = None,
        expires_in: int | None = None,
        scope: str | None = None,
        include_reference_token: bool | None = None,
    ) -> TokenResponse:
        """``POST /access/api/v1/tokens`` with ``grant_type=refresh_token``.

        Must be authenticated as the token's own user: ``access_token`` (the token being
        refreshed) is used as the Bearer credential when given. JFrog answers with a new token
        id, access token and refresh token; the old access token stops working at once.
        https://jfrog.com/help/r/jfrog-rest-apis/refresh-token
        """
        register(refresh_token)
        body: dict[str, Any] = {}
        if scope:
            body["scope"] = scope
        if expires_in is not None:
            body["expires_in"] = expires_in
        body["refreshable"] = True
        body["refresh_token"] = refresh_token
        body["grant_type"] = "refresh_token"
        if include_reference_token is not None:
            body["include_reference_token"] = include_reference_token
        data = self._json("POST", TOKENS, json_body=body, token=access_token)
        return _token_answer("POST", TOKENS, data)

    def revoke_token(self, token_id: str, *, token: str | None = None) -> bool:
        """``DELETE /access/api/v1/tokens/{id}``: True if revoked now, False if it was already gone (204).

        https://jfrog.com/help/r/jfrog-rest-apis/revoke-token-by-id
        """
        response = self._call("DELETE", f"{TOKENS}/{_segment(token_id)}", ok=(200, 204), token=token)
        return response.status_code == 200

    def revoke_token_by_value(self, value: str) -> str:
        """``DELETE /access/api/v1/tokens/revoke`` (admin): returns the revoked token id.

        https://jfrog.com/help/r/jfrog-rest-apis/revoke-token-by-value
        """
        register(value)
        data = self._json("DELETE", f"{TOKENS}/revoke", json_body={"token": value})
        return str(data.get("revoked-token-id", ""))

    def list_tokens(
        self,
        *,
        description: str | None = None,
        username: str | None = None,
        refreshable: bool | None = None,
        token_id: str | None = None,
        order_by: str | None = None,
        descending_order: bool | None = None,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /access/api/v1/tokens`` with filters (``description`` takes a trailing ``*`` only).

        https://jfrog.com/help/r/jfrog-rest-apis/get-tokens
        """
        params: dict[str, str] = {}
        for key, value in (
            ("description", description),
            ("username", username),
            ("refreshable", refreshable),
            ("token_id", token_id),
            ("order_by", order_by),
            ("descending_order", descending_order),
        ):
            if value is not None:
                params[key] = str(value).lower() if isinstance(value, bool) else str(value)
        data = self._json("GET", TOKENS, params=params, token=token)
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, dict) and isinstance(t.get("token_id"), str)
                                                   for t in tokens):
            raise JFrogHTTPError("GET", TOKENS, 200, "(answer is not a token list: 'tokens' must be a list of "
                                                     "objects with a token_id)", "")
        return tokens

    def get_token(self, token_id: str) -> dict[str, Any]:
        """``GET /access/api/v1/tokens/{id}``. https://jfrog.com/help/r/jfrog-rest-apis/get-token-by-id"""
        return self._json("GET", f"{TOKENS}/{_segment(token_id)}")

    def get_me(self, *, token: str | None = None) -> dict[str, Any]:
        """``GET /access/api/v1/tokens/me``: the token's own record; ``token`` overrides the credential."""
        return self._json("GET", f"{TOKENS}/me", token=token)

    def oidc_token_exchange(
        self,
        *,
        provider_name: str,
        subject_token: str,
        provider_type: str | None = None,
        project_key: str | None = None,
        audience: str | None = None,
        include_reference_token: bool | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """``POST /access/api/v1/oidc/token``: exchange an IdP ID token for a JFrog access token.

        https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange
        """
        register(subject_token)
        body: dict[str, Any] = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "subject_token": subject_token,
            "provider_name": provider_name,
        }
        for key, value in (
            ("provider_type", provider_type),
            ("project_key", project_key),
            ("audience", audience),
            ("include_reference_token", include_reference_token),
            *extra.items(),
        ):
            if value is not None:
                body[key] = value
        data = self._json("POST", "/access/api/v1/oidc/token", json_body=body, token="")
        register(data.get("access_token"), data.get("refresh_token"), data.get("reference_token"))
        return data

    def aws_token_exchange(self, *, credentials: Any, region: str, expires_in: int | None = None) -> TokenResponse:
        """``POST /access/api/v1/aws/token?region=``: a token for the JFrog user the AWS role of
        ``credentials`` (botocore credentials) is mapped to, proven by the signed headers of an STS
        GetCallerIdentity request (:mod:`rotator.jfrog.aws_iam`); ``raw`` has its ``username``."""
        body = {} if expires_in is None else {"expires_in": expires_in}
        headers = {**signed_identity_headers(credentials, region), **_JSON_HEADERS}
        data = self._json("POST", AWS_TOKEN, json_body=body, params={"region": region}, token="", headers=headers)
        return TokenResponse.from_json(data)

    # -- system ----------------------------------------------------------------------------
    def ping(self) -> str:
        """``GET /access/api/v1/system/ping``: the body, ``OK`` when healthy."""
        return self._call("GET", "/access/api/v1/system/ping").text

    def artifactory_version(self) -> dict[str, Any]:
        """``GET /artifactory/api/system/version``: ``{"version", "revision", "addons", "license"}``."""
        return self._json("GET", "/artifactory/api/system/version")

    def service_id(self) -> str:
        """``GET /artifactory/api/system/service_id``: e.g. ``jfrt@01c...``, usable in ``audience``."""
        return self._call("GET", "/artifactory/api/system/service_id").text.strip()

    def root_certificate(self) -> str:
        """``GET /access/api/v1/cert/root``: base64 DER of the certificate that signs access tokens."""
        return self._call("GET", "/access/api/v1/cert/root").text.strip()

    # -- transport -------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, **kwargs)
        try:
            data = response.json()
        except (ValueError, RecursionError):  # RecursionError: '[[[[...' nested past Python's limit
            raise JFrogHTTPError(
                method, path, response.status_code,
                f"(answer is not JSON: {len(response.content)} bytes of {response.headers.get('Content-Type') or 'no type'})",
                "",
            ) from None
        return data if isinstance(data, dict) else {"value": data}

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        credential = self._token if token is None else token
        if headers is None and json_body is not None:
            headers = _JSON_HEADERS
        try:
            response = self.session.request(
                method,
                self.url + path,
                data=None if json_body is None else go_json(json_body, indent=None).encode("utf-8"),
                headers=headers,
                params=params,
                auth=_BearerAuth(credential),
                verify=self._verify,
                cert=self._cert,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise JFrogConnectionError(method, path, f"TLS error: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise JFrogConnectionError(method, path, f"timed out after {self._read_timeout():g}s") from None
        except requests.exceptions.RequestException as exc:
            if _read_timed_out(exc):  # urllib3's retry wraps a read timeout in a ConnectionError
                raise JFrogConnectionError(method, path, f"timed out after {self._read_timeout():g}s") from None
            raise JFrogConnectionError(method, path, f"cannot reach {self.url}: {_reason(exc)}") from None
        if response.status_code not in ok:
            raise JFrogHTTPError(method, path, response.status_code, response.reason or "", response.text)
        return response


    def _read_timeout(self) -> float:
        return float(self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout)


def _read_timed_out(exc: BaseException) -> bool:
    """Whether a requests error is a read timeout (the server was reached, its answer did not come)."""
    inner: BaseException | None = exc
    seen = 0
    while inner is not None and seen < 10:
        if isinstance(inner, urllib3.exceptions.ReadTimeoutError):
            return True
        inner = getattr(inner, "reason", None) or (inner.args[0] if inner.args and isinstance(
            inner.args[0], BaseException) else None) or inner.__cause__ or inner.__context__
        seen += 1
    return False


class _BearerAuth(requests.auth.AuthBase):
    """Bearer credential per request. Always passed (even empty) so requests never falls back
    to ~/.netrc credentials for the JFrog host."""

    __slots__ = ("_token",)

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the URL noise, scrubbed."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    return scrub(str(inner) or type(inner).__name__)


def _verify_setting(verify: bool, ca_bundle: str | None) -> bool | str:
    """``ca_bundle`` if given, else ``$REQUESTS_CA_BUNDLE``/``$CURL_CA_BUNDLE`` like requests, else the
    system store; ``False`` only when verification was turned off explicitly."""
    if not verify:
        return False
    if ca_bundle:
        if not os.path.isfile(ca_bundle):
            raise JFrogConfigError(f"CA bundle not found: {ca_bundle}")
        return ca_bundle
    return default_verify()


def _client_cert(cert: str | None, key: str | None) -> str | tuple[str, str]:
    if not cert:
        raise JFrogConfigError("a client certificate key was given without --client-cert-path")
    if not os.path.isfile(cert):
        raise JFrogConfigError(f"client certificate not found: {cert}")
    if key:
        if not os.path.isfile(key):
            raise JFrogConfigError(f"client certificate key not found: {key}")
        return (cert, key)
    return cert
