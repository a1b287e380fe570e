"""Which stores Vault-triggered renewal works through (see ``docs/vault-triggers.md``)."""

from __future__ import annotations

from typing import TypeGuard

from backends.base import RotationRequests


def takes_requests(backend: object) -> TypeGuard[RotationRequests]:
    """True for a store that holds rotation flags and request objects (a Vault KV v2 mount)."""
    return isinstance(backend, RotationRequests) and backend.accepts_requests()
