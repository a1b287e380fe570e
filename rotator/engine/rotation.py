"""One rotation and one sweep, as the CLI and the daemon run them: the steps chained top to bottom.

    READ    the current record and its version (metadata that disagrees with it is repaired)
    MINT    a new token (recreate: admin mints; refresh: refresh grant; self: the token mints its successor)
    VERIFY  GET /tokens/me with the new token (briefly retried); then the retired tokens already
            due are revoked, so the record written leaves them out
    STORE   compare-and-set write of the new record, which lists the previous token in ``retired``:
            the one write of the rotation (one version of the secret)
    RETIRE  overlap 0: revoke the previous token right away; the metadata says it is done, and the
            next rotation's write drops it from the record

Invariants (docs/architecture.md): the store always holds a token that works; a token we minted
is stored, listed in ``retired`` or revoked; a crash at any step converges on the next rotate +
sweep; no secret in a message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backends.base import LocalStore
from rotator.core.tags import fleet_filter, tag_after_untagged, tag_target
from rotator.core.target import Target
from rotator.engine.records import PERSISTENCY_THRESHOLD, Overlap
from rotator.engine.results import RotationError, RotationResult, RotationStep, StepHook, SweepResult
from rotator.engine.steps import RotationSteps
from rotator.jfrog.errors import JFrogError

log = logging.getLogger("rotator.engine")


class Engine(RotationSteps):
    """Rotates and sweeps targets. ``jfrog`` is the client for the platform; its own credential
    (if any) is the admin credential used for ``recreate``; token-authenticated calls pass the
    token per request, so one kept-alive session serves everything. ``persistency_threshold`` is
    the platform's (``jfrog.persistency_threshold``): a replaced token shorter than it cannot be
    revoked, so it is not listed in ``retired``."""

    def __init__(self, *, step_hook: StepHook | None = None, persistency_threshold: int = PERSISTENCY_THRESHOLD,
                 **steps: Any) -> None:
        super().__init__(**steps)
        self.step_hook = step_hook
        self.persistency_threshold = persistency_threshold

    def rotate(self, target: Target, *, reason: str = "manual", dry_run: bool = False,
               rotation_id: str | None = None, only_if_version: Any = None) -> RotationResult:
        """Run one rotation of ``target``; never raises for remote failures (see ``outcome``).

        ``only_if_version``: rotate only if the store still holds that version (a request seen at
        version v is served once, however many daemons saw it); otherwise the outcome is
        ``skipped`` and nothing is minted.
        """
        rid = rotation_id or str(uuid.uuid4())
        result = RotationResult(target=target.name, rotation_id=rid, outcome="failed", reason=reason)
        started = time.monotonic()
        try:
            self._rotate(target, result, dry_run, only_if_version)
        except RotationError as exc:
            result.error, result.step = str(exc), exc.step.value
            if exc.step is not RotationStep.READ:  # an unreadable value is not ours to touch
                self.record_failure(target, str(exc))
        finally:
            result.duration = time.monotonic() - started
        log.info("rotation %s", result.outcome, extra={"target": target.name, "rotation_id": rid,
                                                       "reason": reason, "duration": round(result.duration, 3),
                                                       "step": result.step, "token_id": result.token_id})
        return result

    def _rotate(self, target: Target, result: RotationResult, dry_run: bool, only_if_version: Any) -> None:
        rid = result.rotation_id

        self._hook(RotationStep.READ, "before", rid)
        current = self.read(target)
        if current.repaired:
            result.warnings.append(current.repaired)
        result.previous_token_id = current.record.token_id if current.record else None
        self._hook(RotationStep.READ, "after", rid)
        if only_if_version is not None and current.version != only_if_version:
            result.outcome = "skipped"  # someone rotated it since the request was seen
            return

        if dry_run:
            result.outcome = "dry-run"
            result.strategy = self.planned_strategy(target, current.record)
            return

        self._hook(RotationStep.MINT, "before", rid)
        minted = self.mint(target, current.record, rid)
        result.strategy, result.token_id = minted.strategy, minted.token.token_id
        self._hook(RotationStep.MINT, "after", rid)

        try:
            self._hook(RotationStep.VERIFY, "before", rid)
            self.verify(target, minted.token)
            self._hook(RotationStep.VERIFY, "after", rid)
            # Retired tokens already due go now, so the record written leaves them out: one write
            # per rotation. A revocation that fails keeps its entry (a sweep retries it).
            previous = self.pending_retired(current)
            if previous is not None:
                result.revoked, done = self.revoke_due(target, previous, [])
                previous = previous.without_retired(done)
            record = self.build_record(target, previous, minted, Overlap(target.overlap, self.persistency_threshold))
        except BaseException:
            self.discard(target, minted.token, "it failed verification")
            raise

        self._hook(RotationStep.STORE, "before", rid)
        version = self.store(target, current, record, minted, reason=result.reason, rotation_id=rid,
                             warnings=result.warnings)
        if version is None:
            result.outcome = "lost-race"  # our token is already revoked
            return
        result.outcome, result.generation, result.expires_at = "rotated", record.generation, record.expires_at
        self._hook(RotationStep.STORE, "after", rid)

        self._hook(RotationStep.RETIRE, "before", rid)
        carried = {r.token_id for r in previous.retired} if previous is not None else set()
        revoked, done = self.revoke_due(target, record.without_retired(carried), [])  # overlap 0: the one replaced
        if done:
            self.drop_retired(target, current, record, version, done)
        result.revoked += revoked
        self._hook(RotationStep.RETIRE, "after", rid)

    def sweep(self, target: Target, *, listed: Sequence[Mapping[str, Any]] | None = None) -> SweepResult:
        """Revoke retired tokens that are due, and live tokens tagged for this target that the
        store does not know (orphans of a crash), once they are older than ``orphan_grace``.
        ``listed``: the target's tokens from the list of :meth:`sweep_all`."""
        result = SweepResult(target.name)
        try:
            current = self.read(target)
        except RotationError as exc:
            result.errors.append(str(exc))
            return result
        result.repaired = current.repaired
        record = self.pending_retired(current)
        if record is not None:
            revoked, done = self.revoke_due(target, record, result.errors)
            if done:
                self.drop_retired(target, current, record, current.version, done)
            result.retired_revoked = revoked
        result.orphans_revoked = self.sweep_orphans(target, current.record, result.errors, listed=listed)
        return result

    def sweep_all(self, targets: Sequence[Target], *, read_all: bool = False, parallel: int = 1,
                  stopping: Callable[[], bool] = lambda: False) -> list[SweepResult]:
        """Sweep many targets with one list call: ``GET /access/api/v1/tokens?description=jfrog-rotator:*``
        (https://jfrog.com/help/r/jfrog-rest-apis/get-tokens), grouped by target. Results come in
        the order of ``targets``.

        A target's store is read only when the list shows work for it (:meth:`needs_read`), or
        when it is a local store (cheap to read), or with ``read_all``; ``parallel`` stores are
        read at a time. Without an admin credential each target's own token lists its own
        tokens: one sweep per target, as :meth:`sweep`. ``stopping`` is asked before each target
        (a daemon shutting down): the targets left are not swept and have no result."""
        if self.admin is None:
            return self._each(targets, parallel, stopping, lambda t: self.sweep(t))
        try:
            tokens = self.jfrog.list_tokens(description=fleet_filter(), token=self.admin.token())
        except JFrogError as exc:
            return [SweepResult(t.name, errors=[f"{t.name}: list tokens: {exc}"]) for t in targets]
        by_target: dict[str, list[Mapping[str, Any]]] = {}
        for token in tokens:
            name = tag_target(token.get("description"))
            if name is not None:
                by_target.setdefault(name, []).append(token)

        def one(target: Target) -> SweepResult:
            listed = by_target.get(target.name, [])
            local = isinstance(self.backends.get(target.backend), LocalStore)
            if read_all or local or self.needs_read(target, listed):
                return self.sweep(target, listed=listed)
            return SweepResult(target.name)

        return self._each(targets, parallel, stopping, one)

    @staticmethod
    def _each(targets: Sequence[Target], parallel: int, stopping: Callable[[], bool],
              sweep: Callable[[Target], SweepResult]) -> list[SweepResult]:
        if parallel <= 1:
            results = []
            for target in targets:
                if stopping():
                    break
                results.append(sweep(target))
            return results
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            swept = pool.map(lambda t: None if stopping() else sweep(t), targets)
            return [r for r in swept if r is not None]

    def needs_read(self, target: Target, listed: Sequence[Mapping[str, Any]]) -> bool:
        """Whether the tokens JFrog lists for ``target`` may hold work for a sweep.

        A stored token minted by the rotator is tagged, so JFrog lists it: a second live token
        tagged for the target is a retired one or an orphan, and only the store tells which (and
        whether it is due). One token is the stored one, unless the target's tokens live shorter
        than the persistency threshold (JFrog lists none of them: the one listed is then not the
        stored token), or its tag says the token it replaced is not tagged (adopted: only the
        store lists it). No token: nothing JFrog could revoke.
        """
        if len(listed) != 1:
            return len(listed) > 1
        if tag_after_untagged(listed[0].get("description")):
            return True
        expiry = target.token.expiry
        return bool(expiry) and 0 < self.persistency_threshold and expiry < self.persistency_threshold

    def _hook(self, step: RotationStep, when: str, rid: str) -> None:
        if self.step_hook is not None:
            self.step_hook(step, when, rid)
