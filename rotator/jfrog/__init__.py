"""JFrog Platform Access API: client, errors, JWT claims and JFrog CLI server resolution."""

from rotator.jfrog.client import AccessClient, RetryPolicy, TokenResponse
from rotator.jfrog.errors import (
    JFrogConfigError,
    JFrogConnectionError,
    JFrogError,
    JFrogHTTPError,
)
from rotator.jfrog.jwt import TokenClaims, decode_claims

__all__ = [
    "AccessClient",
    "JFrogConfigError",
    "JFrogConnectionError",
    "JFrogError",
    "JFrogHTTPError",
    "RetryPolicy",
    "TokenClaims",
    "TokenResponse",
    "decode_claims",
]
