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


class MetadataNotWritten(BackendError):
    """The value *was* stored as ``version``, but the metadata write after it failed: the metadata
    still describes the previous value until the next read that sees the difference repairs it."""

    def __init__(self, message: str, *, version: Any, backend: str = "", path: str = "") -> None:
        self.version = version
        super().__init__(message, backend=backend, path=path)


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
    """A store with staging labels (AWS Secrets Manager): a new value is written *pending* under
    a rotation id, then promoted to *current* with a compare-and-set on the label. The Lambda
    drives a rotation through these methods only, never through a concrete class."""

    def staging(self, path: str) -> StagingState:
        """Which version holds which label, and whether the store's own rotation is enabled."""

    def write_pending(self, path: str, text: str, rotation_id: str, *, rotation_token: str | None = None) -> None:
        """Store ``text`` as the pending version ``rotation_id`` (idempotent for the same text)."""

    def read_pending(self, path: str, rotation_id: str) -> str | None:
        """The value of pending version ``rotation_id``, or ``None`` when it has none yet."""

    def read_version(self, path: str, version_id: str) -> str | None:
        """The value of one version, ``None`` when it has no value."""

    def promote(self, path: str, rotation_id: str, expected_version: Version) -> Version:
        """Make ``rotation_id`` current if ``expected_version`` still is (:class:`CASConflict` otherwise)."""

    def drop_pending(self, path: str, rotation_id: str) -> None:
        """Remove the pending label from ``rotation_id`` (the version itself stays, unlabelled)."""


@dataclass(frozen=True)
class StagingState:
    """What :meth:`StagingBackend.staging` returns (``DescribeSecret`` on AWS)."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: Mapping[str, tuple[str, ...]]  # version id -> labels
    current: str | None  # the version id holding the current label
    pending: str | None  # the version id holding the pending label

    def labels(self, version_id: str) -> tuple[str, ...] | None:
        """The labels of ``version_id``, ``None`` when the store has no such version."""
        found = self.versions.get(version_id)
        return tuple(found) if found is not None else None


@runtime_checkable
class DocumentStore(Protocol):
    """A store that keeps metadata beside *any* value, so a target can hold what its consumers read
    (a bare token, a ``.dockerconfigjson`` ...) with the record's bookkeeping in the metadata."""

    def keeps_metadata_apart(self) -> bool:
        """False where the metadata can only live inside our record (a Vault KV v1 mount)."""


@runtime_checkable
class BoundedMetadata(Protocol):
    """A store whose metadata has limits a rotation must respect (AWS: 50 tags per secret,
    counting other tools' and people's tags), checked before a token is minted for a document,
    whose bookkeeping is nowhere else."""

    def check_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """Raise :class:`BackendError` naming what does not fit when ``updates`` would not fit
        beside what ``path`` already carries; writes nothing."""


@runtime_checkable
class LazyLayout(Protocol):
    """A :class:`DocumentStore` that may have to ask its server whether it keeps metadata apart
    (Vault with ``kv_version: auto``): loading a config makes no remote call, so it checks only
    what is known offline."""

    def layout_known(self) -> bool:
        """True when :meth:`DocumentStore.keeps_metadata_apart` answers without a remote call."""


@runtime_checkable
class RenewableAuth(Protocol):
    """A store that logs in and must keep its own credential alive (Vault tokens have a TTL)."""

    def validate_credentials(self) -> None:
        """Resolve the configured secrets now (env set, files readable); ``ConfigError`` otherwise."""

    def refresh_auth(self, *, min_ttl: int = 60) -> str:
        """Renew (or log in again) when fewer than ``min_ttl`` seconds are left; returns a summary."""


@runtime_checkable
class LocalStore(Protocol):
    """A store on this host (the file store): reads are cheap local reads and it needs no keep-alive
    or connectivity probe. The marker is the attribute; its value is always true."""

    reads_are_local: bool


@runtime_checkable
class RotationRequests(Protocol):
    """Vault-triggered renewal: rotation flags in the target's metadata and request objects under a
    prefix, written by callers with their own (narrow) token, read by the daemon's reconcile loop.

    ``accepts_requests()`` is false where the store cannot hold them (a Vault KV v1 mount)."""

    reconcile_interval: int
    request_prefix: str
    renew_before: tuple[int | None, float | None]

    def accepts_requests(self) -> bool:
        """Whether this store can hold flags and requests (a method, not a property: ``isinstance``
        on a runtime protocol reads properties before Python 3.12, and this may ask the server)."""

    def flag_location(self, path: str) -> str:
        """Where the flag of ``path`` lives, for messages (``secret/metadata/ci/token``)."""

    def pending_requests(self) -> dict[str, list[str]]:
        """Request objects waiting: target name -> request ids."""

    def requests_for(self, target: str) -> list[str]:
        """The ids of the request objects waiting for one target."""

    def read_request(self, target: str, request_id: str) -> dict[str, str]:
        """A request object's fields; ``{}`` when it is gone."""

    def delete_request(self, target: str, request_id: str) -> None:
        """Delete a served request object."""

    def request_created(self, target: str, request_id: str) -> str:
        """When the request object was made, by the store's clock (as ``read_metadata`` reports
        ``current_version_created``); ``""`` when it is gone."""

    def caller_capabilities(self, token: str, path: str) -> list[str]:
        """What a caller's ``token`` may do on the flag of ``path``, asked *as the caller*."""

    def caller_name(self, token: str) -> str:
        """A display name for the caller's token, ``""`` when it may not ask."""

    def request_rotation(self, path: str, *, token: str, reason: str, requested_by: str, at: str) -> None:
        """Set the rotation flag of ``path`` with the caller's token."""

    def write_request(self, target: str, request_id: str, fields: Mapping[str, str], *, token: str) -> str:
        """Create a request object with the caller's token; returns where it was written."""


class Unsupported(BackendError):
    """The store cannot do what was asked (a KV v1 mount has no check-and-set for a lease or a claim)."""


@dataclass(frozen=True)
class LeaseRecord:
    """A leader lease as the store holds it: who holds it (``None`` when nobody does: never taken,
    or released) and its compare-and-set version, which changes at every take and renewal."""

    holder: str | None
    version: Version
    fields: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class LeaderLease(Protocol):
    """A store that can keep the daemon replicas' leader lease at ``path`` (``daemon.leader``).

    Stores with ``lease_expires`` keep a record the holder renews with compare-and-set (Vault KV v2:
    a KV secret written with ``cas``; AWS: a secret whose ``AWSCURRENT`` label is moved with
    ``RemoveFromVersionId``); a standby takes it over once it has seen the record unchanged for the
    lease's TTL. A store without (the file store's ``flock``) holds a lock that ends with the
    process: it is never taken over while its holder lives. The election is ``rotator.daemon.leadership``.
    """

    lease_expires: bool

    def read_lease(self, path: str) -> LeaseRecord:
        """The lease as stored now (``LeaseRecord(None, None)`` when it was never taken)."""

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> Version:
        """Become the holder, if the lease is still at version ``expected`` (as read); returns the new
        version. :class:`CASConflict` when someone else changed it first."""

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> Version:
        """Renew a lease held at version ``held``; returns the new version. :class:`CASConflict` when
        it is not ours any more (taken over)."""

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        """Give the lease up (a clean stop), so a standby takes it at once; nothing happens when it
        was taken over already."""


@runtime_checkable
class RotationClaims(Protocol):
    """A store that can hold per-rotation claims: before minting, a rotation claims the target away
    from the version it read, so of two replicas rotating one target at once only one mints."""

    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        """Claim the rotation of ``path`` from ``version`` for ``holder``; returns who holds the claim
        now: ``holder`` when this caller may mint, another holder's name when someone claimed it
        less than ``ttl`` seconds ago. :class:`Unsupported` when the store cannot hold claims."""


@runtime_checkable
class ClaimRelease(Protocol):
    """A :class:`RotationClaims` store whose claims can be given back: a rotation that failed after
    it claimed the target (nothing stored) frees it for another replica at once, instead of after
    the claim's TTL (docs/architecture.md, invariant 6)."""

    def release_claim(self, path: str, version: Version, *, holder: str) -> None:
        """Give back ``holder``'s claim on ``path`` from ``version``; nothing when it is not (any
        more) the latest claim, or another's."""


def live_claim_holder(claim: Mapping[str, Any], version: Version, holder: str, ttl: float, now: float) -> str | None:
    """Who else holds a claim the stores keep as ``{"version", "holder", "at"}``: the holder's name
    when it claims ``version`` too, is not ``holder`` and was made less than ``ttl`` seconds ago
    (``at``: epoch seconds, the claimer's clock); ``None`` when ``holder`` may claim."""
    other = str(claim.get("holder") or "")
    if not other or other == holder or str(claim.get("version")) != str(version):
        return None
    try:
        made = float(claim.get("at") or 0)
    except (TypeError, ValueError):
        return None
    return other if now - made < ttl else None


@runtime_checkable
class EventStream(Protocol):
    """A store that pushes change events (Vault Enterprise's event subscription)."""

    events: bool  # subscribing is configured
    mount: str
    request_prefix: str

    def event_subscription(self, event_type: str) -> tuple[str, dict[str, str]]:
        """WebSocket URL and headers to subscribe to ``event_type``."""


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
    "BoundedMetadata",
    "CASConflict",
    "ConfigError",
    "ENTRY_POINT_GROUP",
    "MANAGED_BY",
    "SecretBackend",
    "DocumentStore",
    "EventStream",
    "LazyLayout",
    "LeaderLease",
    "LeaseRecord",
    "LocalStore",
    "MetadataNotWritten",
    "RenewableAuth",
    "RotationClaims",
    "RotationRequests",
    "StagingBackend",
    "StagingState",
    "StoredValue",
    "Unsupported",
    "Version",
    "WriteOutcomeUnknown",
    "backend_class",
    "create_backend",
    "live_claim_holder",
]
