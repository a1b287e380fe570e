"""What ``jfrog-rotator status`` shows per target, read from metadata where the store keeps it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from backends.base import BackendError, SecretBackend
from rotator.core.record import RecordError, SecretRecord, parse_time, retired_from_metadata, split_ids, utc_iso
from rotator.core.schedule import next_due
from rotator.core.target import Target
from rotator.engine.current import repair_metadata


class HasBackends(Protocol):
    """What status needs of a config: the stores by name (:class:`rotator.config.Config` has them)."""

    backends: Mapping[str, SecretBackend]


@dataclass
class OutputStatus:
    """One output of a fan-out target: ``in-sync`` (holds the primary's token), ``behind`` (holds
    another one, or none; the next run writes it) or ``error`` (could not be read)."""

    output: str  # <backend>:<path>
    format: str
    state: str
    token_id: str | None = None
    primary: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"output": self.output, "format": self.format, "state": self.state,
                               "token_id": self.token_id}
        if self.primary:
            out["primary"] = True
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class TargetStatus:
    target: str
    backend: str
    path: str
    state: str  # ok | missing | due | expired | error | foreign-write | out-of-sync
    token_id: str | None = None
    username: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    next_due: datetime | None = None
    generation: int | None = None
    retired_waiting: int = 0
    last_rotation: str | None = None
    last_error: str | None = None
    source: str = "metadata"  # metadata | record
    written_by_hand: bool = False  # Vault: the current version is not the one the rotator wrote
    repaired: str | None = None  # the metadata did not follow the record and was repaired
    outputs: list[OutputStatus] = field(default_factory=list)  # fan-out targets only, the primary first
    pending: tuple[str, ...] = ()  # the ids the primary lists as not holding its token yet

    @property
    def outputs_behind(self) -> list[OutputStatus]:
        return [o for o in self.outputs if o.state != "in-sync"]

    def expires_in(self, now: datetime) -> int | None:
        return None if self.expires_at is None else int((self.expires_at - now).total_seconds())

    def to_json(self, now: datetime) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return utc_iso(v) if v else None

        return {"target": self.target, "backend": self.backend, "path": self.path, "state": self.state,
                "token_id": self.token_id, "username": self.username, "issued_at": t(self.issued_at),
                "expires_at": t(self.expires_at), "expires_in_seconds": self.expires_in(now),
                "next_due": t(self.next_due), "generation": self.generation,
                "retired_waiting": self.retired_waiting, "last_rotation": self.last_rotation,
                "last_error": self.last_error or None, "read_from": self.source,
                **({"repaired": self.repaired} if self.repaired else {}),
                **({"outputs": [o.to_json() for o in self.outputs]} if self.outputs else {})}


def target_status(config: HasBackends, target: Target, now: datetime | None = None) -> TargetStatus:
    """Status without reading the secret where the store has metadata (Vault KV v2, AWS tags)."""
    now = now or datetime.now(timezone.utc)
    backend = config.backends[target.backend]
    status = TargetStatus(target.name, target.backend, target.path, state="ok")
    try:
        if backend.metadata_without_secret:
            _from_metadata(status, backend, target)
            if status.written_by_hand:
                _repair_if_ours(status, backend, target)
        else:
            _from_record(status, backend, target)
    except (BackendError, RecordError, ValueError) as exc:
        status.state, status.last_error = "error", str(exc)
        return status
    if status.token_id is None:
        status.state = "missing"
        status.next_due = now
        return status
    status.next_due = next_due(target.schedule, status.issued_at, status.expires_at, now)
    if target.outputs:
        _outputs(status, config, target)
    if status.written_by_hand:
        status.state = "foreign-write"
        status.last_error = status.last_error or _FOREIGN
    elif status.expires_at is not None and status.expires_at <= now:
        status.state = "expired"
    elif status.next_due is not None and status.next_due <= now:
        status.state = "due"
    elif status.outputs_behind:
        status.state = "out-of-sync"  # a rotation did not reach every output: the next run syncs them
    return status


def _outputs(status: TargetStatus, config: HasBackends, target: Target) -> None:
    """Per output: which token its own metadata names (no secret read where the store keeps metadata
    apart), and whether the primary still lists it as pending."""
    status.outputs.append(OutputStatus(target.primary.key, target.format or "record", "in-sync",
                                       token_id=status.token_id, primary=True))
    for output in target.outputs:
        entry = OutputStatus(output.key, output.format or "record", "behind")
        status.outputs.append(entry)
        try:
            backend = config.backends[output.backend]
            meta = backend.read_metadata(output.path) or {}
        except (BackendError, KeyError) as exc:
            entry.state, entry.error = "error", str(exc)
            continue
        entry.token_id = meta.get("token_id") or None
        if meta.get("target") not in (None, "", target.name):
            entry.error = f"holds a value of target {meta['target']!r}"
        elif entry.token_id == status.token_id and output.id not in status.pending:
            entry.state = "in-sync"


def _from_metadata(status: TargetStatus, backend: SecretBackend, target: Target) -> None:
    _fill_from_metadata(status, backend.read_metadata(target.path) or {})


def _fill_from_metadata(status: TargetStatus, meta: Mapping[str, str]) -> None:
    """The bookkeeping of the metadata (for our record, or for a document in another format)."""
    if not meta:
        return
    status.last_error = meta.get("last_error") or None
    status.last_rotation = meta.get("last_rotation") or None
    written, current = meta.get("rotator_version"), meta.get("current_version")
    status.written_by_hand = written is not None and current is not None and written != current
    if not meta.get("token_id"):
        return
    status.token_id = meta["token_id"]
    status.username = meta.get("username") or None
    status.issued_at = parse_time(meta["issued_at"], "issued_at") if meta.get("issued_at") else None
    expires = meta.get("expires_at")
    status.expires_at = parse_time(expires, "expires_at") if expires and expires != "never" else None
    status.generation = int(meta["generation"]) if str(meta.get("generation", "")).isdigit() else None
    status.pending = split_ids(meta.get("outputs_pending"))
    count = meta.get("retired_count", "")
    status.retired_waiting = int(count) if count.isdigit() else _listed(meta)


def _listed(meta: Mapping[str, str]) -> int:
    try:
        return len(retired_from_metadata(meta))
    except RecordError:
        return 0


def _from_record(status: TargetStatus, backend: SecretBackend, target: Target) -> None:
    stored = backend.read(target.path)
    status.source = "record"
    if stored.text is None:
        return
    try:
        record = SecretRecord.loads(stored.text)
    except RecordError:  # a document in another format: its bookkeeping is in the metadata
        status.source = "metadata"
        _fill_from_metadata(status, stored.metadata)
        if status.token_id is None:
            status.last_error = ("not a record of ours: the next rotation adopts it if it holds a working JFrog "
                                 "token (or refuses it, saying why)")
        return
    owner = record.output_of or record.target
    if owner and owner != target.name:
        raise RecordError(f"{target.backend}:{target.path} belongs to target {owner!r}; two targets must not "
                          "share a path")
    status.token_id, status.username = record.token_id, record.username
    status.issued_at, status.expires_at = record.issued_at, record.expires_at
    status.generation, status.retired_waiting = record.generation, len(record.retired)
    status.pending = record.outputs_pending
    status.last_error = stored.metadata.get("last_error") or None
    status.last_rotation = stored.metadata.get("last_rotation") or None


def _repair_if_ours(status: TargetStatus, backend: SecretBackend, target: Target) -> None:
    """The current version is not the one the metadata describes. When it holds this target's
    record of a later generation, the rotator wrote it and only the metadata write was lost (a
    write that timed out and landed later): repair the metadata and report from the record.
    Anything else stays a write made outside the rotator."""
    stored = backend.read(target.path)
    try:
        record = SecretRecord.loads(stored.text) if stored.text is not None else None
    except RecordError:
        return
    if record is None or (record.target and record.target != target.name):
        return
    if status.generation is not None and record.generation <= status.generation:
        return
    meta = {**stored.metadata, "token_id": status.token_id or "", "generation": str(status.generation or 0)}
    status.repaired = repair_metadata(target, backend, record, meta, stored.version)
    if status.repaired is None:
        return
    status.written_by_hand = False
    status.last_error = None if status.last_error == _FOREIGN else status.last_error
    owner = record.output_of or record.target
    if owner and owner != target.name:
        raise RecordError(f"{target.backend}:{target.path} belongs to target {owner!r}; two targets must not "
                          "share a path")
    status.token_id, status.username = record.token_id, record.username
    status.issued_at, status.expires_at = record.issued_at, record.expires_at
    status.generation, status.retired_waiting = record.generation, len(record.retired)
    status.pending = record.outputs_pending


_FOREIGN = "the current version was written outside the rotator"
