"""A JFrog access token obtained by an exchange (an OIDC ID token, a cloud identity) and kept until
shortly before it expires, so that a minting credential exchanges once per token lifetime and not
once per call.

The renewal rule: a token is exchanged again when less than 10 % of its life, or less than five
minutes, is left: early enough that a token is never used after it expired, late enough that a
daemon rotating many targets exchanges rarely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.jfrog.jwt import InvalidTokenFormat, decode_claims

RENEW_SHARE = 0.10
RENEW_MARGIN = 300
#: How long a token whose expiry nobody states (a non-expiring token) is kept before it is exchanged again.
UNKNOWN_LIFETIME = 3600


@dataclass(frozen=True, repr=False)
class ExchangedToken:
    """One exchanged token: its value, the JFrog user it acts as, when it was had and how long it is used."""

    access_token: str = field(repr=False)
    username: str
    token_id: str
    obtained_at: float
    lifetime: float

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any], now: float, *, max_lifetime: int | None = None) -> ExchangedToken:
        """From an exchange answer (``access_token``, ``expires_in``, ``username``); the lifetime is
        ``expires_in``, else the JWT's ``exp - iat``, capped by ``max_lifetime``."""
        token = str(answer.get("access_token") or "")
        try:
            claims = decode_claims(token)
        except InvalidTokenFormat:  # a reference token: no claims to read
            claims = None
        lifetimes = [float(answer["expires_in"])] if isinstance(answer.get("expires_in"), (int, float)) else []
        if not lifetimes and claims is not None and claims.expires_at and claims.issued_at:
            lifetimes.append(float(claims.expires_at - claims.issued_at))
        if max_lifetime:
            lifetimes.append(float(max_lifetime))
        username = str(answer.get("username") or (claims.username if claims else "") or "")
        return cls(access_token=token, username=username, token_id=claims.token_id if claims else "",
                   obtained_at=now, lifetime=min(lifetimes) if lifetimes else float(UNKNOWN_LIFETIME))

    def renew_due(self, now: float) -> bool:
        """True when less than 10 % of the lifetime or less than five minutes is left."""
        left = self.obtained_at + self.lifetime - now
        return left < max(RENEW_SHARE * self.lifetime, RENEW_MARGIN)

    def __repr__(self) -> str:
        return f"ExchangedToken(username={self.username!r}, token_id={self.token_id!r}, lifetime={self.lifetime!r})"
