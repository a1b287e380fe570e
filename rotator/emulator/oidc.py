"""OIDC token exchange (``POST /access/api/v1/oidc/token``): configured providers, a test
identity provider whose signed ID tokens they verify, the checked request and the answer.

JFrog's pages: https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange and
https://jfrog.com/help/r/jfrog-platform-administration-documentation/openid-connect-integration
(identity mappings match claims of the ID token); docs/emulator.md shows how a test configures a
provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rotator.emulator.jwt_signer import JwtSigner
from rotator.emulator.tokens import DEFAULT_AUDIENCE, TokenRecord
from rotator.emulator.users import USER_SCOPE
from rotator.emulator.validation import TokenRequest, as_bool, as_str, bad_request, unauthorized

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:jwt")
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True)
class ExchangeRequest:
    """The fields of an exchange, checked for shape (strings, the grant, mandatory fields)."""

    provider_name: str
    subject_token: str
    project_key: str | None
    # Checked only once the provider accepted the subject token (the order errors come in).
    include_reference_token: object = None
    identity_mapping_name: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> "ExchangeRequest":
        """400 for a non-string field, a wrong grant or token type, or a missing provider or token."""
        fields = {
            name: as_str(name, params.get(name))
            for name in (
                "grant_type", "subject_token_type", "subject_token", "provider_name", "project_key", "audience",
                "identity_mapping_name",
            )
        }
        if fields["grant_type"] != TOKEN_EXCHANGE_GRANT:
            raise bad_request(f"Invalid grant_type: expected {TOKEN_EXCHANGE_GRANT}")
        if fields["subject_token_type"] not in (None, *ID_TOKEN_TYPES):
            raise bad_request(f"Unsupported subject_token_type: {fields['subject_token_type']}")
        provider_name, subject_token = fields["provider_name"], fields["subject_token"]
        if not provider_name:
            raise bad_request("provider_name is mandatory")
        if not subject_token:
            raise bad_request("subject_token is mandatory")
        return cls(provider_name, subject_token, fields["project_key"], params.get("include_reference_token"),
                   fields["identity_mapping_name"])


class OidcIssuer:
    """A test OpenID provider (a Kubernetes API server, a CI system): it signs ID tokens (RS256
    JWTs with ``iss``, ``sub``, ``aud``, ``iat``, ``exp``) that a provider configured with it verifies."""

    def __init__(self, url: str = "https://oidc.issuer.test", *, key: object | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._signer = JwtSigner(url, key)  # type: ignore[arg-type]
        self._clock = clock

    def id_token(self, subject: str, *, audience: str = "jfrog", expires_in: int = 3600,
                 claims: Mapping[str, object] | None = None) -> str:
        """A signed ID token for ``subject``; a negative ``expires_in`` makes one that has expired."""
        now = int(self._clock())
        token, _ = self._signer.sign([("iss", self.url), ("sub", subject), ("aud", audience), ("iat", now),
                                      ("exp", now + expires_in), *(claims or {}).items()])
        return token

    def claims(self, token: str, now: float) -> dict:
        """The claims of an ID token this issuer signed that is valid at ``now``; 401 otherwise."""
        claims = self._signer.verify(token)
        if claims is None or claims.get("iss") != self.url:
            raise unauthorized("Failed to validate the subject token: bad signature or issuer")
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or expires <= now:
            raise unauthorized("Failed to validate the subject token: the token has expired")
        return claims


@dataclass(frozen=True)
class IdentityMapping:
    """Maps ID tokens whose claims include all of ``claims`` to ``username`` (first match wins)."""

    name: str
    claims: Mapping[str, object]
    username: str

    def matches(self, claims: Mapping[str, object]) -> bool:
        return all(claims.get(key) == value for key, value in self.claims.items())


@dataclass
class OidcProvider:
    """A configured OIDC integration: accepted subject (ID) tokens map to a username."""

    name: str
    subject_tokens: dict[str, str] = field(repr=False)
    provider_type: str = "GenericOidc"
    scope: str = USER_SCOPE
    audience: str = DEFAULT_AUDIENCE
    expires_in: int = 3600
    issuer: OidcIssuer | None = None
    identity_mappings: tuple[IdentityMapping, ...] = ()
    clock: Callable[[], float] = time.time

    def accept(self, exchange: ExchangeRequest) -> tuple[str, TokenRequest]:
        """The user the subject token maps to and the token to mint; 401 for an unknown ID token
        (or one that is expired, badly signed or matched by no identity mapping)."""
        username = self.subject_tokens.get(exchange.subject_token) or self._mapped_user(exchange)
        if username is None:
            raise unauthorized("Failed to validate the subject token")
        return username, TokenRequest(
            include_reference_token=as_bool("include_reference_token", exchange.include_reference_token),
            project_key=exchange.project_key,
            scope=self.scope,
            audience=self.audience,
        )


    def _mapped_user(self, exchange: ExchangeRequest) -> str | None:
        if self.issuer is None:
            return None
        claims = self.issuer.claims(exchange.subject_token, self.clock())
        mappings = [m for m in self.identity_mappings
                    if exchange.identity_mapping_name in (None, m.name)]
        if exchange.identity_mapping_name and not mappings:
            raise bad_request(f"Identity mapping '{exchange.identity_mapping_name}' was not found")
        return next((m.username for m in mappings if m.matches(claims)), None)


def exchange_response(record: TokenRecord, username: str) -> dict:
    """The exchange answer: ``expires_in`` only for an expiring token, the username it maps to."""
    out: dict[str, object] = {"access_token": record.access_token, "token_type": "Bearer"}
    if record.expiry is not None:
        out["expires_in"] = record.lifetime
    out.update(scope=record.scope, issued_token_type=ISSUED_TOKEN_TYPE, username=username)
    if record.reference_token:
        out["reference_token"] = record.reference_token
    return out
