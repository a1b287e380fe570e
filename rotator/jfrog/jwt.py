"""Read the claims of a JFrog access token without verifying it.

JFrog access tokens are RS256 JWTs (https://jfrog.com/help/r/jfrog-rest-apis/get-root-certificate):
``jti`` is the token id, ``sub`` is ``<issuer>/users/<username>``, ``scp`` the scope, ``exp`` absent for non-expiring tokens.
Reference tokens (``cmVmdGtu…``) are opaque and have no claims.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any


class InvalidTokenFormat(ValueError):
    """The value is not a JWT whose payload can be decoded."""


@dataclass(frozen=True)
class TokenClaims:
    token_id: str
    subject: str
    username: str
    scope: str
    issuer: str
    audience: str
    issued_at: int | None
    expires_at: int | None
    raw: dict[str, Any]

    @property
    def expiring(self) -> bool:
        return self.expires_at is not None


def decode_claims(token: str) -> TokenClaims:
    """Decode the payload of ``token``; raise :class:`InvalidTokenFormat` (no token text in it)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not parts[1]:
        raise InvalidTokenFormat("not a JWT (expected three dot-separated segments)")
    segment = parts[1]
    padded = segment + "=" * (-len(segment) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidTokenFormat(f"JWT payload is not base64 JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise InvalidTokenFormat("JWT payload is not a JSON object")
    subject = str(payload.get("sub") or "")
    audience = payload.get("aud", "")
    if isinstance(audience, list):
        audience = " ".join(str(a) for a in audience)
    return TokenClaims(
        token_id=str(payload.get("jti") or ""),
        subject=subject,
        username=username_from_subject(subject),
        scope=str(payload.get("scp") or ""),
        issuer=str(payload.get("iss") or ""),
        audience=str(audience),
        issued_at=_int_or_none(payload.get("iat")),
        expires_at=_int_or_none(payload.get("exp")),
        raw=payload,
    )


def username_from_subject(subject: str) -> str:
    """The CLI's rule: the text after the last ``/`` when ``sub`` starts with ``jfrt@`` or has ``/users/``."""
    if subject.startswith("jfrt@") or "/users/" in subject:
        return subject.rsplit("/", 1)[-1]
    return ""


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
