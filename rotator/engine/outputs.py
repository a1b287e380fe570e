"""Fan-out: one token written to several outputs (a target's ``outputs:``, docs/configuration.md "Fan-out").

The target's own store path is the *primary*. Its compare-and-set decides which rotation wins, so
it is written first, and a rotation that loses the race touches no other output. Its record (or the
metadata beside a document) keeps the bookkeeping: the retired tokens, the ids of the other outputs
(``rotator.outputs``) and those that do not hold its token yet (``rotator.outputs_pending``). The
other outputs are written after it, each in its own format, read back in its own shape as READ
reads the primary (:mod:`rotator.engine.reading`, :mod:`rotator.engine.documents`). The rules
(docs/architecture.md, "Fan-out"):

- an output that does not hold the primary's token is *synced* first, before anything else a run
  (rotate, the daemon's job, a sweep) does;
- a token that any output holds is never revoked and never counted as an orphan; while an output
  cannot be read, nothing of the target is revoked;
- the overlap of a replaced token starts when the last output moved off it;
- a minted token is never discarded once the primary holds it: an output that could not be written
  keeps its previous token (which keeps working), is reported, and stays pending for the next run;
- a sync never writes an output that a later rotation already wrote (a higher generation), unless
  the primary still holds the token being synced (then that output is left over from an earlier
  life of the target, e.g. a primary deleted to start over).

No I/O of its own: the functions call the stores and the steps they are given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from backends.base import BackendError, CASConflict, MetadataNotWritten, SecretBackend, WriteOutcomeUnknown
from rotator.core.record import RetiredToken, SecretRecord
from rotator.core.shapes import Found, ShapeError
from rotator.core.target import Output, Target
from rotator.engine.current import Current
from rotator.engine.documents import keeps_record, render_value
from rotator.engine.reading import read_stored
from rotator.engine.records import is_stored_by_access, rotation_metadata
from rotator.engine.results import OutputResult, RotationError
from rotator.engine.steps import RotationSteps

log = logging.getLogger("rotator.engine")

#: Called as ``hook("before" | "after")`` around each write of an output (the engine's step hook
#: for :attr:`~rotator.engine.results.RotationStep.OUTPUTS`).
OutputHook = Callable[[str], None]


def _no_hook(when: str) -> None:
    return None


@dataclass
class OutputView:
    """One output besides the primary, as this run knows it: what it holds (``holding``: the record
    of its token, ours or adopted) at which version, or why it could not be read."""

    output: Output
    target: Target  # the target as written at this output (Target.at)
    backend: SecretBackend | None
    holding: SecretRecord | None = None
    version: Any = None
    found: Found | None = None  # the shape of the value when it is not our record
    adopted: bool = False  # ``holding`` is a token we did not write there
    error: str | None = None  # it could not be read: what it holds is unknown
    held: set[str] = field(default_factory=set)  # token ids it may hold now (two after an unknown write)
    #: What this run moved it off: the record it held before the last write, and whether adopted.
    moved_from: tuple[SecretRecord, bool] | None = None

    @property
    def key(self) -> str:
        return self.output.key

    @property
    def known(self) -> bool:
        return self.error is None

    def holds(self, record: SecretRecord) -> bool:
        return self.holding is not None and self.holding.token_id == record.token_id

    def _now_holds(self, record: SecretRecord, version: Any, before: tuple[SecretRecord, bool] | None) -> None:
        self.moved_from = before
        self.holding, self.version, self.adopted, self.held = record, version, False, {record.token_id}


def read_outputs(steps: RotationSteps, target: Target) -> list[OutputView]:
    """Read every output besides the primary; one that cannot be read is kept with its error."""
    views = []
    for output in target.outputs:
        at = target.at(output)
        backend = steps.backends.get(output.backend)
        view = OutputView(output, at, backend)
        views.append(view)
        if backend is None:
            view.error = f"no backend named {output.backend!r}"
            continue
        try:
            current = read_stored(at, backend, backend.read(output.path), steps.jfrog)
        except BackendError as exc:
            view.error = str(exc)
            continue
        except RotationError as exc:
            view.error = exc.detail
            continue
        _take(view, current)
    return views


def _failed(view: OutputView, token_id: str | None, why: object) -> OutputResult:
    """A failed output, its error without the ``<backend>:<path>: `` the result names already."""
    return OutputResult(view.key, "failed", token_id=token_id, error=str(why).replace(f"{view.key}: ", ""))


def _take(view: OutputView, current: Current) -> None:
    view.holding, view.version, view.found, view.adopted = current.record, current.version, current.found, current.adopted
    view.held = {current.record.token_id} if current.record is not None else set()


def held_tokens(views: Sequence[OutputView]) -> set[str] | None:
    """The token ids the outputs hold; ``None`` when an output could not be read (then what it
    holds is unknown, and nothing of the target may be revoked)."""
    if any(not view.known for view in views):
        return None
    return set().union(*(view.held for view in views)) if views else set()


def unknown_outputs(views: Sequence[OutputView]) -> str:
    return ", ".join(view.key for view in views if not view.known)


def report(views: Sequence[OutputView], record: SecretRecord | None) -> list[OutputResult]:
    """What a dry run (or a run that stopped before writing) says of each output."""
    out = []
    for view in views:
        token_id = view.holding.token_id if view.holding is not None else None
        if not view.known:
            out.append(_failed(view, None, view.error))
        elif record is not None and view.holds(record):
            out.append(OutputResult(view.key, "in-sync", token_id=token_id))
        else:
            out.append(OutputResult(view.key, "behind", token_id=token_id))
    return out


def with_outputs(target: Target, record: SecretRecord, views: Sequence[OutputView], *, overlap: int,
                 persistency_threshold: int, now: datetime) -> SecretRecord:
    """The record the primary's STORE writes: every other output listed, all pending (none holds the
    new token yet), and a token adopted at another output retired like the primary's previous one
    (listed in the same write, so a crash cannot lose track of it)."""
    retired = list(record.retired)
    listed = {entry.token_id for entry in retired} | {record.token_id}
    for view in views:
        held = view.holding
        if held is not None and view.adopted and held.token_id not in listed and \
                is_stored_by_access(held, persistency_threshold):
            retired.append(RetiredToken(held.token_id, now + timedelta(seconds=overlap), held.expires_at))
            listed.add(held.token_id)
    ids = tuple(output.id for output in target.outputs)
    return replace(record, outputs=ids, outputs_pending=ids, retired=tuple(retired))


def output_record(record: SecretRecord, view: OutputView, target: str) -> SecretRecord:
    """The record as an output other than the primary holds it: the token and its facts, none of the
    primary's bookkeeping (no retired list, no refresh token: the primary's alone), and the keys a
    person added to this output's own record kept."""
    own = view.holding if view.holding is not None and not view.adopted else None
    return replace(record, retired=(), refresh_token=None, outputs=(), outputs_pending=(), output_of=target,
                   extra=dict(own.extra) if own else {}, rotator_extra=dict(own.rotator_extra) if own else {})


def write_output(steps: RotationSteps, target: Target, view: OutputView, record: SecretRecord, *, state: str,
                 reason: str, rotation_id: str, warnings: list[str], hook: OutputHook = _no_hook) -> OutputResult:
    """Write ``record``'s token to one output (compare-and-set on the version read). ``state`` is
    what a success is called (``rotated`` or ``synced``). A failure leaves the output with the
    token it had, and says why."""
    before = view.holding.token_id if view.holding is not None else None
    previous = (view.holding, view.adopted) if view.holding is not None else None
    if not view.known:
        return _failed(view, None, view.error)
    if view.holds(record):
        return OutputResult(view.key, "in-sync", token_id=record.token_id)
    assert view.backend is not None
    mine = output_record(record, view, target.name)
    hook("before")
    try:
        text = render_value(view.target, mine, view.found, steps.jfrog.url)
        metadata = rotation_metadata(mine, reason=reason, now=steps.clock())
        version = view.backend.write(view.output.path, text, expected_version=view.version, metadata=metadata,
                                     rotation_id=rotation_id)
    except MetadataNotWritten as exc:
        warnings.append(f"{view.key}: {exc}; the next run repairs the metadata")
        version = exc.version
    except (CASConflict, WriteOutcomeUnknown) as exc:
        return _settle_unclear_write(steps, view, record, mine, exc, previous)
    except (BackendError, ShapeError) as exc:
        return _failed(view, before, exc)
    view._now_holds(mine, version, previous)
    hook("after")
    return OutputResult(view.key, state, token_id=record.token_id)


def _settle_unclear_write(steps: RotationSteps, view: OutputView, record: SecretRecord, mine: SecretRecord,
                          exc: BackendError, previous: tuple[SecretRecord, bool] | None) -> OutputResult:
    """Another writer got there first, or the write may have landed: read the output again."""
    assert view.backend is not None
    before = previous[0].token_id if previous is not None else None
    try:
        again = read_stored(view.target, view.backend, view.backend.read(view.output.path), steps.jfrog)
    except (BackendError, RotationError) as reread:
        if isinstance(exc, WriteOutcomeUnknown):
            view.held |= {record.token_id}  # it may hold either token now
        return _failed(view, before, f"{exc}; reading it again failed: {reread}")
    _take(view, again)
    if view.holds(record):
        view._now_holds(mine, again.version, previous)
        return OutputResult(view.key, "rotated" if isinstance(exc, WriteOutcomeUnknown) else "in-sync",
                            token_id=record.token_id)
    why = "it changed after it was read" if isinstance(exc, CASConflict) else str(exc)
    return _failed(view, view.holding.token_id if view.holding else None, f"not written: {why}")


def sync(steps: RotationSteps, target: Target, current: Current, views: Sequence[OutputView], *, reason: str,
         rotation_id: str, warnings: list[str], hook: OutputHook = _no_hook) -> list[OutputResult]:
    """Write the primary's token to each output that does not hold it (what an earlier rotation
    could not finish). Returns one result per output; the caller settles the bookkeeping."""
    record = current.record
    if record is None:
        return []
    results = []
    for view in views:
        if view.known and not view.holds(record) and _ahead(view, record) and _primary_moved(steps, target, current):
            generation = view.holding.generation if view.holding else "?"
            results.append(_failed(view, view.holding.token_id if view.holding else None,
                                   f"holds generation {generation}, newer than the primary's {record.generation}: "
                                   "another rotation is writing the outputs; left to it"))
            continue
        results.append(write_output(steps, target, view, record, state="synced", reason=reason,
                                    rotation_id=f"sync-{rotation_id}", warnings=warnings, hook=hook))
    return results


def _ahead(view: OutputView, record: SecretRecord) -> bool:
    held = view.holding
    return held is not None and not view.adopted and held.generation >= record.generation


def _primary_moved(steps: RotationSteps, target: Target, current: Current) -> bool:
    """Did the primary change since it was read? (Unknown counts as moved: do not write.)"""
    try:
        return current.backend.read(target.path).version != current.version
    except BackendError:
        return True


def settle(steps: RotationSteps, target: Target, current: Current, record: SecretRecord, version: Any,
           views: Sequence[OutputView], results: Sequence[OutputResult], *, overlap: int, persistency_threshold: int,
           rotation_id: str) -> tuple[SecretRecord, Any] | None:
    """Bring the primary's bookkeeping in line with what the outputs hold now: which are still
    pending, and the overlap of every token an output just moved off, counted from now (a token
    adopted at an output is retired too). One compare-and-set write of the primary (its record, or
    the metadata beside a document), none when nothing changed. Returns the record and version the
    primary holds then; ``None`` when the write failed (the pending list stays as it was, which only
    makes the next run look again)."""
    now = steps.clock()
    until = now + timedelta(seconds=overlap)
    retired = list(record.retired)
    index = {entry.token_id: i for i, entry in enumerate(retired)}
    pending = []
    for view, result in zip(views, results):
        if not result.done:
            pending.append(view.output.id)
    for view in views:
        if view.moved_from is None or not view.holds(record):
            continue
        held, adopted = view.moved_from
        view.moved_from = None
        if held.token_id == record.token_id:
            continue
        if held.token_id in index:
            if retired[index[held.token_id]].revoke_after < until:
                retired[index[held.token_id]] = replace(retired[index[held.token_id]], revoke_after=until)
        elif adopted and is_stored_by_access(held, persistency_threshold):
            index[held.token_id] = len(retired)
            retired.append(RetiredToken(held.token_id, until, held.expires_at))
    settled = replace(record, outputs=tuple(output.id for output in target.outputs), outputs_pending=tuple(pending),
                      retired=tuple(retired))
    if settled == record:
        return record, version
    # The failure a run recorded for its outputs is over once none is pending.
    cleared = {"last_error": None, "last_error_at": None} if record.outputs_pending and not pending else {}
    try:
        return settled, write_bookkeeping(target, current, settled, version, rotation_id=rotation_id,
                                          metadata=cleared)
    except MetadataNotWritten as exc:
        return settled, exc.version
    except BackendError as exc:
        log.warning("%s: the outputs were written, but the primary's bookkeeping was not (%s); the next run "
                    "looks at the outputs again", target.name, exc, extra={"target": target.name})
        return None


def write_bookkeeping(target: Target, current: Current, record: SecretRecord, version: Any, *,
                      rotation_id: str, metadata: Mapping[str, str | None] | None = None) -> Any:
    """Rewrite the primary's bookkeeping: the record itself (compare-and-set on ``version``), or for
    a document the metadata beside it (the value does not change). Returns the new version."""
    backend = current.backend
    merged = {**record.metadata(), **(metadata or {})}
    if keeps_record(target, current.found):
        return backend.write(target.path, record.dumps(), expected_version=version, metadata=merged,
                             rotation_id=rotation_id)
    backend.patch_metadata(target.path, merged)
    return version
