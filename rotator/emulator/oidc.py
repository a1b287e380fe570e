"""OIDC token exchange (``POST /access/api/v1/oidc/token``): configured providers, the checked
request and the answer.

JFrog's page: https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange; docs/emulator.md shows
how a test configures a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> "ExchangeRequest":
        """400 for a non-string field, a wrong grant or token type, or a missing provider or token."""
        fields = {
            name: as_str(name, params.get(name))
            for name in (
                "grant_type", "subject_token_type", "subject_token", "provider_name", "project_key", "audience"
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
        return cls(provider_name, subject_token, fields["project_key"], params.get("include_reference_token"))


@dataclass
class OidcProvider:
    """A configured OIDC integration: accepted subject (ID) tokens map to a username."""

    name: str
    subject_tokens: dict[str, str] = field(repr=False)
    provider_type: str = "GenericOidc"
    scope: str = USER_SCOPE
    audience: str = DEFAULT_AUDIENCE
    expires_in: int = 3600

    def accept(self, exchange: ExchangeRequest) -> tuple[str, TokenRequest]:
        """The user the subject token maps to and the token to mint; 401 for an unknown ID token."""
        username = self.subject_tokens.get(exchange.subject_token)
        if username is None:
            raise unauthorized("Failed to validate the subject token")
        return username, TokenRequest(
            include_reference_token=as_bool("include_reference_token", exchange.include_reference_token),
            project_key=exchange.project_key,
            scope=self.scope,
            audience=self.audience,
        )


def exchange_response(record: TokenRecord, username: str) -> dict:
    """The exchange answer: ``expires_in`` only for an expiring token, the username it maps to."""
    out: dict[str, object] = {"access_token": record.access_token, "token_type": "Bearer"}
    if record.expiry is not None:
        out["expires_in"] = record.lifetime
    out.update(scope=record.scope, issued_token_type=ISSUED_TOKEN_TYPE, username=username)
    if record.reference_token:
        out["reference_token"] = record.reference_token
    return out
