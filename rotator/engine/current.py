"""What the steps pass each other: the minting credential, what READ found, what MINT made, and
the repair of metadata that does not follow the record (docs/architecture.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import BackendError, SecretBackend, StoredValue
from rotator.core.record import SecretRecord
from rotator.core.shapes import Found
from rotator.core.target import Target
from rotator.engine.records import metadata_drift
from rotator.jfrog.client import TokenResponse

log = logging.getLogger("rotator.engine")


@dataclass(frozen=True)
class AdminCredential:
    """The credential that mints (``recreate``) and cleans up: the JFrog client's own when ``read``
    is ``None``, else a token read when needed (the Lambda's ``JFROG_ADMIN_SECRET_ARN``)."""

    read: Callable[[], str] | None = None

    def token(self) -> str | None:
        return self.read() if self.read is not None else None


@dataclass(frozen=True)
class Current:
    """What READ found: the store, its value and version, and the record in it (``None``: no
    token yet): our record, one rebuilt from a document and its metadata, or one adopted.
    ``repaired`` says what READ fixed in the metadata beside the record."""

    backend: SecretBackend
    stored: StoredValue
    record: SecretRecord | None
    repaired: str | None = None
    found: Found | None = None  # the shape the value holds when it is not our record
    adopted: bool = False  # the value was not ours: its record comes from JFrog (/tokens/me)

    @property
    def version(self) -> Any:
        return self.stored.version


@dataclass(frozen=True)
class Minted:
    token: TokenResponse
    strategy: str  # recreate | refresh | self


def repair_metadata(target: Target, backend: SecretBackend, record: SecretRecord, metadata: Mapping[str, str],
                    version: Any) -> str | None:
    """Bring the metadata back in line with the record when they disagree (a value that landed
    without the metadata write after it); returns what was repaired, ``None`` when nothing was."""
    drift = metadata_drift(record, metadata)
    if drift is None:
        return None
    updates: dict[str, str | None] = {**record.metadata()}
    if backend.metadata_without_secret and version is not None:
        updates["rotator_version"] = str(version)  # the version the rotator stands behind
    try:
        backend.patch_metadata(target.path, updates)
    except BackendError as exc:
        log.warning("%s: %s; repairing the metadata failed: %s", target.name, drift, exc)
        return None
    message = f"repaired the metadata of {backend.name}:{target.path}: {drift}"
    log.warning("%s: %s", target.name, message, extra={"target": target.name})
    return message
