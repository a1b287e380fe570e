"""A local JSON file per target: the embedded default store (``make demo``, single hosts).

Each target is ``<directory>/<path>.json`` with mode 0600 in a 0700 directory. Writes go to a
temporary file in the same directory, are fsynced and renamed over the old file, so a reader
sees the old or the new record, never half of one. An advisory ``flock`` on ``<file>.lock``
serialises writers on this host, and a revision counter (``rotator.revision`` in the record)
gives compare-and-set. Metadata lives in the record under ``rotator.metadata``
(:mod:`backends.inline_metadata` holds those rules, shared with a Vault KV v1 mount); a value that
is not our record (a consumer document: a bare token, a ``.dockerconfigjson`` ...) is stored as
given, with its revision and metadata in a 0600 sidecar ``<path>.json.meta``.

Daemon replicas on one host coordinate through the same ``flock``: the leader lease is an
exclusive lock on ``<directory>/<daemon.leader.path>.lease`` held for as long as the process leads
(the kernel releases it when the process dies), and a per-rotation claim is ``<path>.json.claim``,
written under the target's lock. ``flock`` works on one host only: share Vault or AWS between hosts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from backends import inline_metadata
from backends.base import BackendError, CASConflict, LeaseRecord, StoredValue, Version, live_claim_holder
from rotator.core.options import Options, has_control_characters
from rotator.core.record import MANAGED_BY

log = logging.getLogger(__name__)


class FileBackend:
    """One JSON file per target, 0600, atomic rename, advisory lock, revision counter."""

    metadata_without_secret = False
    reads_are_local = True  # backends.base.LocalStore: no point reading many targets in parallel
    lease_expires = False  # backends.base.LeaderLease: a flock ends with its holder, never taken over

    def __init__(self, name: str, directory: str | os.PathLike[str]) -> None:
        self.name = name
        self.directory = Path(directory)
        self._leases: dict[str, tuple[int, str]] = {}  # path -> (descriptor holding the flock, holder)
        self._leases_lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, options: Options) -> FileBackend:
        directory = options.str("directory")
        if not directory or has_control_characters(directory):
            raise options.error("directory", "must be a directory path without control characters")
        base = Path(options.source).parent if options.source else Path.cwd()
        return cls(name, base / directory)

    # -- protocol -------------------------------------------------------------------------
    def read(self, path: str) -> StoredValue:
        # No lock: writers replace files by an atomic rename, so a read sees a whole value.
        file = self._file(path)
        text = self._read_text(file)
        if text is None:
            return StoredValue(None, None)
        revision, metadata = self._bookkeeping(file, text)
        return StoredValue(text, revision, metadata)

    def write(self, path: str, text: str, *, expected_version: Any, metadata: Mapping[str, str | None],
              rotation_id: str) -> int:
        file = self._file(path)
        self._ensure_directory()
        with self._lock(file):
            text_now = self._read_text(file)
            found, meta_now = (None, {}) if text_now is None else self._bookkeeping(file, text_now)
            if not inline_metadata.revision_matches(expected_version, found):
                raise CASConflict(f"write: {inline_metadata.mismatch(expected_version, found)}",
                                  backend=self.name, path=path)
            revision = (found or 0) + 1
            merged = inline_metadata.merge_metadata(meta_now, metadata)
            if _is_record(text):
                record = {**_as_object(text, self.name, path)}
                record["rotator"] = {**inline_metadata.rotator_section(record), "revision": revision,
                                     "metadata": merged}
                self._replace(file, json.dumps(record, indent=2) + "\n")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(_sidecar(file))
            else:  # a consumer document: the value as given, the bookkeeping beside it, written first
                # (a crash between the two then leaves the old value beside bookkeeping that names
                # another token and lists this one as retired: READ carries that list over)
                self._replace(_sidecar(file), json.dumps({"revision": revision, "metadata": merged}, indent=2))
                self._replace(file, text)
        return revision

    def read_metadata(self, path: str) -> dict[str, str] | None:
        stored = self.read(path)
        return None if stored.text is None else dict(stored.metadata)

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        file = self._file(path)
        with self._lock(file):
            current = self._read_text(file)
            if current is None:
                raise BackendError("patch metadata: no such target", backend=self.name, path=path)
            sidecar = self._read_sidecar(file)
            if sidecar is not None or not _is_record(current):
                revision, metadata = sidecar if sidecar is not None else (0, {})
                merged = inline_metadata.merge_metadata(metadata, updates)
                self._replace(_sidecar(file), json.dumps({"revision": revision + 1, "metadata": merged}, indent=2))
                return
            data = _as_object(current, self.name, path)
            if not isinstance(data.get("rotator", {}), dict):
                raise BackendError("patch metadata: 'rotator' is not an object", backend=self.name, path=path)
            record, _ = inline_metadata.next_record(data, data, updates)
            self._replace(file, json.dumps(record, indent=2) + "\n")

    def list_managed(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        found = []
        for file in sorted(self.directory.rglob("*.json")):
            try:
                _, metadata = self._bookkeeping(file, file.read_text(encoding="utf-8"))
            except (OSError, BackendError):
                continue
            if metadata.get("managed_by") == MANAGED_BY:
                found.append(file.relative_to(self.directory).as_posix().removesuffix(".json"))
        return found

    def keeps_metadata_apart(self) -> bool:
        """backends.base.DocumentStore: a value that is not our record gets a 0600 sidecar file
        (``<path>.json.meta``) holding its revision and metadata."""
        return True

    def check(self) -> str:
        self._ensure_directory()
        probe = tempfile.NamedTemporaryFile(dir=self.directory, prefix=".probe-", delete=True)
        probe.close()
        return f"file store {self.directory} is writable"

    def close(self) -> None:
        """Release the leases this store holds; every other call opens and closes its own files."""
        with self._leases_lock:
            held, self._leases = list(self._leases.values()), {}
        for fd, _ in held:
            os.close(fd)

    # -- LeaderLease: an exclusive flock held while leading ------------------------------------------
    def read_lease(self, path: str) -> LeaseRecord:
        """Ours when this store holds it; else ``holder None`` when the lock is free right now, or the
        holder its file names (the version is the holder: it changes only with the holder)."""
        with self._leases_lock:
            mine = self._leases.get(path)
        if mine is not None:
            return LeaseRecord(mine[1], mine[1])
        file = self._lease_file(path)
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            return LeaseRecord(None, None)
        try:
            if _try_flock(fd):
                return LeaseRecord(None, None)  # free (our probe's lock goes with the descriptor)
            holder = str(_lease_content(fd).get("holder") or "") or "another process"
            return LeaseRecord(holder, holder)
        finally:
            os.close(fd)

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> Version:
        """``flock(LOCK_EX | LOCK_NB)`` on the lease file, kept while leading; :class:`CASConflict`
        when another process holds it. The holder is written into the file, for people and standbys."""
        file = self._lease_file(path)
        self._ensure_directory()
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_flock(fd):
            os.close(fd)
            raise CASConflict("take lease: another process holds the lock", backend=self.name, path=path)
        # Written in place, never renamed over: a new inode would not carry the lock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"holder": holder, **fields}).encode(), 0)
        with self._leases_lock:
            self._leases[path] = (fd, holder)
        return holder

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> Version:
        """Nothing to renew: the lock lasts while the descriptor is open."""
        with self._leases_lock:
            mine = self._leases.get(path)
        if mine is None or mine[1] != holder:
            raise CASConflict("renew lease: this process does not hold the lock", backend=self.name, path=path)
        return holder

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        with self._leases_lock:
            mine = self._leases.pop(path, None)
        if mine is not None:
            os.close(mine[0])  # closing the descriptor releases the lock

    def _lease_file(self, path: str) -> Path:
        return self._file(path).with_suffix(".lease")

    # -- RotationClaims: <path>.json.claim under the target's lock ---------------------------------
    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        file = self._file(path)
        claim_file = file.with_name(file.name + ".claim")
        self._ensure_directory()
        with self._lock(file):
            text = self._read_text(claim_file)
            found = inline_metadata.decode(text) if text is not None else {}
            now = time.time()
            other = live_claim_holder(found if isinstance(found, dict) else {}, version, holder, ttl, now)
            if other:
                return other
            self._replace(claim_file, json.dumps({"version": str(version), "holder": holder,
                                                  "rotation_id": rotation_id, "at": f"{now:.3f}"}))
        return holder

    def release_rotation(self, path: str, version: Version, *, holder: str) -> None:
        file = self._file(path)
        claim_file = file.with_name(file.name + ".claim")
        with self._lock(file):
            text = self._read_text(claim_file)
            found = inline_metadata.decode(text) if text is not None else {}
            if isinstance(found, dict) and found.get("holder") == holder and str(found.get("version")) == str(version):
                claim_file.unlink(missing_ok=True)

    # -- files ----------------------------------------------------------------------------
    def _file(self, path: str) -> Path:
        relative = Path(path if path.endswith(".json") else f"{path}.json")
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise BackendError("path must be relative to the store directory, without '..'",
                               backend=self.name, path=path)
        return self.directory / relative

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _lock(self, file: Path) -> Iterator[None]:
        """Exclusive advisory lock on ``<file>.lock``: one writer at a time on this host."""
        lock_path = file.with_name(file.name + ".lock")
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _bookkeeping(self, file: Path, text: str) -> tuple[int, dict[str, str]]:
        """Revision and metadata of a value: from its sidecar when it has one, else from the record."""
        sidecar = self._read_sidecar(file)
        if sidecar is not None:
            return sidecar
        record = inline_metadata.decode(text)
        return inline_metadata.revision(record), inline_metadata.metadata(record)

    def _read_sidecar(self, file: Path) -> tuple[int, dict[str, str]] | None:
        text = self._read_text(_sidecar(file))
        if text is None:
            return None
        data = inline_metadata.decode(text)
        if not isinstance(data, dict):
            raise BackendError("the metadata file is not a JSON object", backend=self.name, path=str(_sidecar(file)))
        return inline_metadata.revision({"rotator": data}), inline_metadata.string_map(data.get("metadata"))

    def _read_text(self, file: Path) -> str | None:
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"read: {exc.strerror}", backend=self.name, path=str(file)) from None

    def _replace(self, file: Path, text: str) -> None:
        """Write ``text`` to a 0600 temporary file beside ``file``, fsync, rename over it."""
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _try_flock(fd: int) -> bool:
    """An exclusive ``flock`` without waiting: False when another open file holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _lease_content(fd: int) -> dict[str, Any]:
    data = inline_metadata.decode(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    return data if isinstance(data, dict) else {}


def _sidecar(file: Path) -> Path:
    return file.with_name(file.name + ".meta")


def _is_record(text: str) -> bool:
    """Our record (a JSON object with a ``rotator`` section) keeps its bookkeeping inside itself."""
    data = inline_metadata.decode(text)
    return isinstance(data, dict) and isinstance(data.get("rotator"), dict)


def _as_object(text: str, backend: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise BackendError("the stored value is not valid JSON", backend=backend, path=path) from None
    if not isinstance(data, dict):
        raise BackendError("the stored value is not a JSON object", backend=backend, path=path)
    return data
