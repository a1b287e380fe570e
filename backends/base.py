"""The contract between the rotation engine and a secret store, and the registry of stores.

A backend stores one JSON text per target *path* and offers compare-and-set: every read returns
an opaque *version*, and a write names the version it expects to replace; when someone else
wrote in between, the write raises :class:`CASConflict` and changes nothing. Stores with
staging labels (AWS Secrets Manager) also offer pending/promote, which the Lambda uses.

Built-in backends: ``vault``, ``aws-secretsmanager``, ``file``. Third parties add more through
the entry-point group ``jfrog_rotator.backends`` (name = the ``type`` used in the config, value =
``module:Class``); the class must provide ``from_config(name, options)`` and the methods below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from rotator.core.options import ConfigError, Options
from rotator.core.record import MANAGED_BY
from rotator.core.redact import scrub

ENTRY_POINT_GROUP = "jfrog_rotator.backends"
BUILTIN_BACKENDS = {
    "vault": "backends.vault:VaultBackend",
    "aws-secretsmanager": "backends.aws_secretsmanager:SecretsManagerBackend",
    "file": "backends.file:FileBackend",
}

Version = Any  # opaque compare-and-set token: Vault version int, AWS VersionId, file revision


class BackendError(Exception):
    """A store operation failed. The message names the backend, the path and the call."""

    def __init__(self, message: str, *, backend: str = "", path: str = "") -> None:
        self.backend = backend
        self.path = path
        prefix = f"{backend}:{path}: " if backend or path else ""
        super().__init__(scrub(prefix + message))


class CASConflict(BackendError):
    """Someone else wrote the target after we read it; our write was not applied."""


class WriteOutcomeUnknown(BackendError):
    """The write may or may not have been applied (timeout, connection lost): re-read to decide."""


@dataclass(frozen=True)
class StoredValue:
    """What a read returns. ``text is None`` when the target holds no value yet.

    ``version`` is what a compare-and-set write must name to replace this value (``None`` when
    the target does not exist at all: the write then creates it and fails if someone else did).
    ``metadata`` holds the non-secret facts the store keeps beside the value, when it has any.
    """

    text: str | None
    version: Version
    metadata: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class SecretBackend(Protocol):
    """What the engine needs from a store."""

    name: str

    #: True when :meth:`read_metadata` answers without reading the secret value itself.
    metadata_without_secret: bool

    def read(self, path: str) -> StoredValue:
        """The current value and its version (``StoredValue(None, None)`` for a new target)."""

    def write(self, path: str, text: str, *, expected_version: Version, metadata: Mapping[str, str | None],
              rotation_id: str) -> Version:
        """Compare-and-set: replace the value read at ``expected_version`` and return the new version.

        ``metadata`` is merged into the target's metadata; a ``None`` value removes that key.

        Raise :class:`CASConflict` when the current version differs, :class:`WriteOutcomeUnknown`
        when the store may have applied the write without confirming it.
        """

    def read_metadata(self, path: str) -> Mapping[str, str] | None:
        """Non-secret metadata of the target (``None`` when it does not exist)."""

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """Merge ``updates`` into the target's metadata (``None`` removes a key); never changes the
        token the target holds."""

    def list_managed(self) -> list[str]:
        """Paths of the targets this store holds that carry ``managed_by=jfrog-token-rotator``."""

    def check(self) -> str:
        """Connectivity and permission check for ``check-config --online``; returns a summary."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class StagingBackend(SecretBackend, Protocol):
    """A store with staging labels: a new value is written pending, then promoted to current."""

    def write_pending(self, path: str, text: str, rotation_id: str, *, rotation_token: str | None = None) -> None:
        """Store ``text`` as the pending version ``rotation_id`` (idempotent for the same text)."""

    def read_pending(self, path: str, rotation_id: str) -> str | None:
        """The value of pending version ``rotation_id``, or ``None`` when it has none yet."""

    def promote(self, path: str, rotation_id: str, expected_version: Version) -> Version:
        """Make ``rotation_id`` current if ``expected_version`` still is (:class:`CASConflict` otherwise)."""


def backend_class(type_name: str) -> type:
    """The class for a config ``type``: a built-in, else an entry point of ``jfrog_rotator.backends``."""
    target = BUILTIN_BACKENDS.get(type_name)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == type_name:
                return ep.load()
        raise KeyError(type_name)
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def available_types() -> list[str]:
    names = set(BUILTIN_BACKENDS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def create_backend(name: str, options: Options) -> SecretBackend:
    """Build the backend ``name`` from its config mapping (which names its ``type``)."""
    type_name = options.str("type")
    try:
        cls = backend_class(type_name)
    except KeyError:
        raise options.error("type", f"unknown backend type {type_name!r} (available: "
                                    f"{', '.join(available_types())})") from None
    except ImportError as exc:
        raise options.error("type", f"backend {type_name!r} cannot be loaded: {exc}") from None
    backend = cls.from_config(name, options)
    options.finish()
    return backend


__all__ = [
    "BackendError",
    "CASConflict",
    "ConfigError",
    "ENTRY_POINT_GROUP",
    "MANAGED_BY",
    "SecretBackend",
    "StagingBackend",
    "StoredValue",
    "Version",
    "WriteOutcomeUnknown",
    "backend_class",
    "create_backend",
]
