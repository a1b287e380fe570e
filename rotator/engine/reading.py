"""READ: what a target's store holds, as the record the engine works on.

Our record is read as it is. Any other value is looked at for a JFrog token (:mod:`rotator.core.shapes`):
a document we wrote (another format, or a shape we kept) is rebuilt from its token and the
bookkeeping in the metadata beside it; a value we did not write is *adopted* when its token works
(``GET /access/api/v1/tokens/me`` with it, https://jfrog.com/help/r/jfrog-rest-apis/get-token-by-id),
unless the target says ``adopt: false``. A value with no token, or a dead one, is refused with a
message that names the path and what was found, and is never overwritten.
"""

from __future__ import annotations

from dataclasses import replace

from backends.base import BackendError, DocumentStore, SecretBackend, StoredValue
from rotator.core.record import MANAGED_BY, RecordError, SecretRecord, retired_from_metadata
from rotator.core.shapes import Found, ShapeError, find_token
from rotator.core.tags import tag_target
from rotator.core.target import Target
from rotator.engine.current import Current, repair_metadata
from rotator.engine.documents import (
    adopted_record,
    keeps_record,
    record_from_metadata,
    successor_record,
    token_in_template_output,
)
from rotator.engine.results import RotationError, RotationStep
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogError, JFrogHTTPError


def read_current(target: Target, backend: SecretBackend, jfrog: AccessClient) -> Current:
    try:
        stored = backend.read(target.path)
    except BackendError as exc:
        raise RotationError(target.name, RotationStep.READ, str(exc)) from None
    return read_stored(target, backend, stored, jfrog)


def read_stored(target: Target, backend: SecretBackend, stored: StoredValue, jfrog: AccessClient) -> Current:
    """What :func:`read_current` makes of a value already read (the outputs of a fan-out target)."""
    current = _read(target, backend, stored, jfrog)
    check_document_store(target, current)
    return current


def _read(target: Target, backend: SecretBackend, stored: StoredValue, jfrog: AccessClient) -> Current:
    if stored.text is None:
        return Current(backend, stored, None)
    where = f"{backend.name}:{target.path}"
    try:
        record = SecretRecord.loads(stored.text)
    except RecordError as not_a_record:
        return _read_document(target, backend, stored, jfrog, where, not_a_record)
    _check_owner(target, record.target, where)
    repaired = repair_metadata(target, backend, record, stored.metadata, stored.version) if stored.metadata else None
    return Current(backend, stored, record, repaired)


def _read_document(target: Target, backend: SecretBackend, stored: StoredValue, jfrog: AccessClient, where: str,
                   not_a_record: RecordError) -> Current:
    try:
        found = find_token(stored.text or "")
        if found is None and target.format == "template" and target.template:
            found = token_in_template_output(stored.text or "", target.template)
    except ShapeError as exc:
        raise _refused(target, f"the stored value at {where} is not a usable record ({not_a_record}) and {exc}")
    if found is None:
        raise _refused(target, f"the stored value at {where} is not a usable record ({not_a_record}) and holds "
                               "no JFrog token")
    metadata = dict(stored.metadata) or _metadata(target, backend, where)
    if metadata.get("managed_by") == MANAGED_BY:
        _check_owner(target, metadata.get("target", ""), where)
    record = record_from_metadata(found, metadata, target=target.name, url=jfrog.url)
    if record is not None:
        return Current(backend, stored, record, found=found)
    ours = metadata.get("managed_by") == MANAGED_BY and metadata.get("target") == target.name
    if not target.adopt and not ours:
        raise _refused(target, f"{where} holds {found.describe()}, not a record of ours, and adopt is false "
                               "for this target")
    try:
        me = jfrog.get_me(token=found.token)
    except JFrogHTTPError as exc:
        raise _refused(target, f"{where} holds {found.describe()} whose token does not work "
                               f"(GET /access/api/v1/tokens/me: {exc.status} {exc.first_message()})") from None
    except JFrogError as exc:
        raise RotationError(target.name, RotationStep.READ,
                            f"{where} holds {found.describe()}; checking its token failed: {exc}") from None
    if ours and tag_target(str(me.get("description") or "")) == target.name:
        record = successor_record(found, me, metadata, target=target, url=jfrog.url)
        if record is not None:  # the document of a rotation whose metadata write was lost
            repaired = repair_metadata(target, backend, record, metadata, stored.version)
            return Current(backend, stored, record, repaired, found=found)
    if not target.adopt:
        raise _refused(target, f"{where} holds {found.describe()}, not the token its metadata names, and adopt "
                               "is false for this target")
    record = adopted_record(found, me, target=target.name, url=jfrog.url)
    if metadata.get("managed_by") == MANAGED_BY and metadata.get("target") == target.name:
        # Our metadata beside a token it does not name: a rotation died between the retired list it
        # wrote first and the value (or the value was replaced by hand). The tokens it lists are
        # still ours to revoke when due.
        carried = tuple(r for r in retired_from_metadata(metadata) if r.token_id != record.token_id)
        record = replace(record, retired=carried)
    return Current(backend, stored, record, found=found, adopted=True)


def check_document_store(target: Target, current: Current) -> None:
    """A value that is not our record needs metadata beside it for the bookkeeping (before any mint)."""
    if keeps_record(target, current.found):
        return
    backend = current.backend
    if isinstance(backend, DocumentStore) and backend.keeps_metadata_apart():
        return
    what = f"format {target.format}" if target.format else f"keeping the shape found ({_shape(current.found)})"
    raise _refused(target, f"{backend.name}:{target.path}: {what} needs metadata beside the value, which this "
                           "store does not keep (a Vault KV v1 mount keeps it only inside our record): use a "
                           "KV v2 mount, or set format: record")


def _metadata(target: Target, backend: SecretBackend, where: str) -> dict[str, str]:
    try:
        return dict(backend.read_metadata(target.path) or {})
    except BackendError as exc:
        raise RotationError(target.name, RotationStep.READ, str(exc)) from None


def _check_owner(target: Target, owner: str, where: str) -> None:
    if owner and owner != target.name:
        raise RotationError(target.name, RotationStep.READ,
                            f"{where} belongs to target {owner!r}; two targets must not share a path", bad_input=True)


def _refused(target: Target, message: str) -> RotationError:
    return RotationError(target.name, RotationStep.READ, f"{message}; it was left untouched", bad_input=True)


def _shape(found: Found | None) -> str:
    return found.describe() if found is not None else "our record"
