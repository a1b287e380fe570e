"""Maps requests to :class:`~rotator.emulator.model.AccessModel` calls and renders the answers.

Paths and statuses are JFrog's (https://jfrog.com/help/r/jfrog-rest-apis/create-token and the pages
next to it; the emulated set is listed in docs/emulator.md). Error bodies: Access answers
``{"errors":[{"code","message"}]}``, Artifactory answers ``{"errors":[{"status","message"}]}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs

from rotator.emulator.aws_iam import AwsIamExchange
from rotator.emulator.model import EXPIRED_MESSAGE, AccessModel
from rotator.emulator.users import Principal
from rotator.emulator.validation import AccessError, TokenRequest, bad_request, forbidden, unauthorized

_TOKENS = "/access/api/v1/tokens"


@dataclass
class Request:
    """What the HTTP layer hands over: ``headers`` needs only a case-insensitive ``get``."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    json: object | None = None
    form: dict[str, str] | None = None
    body_error: str | None = None  # set when the body claimed a format and failed to parse


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: object) -> "Response":
        # Compact, like the Java server: `{"errors":[{"code":"NOT_FOUND","message":"..."}]}`.
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json")

    @classmethod
    def text(cls, status: int, text: str) -> "Response":
        return cls(status, text.encode(), "text/plain")

    @classmethod
    def access_error(cls, status: int, message: str, code: str | None = None) -> "Response":
        if code is None:
            try:
                code = HTTPStatus(status).name
            except ValueError:
                code = "ERROR"
        return cls.json(status, {"errors": [{"code": code, "message": message}]})


def decode_body(content_type: str | None, body: bytes) -> tuple[object | None, dict[str, str] | None, str | None]:
    """Return ``(json, form, error)`` for a request body.

    A form content type wins; otherwise JSON is tried when declared or when the body looks like
    JSON, and a body without a content type falls back to form decoding (``curl -d`` style).
    """
    if not body:
        return None, None, None
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, "Request body is not valid UTF-8"
    if kind == "application/x-www-form-urlencoded" or (
        not kind.endswith("json") and not text.lstrip().startswith(("{", "["))
    ):
        return None, {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}, None
    try:
        return json.loads(text), None, None
    except ValueError:
        return None, None, "Request body is not valid JSON"


@dataclass
class ArtifactoryInfo:
    """What ``GET /artifactory/api/system/version`` reports; ``version`` is settable."""

    version: str = "7.104.5"
    revision: str | None = None  # derived from the version when None ("7.19.10" -> "71910900")
    addons: list[str] = field(default_factory=list)
    license: str = ""

    def body(self) -> dict:
        revision = self.revision
        if revision is None:
            parts = (self.version.split(".") + ["0", "0"])[:3]
            revision = f"{parts[0]}{parts[1]}{parts[2].zfill(2)}900"
        return {"version": self.version, "revision": revision, "addons": list(self.addons), "license": self.license}


def default_license(instance_id: str) -> str:
    """A stable license hash per emulated instance (the real field is an opaque hash)."""
    return hashlib.sha1(instance_id.encode()).hexdigest()


class _ArtifactoryAuthError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessApp:
    """The route table and the endpoint functions; no sockets here."""

    def __init__(self, model: AccessModel, artifactory: ArtifactoryInfo | None = None,
                 aws_iam: AwsIamExchange | None = None) -> None:
        self.model = model
        self.aws_iam = aws_iam or AwsIamExchange(model)
        self.artifactory = artifactory or ArtifactoryInfo(license=default_license(model.instance_id))
        route = Callable[..., Response]
        self._routes: list[tuple[str, re.Pattern[str], route]] = [
            ("POST", re.compile(_TOKENS), self.create_or_refresh),
            ("GET", re.compile(_TOKENS), self.list_tokens),
            ("DELETE", re.compile(_TOKENS + "/revoke"), self.revoke_by_value),
            ("GET", re.compile(_TOKENS + "/me"), self.get_me),
            ("DELETE", re.compile(_TOKENS + "/me"), self.revoke_me),
            ("GET", re.compile(_TOKENS + "/(?P<token_id>[^/]+)"), self.get_token),
            ("DELETE", re.compile(_TOKENS + "/(?P<token_id>[^/]+)"), self.revoke_by_id),
            ("GET", re.compile("/access/api/v1/system/ping"), lambda req: Response.text(200, "OK")),
            ("GET", re.compile("/access/api/v1/cert/root"), self.cert_root),
            ("POST", re.compile("/access/api/v1/oidc/token"), self.oidc_token),
            ("POST", re.compile("/access/api/v1/aws/token"), self.aws_token),
            ("GET", re.compile("/artifactory/api/system/ping"), lambda req: Response.text(200, "OK")),
            ("GET", re.compile("/artifactory/api/system/version"), self.artifactory_version),
            ("GET", re.compile("/artifactory/api/system/service_id"), self.service_id),
            ("POST", re.compile("/artifactory/api/system/usage"), self.usage),
        ]

    def handle(self, req: Request) -> Response:
        # Tolerate '//' and a trailing '/' the way servlet containers do.
        path = re.sub("/{2,}", "/", req.path)
        if len(path) > 1:
            path = path.rstrip("/")
        allowed: list[str] = []
        for method, pattern, endpoint in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if method == req.method or (req.method == "HEAD" and method == "GET"):
                try:
                    return endpoint(req, **match.groupdict())
                except AccessError as err:
                    return Response.json(err.status, err.body())
                except _ArtifactoryAuthError as err:
                    return Response.json(401, {"errors": [{"status": 401, "message": err.message}]})
            allowed.append(method)
        if allowed:
            response = Response.access_error(405, f"Method {req.method} is not allowed on {path}")
            response.headers.append(("Allow", ", ".join(sorted(set(allowed)))))
            return response
        return Response.access_error(404, f"No resource at {path}")

    # ---- authentication --------------------------------------------------------------------

    def authenticate(self, req: Request, *, allow_expired: bool = False) -> Principal:
        """Bearer token, ``X-JFrog-Art-Api`` (reference tokens double as API keys), or Basic."""
        header = (req.headers.get("Authorization") or "").strip()
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return self.model.authenticate_bearer(credentials, allow_expired=allow_expired)
        if scheme.lower() == "basic" and credentials:
            try:
                username, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise unauthorized("Malformed basic authentication header") from None
            if not sep:
                raise unauthorized("Malformed basic authentication header")
            return self.model.authenticate_basic(username, password)
        api_key = (req.headers.get("X-JFrog-Art-Api") or "").strip()
        if api_key:
            return self.model.authenticate_bearer(api_key, allow_expired=allow_expired)
        raise unauthorized("Authentication is required")

    def _artifactory_auth(self, req: Request) -> None:
        try:
            self.authenticate(req)
        except AccessError as err:
            expired = err.message == EXPIRED_MESSAGE
            message = "Token failed verification: expired" if expired else "Bad credentials"
            raise _ArtifactoryAuthError(message) from None

    @staticmethod
    def _params(req: Request) -> dict[str, object]:
        if req.body_error:
            raise bad_request(req.body_error)
        if req.form is not None:
            return dict(req.form)
        if req.json is None:
            return {}
        if not isinstance(req.json, dict):
            raise bad_request("Request body must be a JSON object")
        return req.json

    # ---- Access tokens ---------------------------------------------------------------------

    def create_or_refresh(self, req: Request) -> Response:
        # Authentication comes first (401 before 400), but a refresh may be authenticated by the
        # expired token it refreshes, so peek at grant_type before validating the body.
        peek = req.form if req.form is not None else req.json if isinstance(req.json, dict) else {}
        principal = self.authenticate(req, allow_expired=peek.get("grant_type") == "refresh_token")
        token_request = TokenRequest.from_params(self._params(req))
        if token_request.grant_type == "refresh_token":
            return Response.json(200, self.model.refresh(principal, token_request))
        if principal.via_password and not self.model.policy.allow_basic_token_creation:
            raise forbidden(
                "Token creation with username and password is disabled ('Enable Token Generation via API' is off)"
            )
        return Response.json(200, self.model.create_token(principal, token_request))

    def list_tokens(self, req: Request) -> Response:
        principal = self.authenticate(req)
        filters = {key: values[0] for key, values in req.query.items() if values}
        return Response.json(200, self.model.list_tokens(principal, filters))

    def get_token(self, req: Request, token_id: str) -> Response:
        return Response.json(200, self.model.get_token(self.authenticate(req), token_id))

    def get_me(self, req: Request) -> Response:
        return Response.json(200, self.model.get_me(self.authenticate(req)))

    def revoke_by_id(self, req: Request, token_id: str) -> Response:
        return Response(self.model.revoke_by_id(self.authenticate(req), token_id))

    def revoke_me(self, req: Request) -> Response:
        return Response(self.model.revoke_me(self.authenticate(req)))

    def revoke_by_value(self, req: Request) -> Response:
        principal = self.authenticate(req)
        value = self._params(req).get("token")
        if value is not None and not isinstance(value, str):
            raise bad_request("The 'token' field must be a string")
        result = self.model.revoke_by_value(principal, value)
        return Response(204) if result is None else Response.json(200, result)

    def cert_root(self, req: Request) -> Response:
        return Response.text(200, self.model.signer.root_certificate_b64())

    def oidc_token(self, req: Request) -> Response:
        return Response.json(200, self.model.oidc_exchange(self._params(req)))

    def aws_token(self, req: Request) -> Response:
        """The signature is checked before the body (401 before 400), like a credential."""
        identity = self.aws_iam.verify(req.headers, (req.query.get("region") or [None])[0])
        return Response.json(200, self.aws_iam.exchange(identity, self._params(req)))

    # ---- Artifactory stubs -----------------------------------------------------------------

    def artifactory_version(self, req: Request) -> Response:
        anonymous = not req.headers.get("Authorization") and not req.headers.get("X-JFrog-Art-Api")
        if not (anonymous and self.model.policy.artifactory_anonymous_access):
            self._artifactory_auth(req)
        return Response.json(200, self.artifactory.body())

    def service_id(self, req: Request) -> Response:
        self._artifactory_auth(req)
        return Response.text(200, self.model.service_id)

    def usage(self, req: Request) -> Response:
        self._artifactory_auth(req)
        return Response(200, b"", "text/plain")
