"""Which stores Vault-triggered renewal works through (see ``docs/vault-triggers.md``)."""

from __future__ import annotations

from typing import TypeGuard

from backends.base import RotationRequests


def takes_requests(backend: object, token: str | None = None) -> TypeGuard[RotationRequests]:
    """True for a store that holds rotation flags and request objects (a Vault KV v2 mount);
    ``token``: a caller's, to ask with when the store's own credentials may be absent."""
    return isinstance(backend, RotationRequests) and backend.accepts_requests(token)
