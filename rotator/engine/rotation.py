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
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import rotator.engine.outputs as outputs
from backends.base import BackendError, LocalStore, RotationClaims, Unsupported
from rotator.core.record import SecretRecord
from rotator.core.redact import scrub
from rotator.core.tags import fleet_filter, tag_after_untagged, tag_target
from rotator.core.target import Target
from rotator.engine.current import Current
from rotator.engine.records import PERSISTENCY_THRESHOLD, Overlap
from rotator.engine.results import (
    OutputResult,
    RefreshFailed,
    RotationError,
    RotationResult,
    RotationStep,
    StepHook,
    SweepResult,
    VerifyUnavailable,
)
from rotator.engine.steps import RotationSteps
from rotator.jfrog.errors import JFrogError, with_call

log = logging.getLogger("rotator.engine")

#: Called as ``before_mint(target, current, rotation_id)`` right before MINT, after READ decided a
#: token is needed: ``None`` to go on, or why this rotation must mint nothing (the outcome is then
#: ``skipped``, with the reason as a warning). It may raise :class:`RotationError` (a failure). The
#: daemon's replicas use it to check their lease and claim the target (docs/daemon.md).
BeforeMint = Callable[[Target, Current, str], "str | None"]

#: Called as ``fence()`` before a fan-out target's outputs are written from what READ found (a
#: sync): ``None`` to go on, or why this process must write nothing now (a replica that lost the
#: lease while paused would otherwise copy a token read before the pause). May raise
#: :class:`BackendError`. The daemon's replicas pass their lease check (docs/daemon.md).
Fence = Callable[[], "str | None"]


#: How long a refresh claim taken without ``daemon.leader`` (the CLI, a daemon alone) keeps others
#: off a target when its holder dies before storing: longer than one rotation takes.
REFRESH_CLAIM_TTL = 60.0


class Engine(RotationSteps):
    """Rotates and sweeps targets. ``jfrog`` is the client for the platform; its own credential
    (if any) is the admin credential used for ``recreate``; token-authenticated calls pass the
    token per request, so one kept-alive session serves everything. ``persistency_threshold`` is
    the platform's (``jfrog.persistency_threshold``): a replaced token shorter than it cannot be
    revoked, so it is not listed in ``retired``. ``before_mint``: see :data:`BeforeMint`; ``fence``:
    see :data:`Fence`."""

    def __init__(self, *, step_hook: StepHook | None = None, persistency_threshold: int = PERSISTENCY_THRESHOLD,
                 before_mint: BeforeMint | None = None, fence: Fence | None = None,
                 after_rotation: Callable[[str, bool], None] | None = None, **steps: Any) -> None:
        super().__init__(**steps)
        self.step_hook = step_hook
        self.persistency_threshold = persistency_threshold
        self.fence = fence
        # Without a before_mint of the caller's (the CLI, a daemon without daemon.leader) a refresh
        # still runs only under a claim: this engine's own pair of hooks takes and gives it back.
        self.before_mint: BeforeMint = before_mint or self._claim_refresh
        #: (rotation id, stored): called when a rotation that got past before_mint ends.
        self.after_rotation = after_rotation if before_mint is not None else self._settle_refresh_claim
        self._claimed: dict[str, tuple[str, RotationClaims, str, Any, str]] = {}  # rid -> (target, store, path, version, holder)

    def _fenced(self, target: Target) -> str | None:
        """Why this process must write no output now (see :data:`Fence`), or ``None``."""
        if self.fence is None:
            return None
        try:
            return self.fence()
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.OUTPUTS, f"cannot check the leader lease: {exc}") from None

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
            try:
                self._rotate(target, result, dry_run, only_if_version)
            except RotationError as exc:
                dead = self._dead_after_refresh(target, result, exc)
                if dead is None:
                    raise
                if not self.may_recreate(target):
                    raise RotationError(target.name, exc.step, f"{exc.detail}; {dead}: store a new token (rotate "
                                        "once with an admin credential and fallback_to_recreate, or by hand)") from None
                log.warning("%s: %s; %s: recreating it", target.name, exc, dead, extra={"target": target.name})
                result.warnings.append(f"{exc}; {dead}: recreated it (fallback_to_recreate)")
                result.outcome, result.strategy, result.token_id = "failed", None, None
                try:
                    self._rotate(target, result, dry_run, only_if_version, recreate=True)
                except RotationError as again:
                    raise RotationError(target.name, again.step, f"{again.detail}; before that, {dead}") from None
                if result.outcome != "rotated":
                    raise RotationError(target.name, exc.step, f"{exc.detail}; {dead}, and recreating it did not "
                                        f"happen ({result.outcome})") from None
        except RotationError as exc:
            result.error, result.step, result.bad_input = str(exc), exc.step.value, exc.bad_input
            if exc.step is not RotationStep.READ:  # an unreadable value is not ours to touch
                self.record_failure(target, str(exc))
        finally:
            result.duration = time.monotonic() - started
        log.info("rotation %s", result.outcome, extra={"target": target.name, "rotation_id": rid,
                                                       "reason": reason, "duration": round(result.duration, 3),
                                                       "step": result.step, "token_id": result.token_id})
        return result

    def _dead_after_refresh(self, target: Target, result: RotationResult, exc: RotationError) -> str | None:
        """After a refresh that failed, or whose new token failed VERIFY: JFrog may have acted on it,
        and then the stored token is dead (refresh tokens are single-use, the old token dies at once;
        https://jfrog.com/help/r/jfrog-rest-apis/refresh-token). Says so when ``GET /tokens/me``
        refuses the stored token; ``None`` when it works, or nothing can tell."""
        if not (isinstance(exc, RefreshFailed) or (exc.step is RotationStep.VERIFY and result.strategy == "refresh")):
            return None
        try:
            record = self.read(target).record
        except RotationError:
            return None
        if record is None or self.stored_token_works(record) is not False:
            return None
        return (f"the stored token {record.token_id} no longer works (JFrog acted on the refresh, but its answer "
                "was lost or unusable)")

    def _rotate(self, target: Target, result: RotationResult, dry_run: bool, only_if_version: Any, *,
                recreate: bool = False) -> None:
        rid = result.rotation_id

        self._hook(RotationStep.READ, "before", rid)
        current = self.read(target)
        if current.repaired:
            result.warnings.append(current.repaired)
        result.previous_token_id = current.record.token_id if current.record else None
        if only_if_version is not None and current.version != only_if_version:
            self._hook(RotationStep.READ, "after", rid)
            result.outcome = "skipped"  # someone rotated it since the request was seen
            return
        views = outputs.read_outputs(self, target)
        self._hook(RotationStep.READ, "after", rid)

        if dry_run:
            result.outcome = "dry-run"
            result.strategy = self.planned_strategy(target, current.record)
            if views:
                holds = current.record.token_id if current.record else None
                result.outputs = [OutputResult(target.primary.key, "in-sync" if holds else "behind", primary=True,
                                               token_id=holds), *outputs.report(views, current.record)]
            return
        if views and current.record is not None:  # finish what an earlier rotation left, before anything else
            refused = self._fenced(target)
            if refused:
                result.outcome = "skipped"  # nothing written: this replica does not lead any more
                result.warnings.append(refused)
                return
            current = self._sync(target, current, views, result)

        policy = Overlap(target.overlap, self.persistency_threshold)
        self.check_room(target, current.record, current.found, policy, reason=result.reason)
        self._hook(RotationStep.MINT, "before", rid)
        refused = self.before_mint(target, current, rid)
        if refused:
            result.outcome = "skipped"  # nothing minted: another replica leads, or claimed it
            result.warnings.append(refused)
            return
        try:
            self._mint_and_store(target, current, views, policy, result, recreate=recreate)
        finally:
            if self.after_rotation is not None:  # the before_mint's claim, given back when not stored
                self.after_rotation(rid, result.outcome == "rotated")

    def _mint_and_store(self, target: Target, current: Current, views: list[outputs.OutputView], policy: Overlap,
                        result: RotationResult, *, recreate: bool = False) -> None:
        rid = result.rotation_id
        minted = self.mint(target, current.record, rid, recreate=recreate)
        result.strategy, result.token_id = minted.strategy, minted.token.token_id
        self._hook(RotationStep.MINT, "after", rid)

        try:
            self._hook(RotationStep.VERIFY, "before", rid)
            try:
                self.verify(target, minted.token)
            except VerifyUnavailable as exc:
                if minted.strategy != "refresh":
                    raise
                # JFrog answered the refresh with a token, so the previous one is dead already:
                # revoking the new one for want of an answer would leave the store nothing that works.
                result.warnings.append(f"{exc}; stored the refreshed token unverified (the refresh already ended "
                                       "the previous token)")
                log.warning("%s", result.warnings[-1], extra={"target": target.name})
            self._hook(RotationStep.VERIFY, "after", rid)
            # Retired tokens already due go now, so the record written leaves them out: one write
            # per rotation. A revocation that fails keeps its entry (a sweep retries it); a token
            # that an output of a fan-out target still holds is kept (nothing at all when unknown).
            previous = self.pending_retired(current)
            held = outputs.held_tokens(views) if views else set()
            if previous is not None and held is not None:
                result.revoked, done = self.revoke_due(target, previous, [], keep=held)
                previous = previous.without_retired(done)
            record = self.build_record(target, previous, minted, policy)
            if views:
                record = outputs.with_outputs(target, record, views, overlap=target.overlap,
                                              persistency_threshold=self.persistency_threshold, now=self.clock())
        except BaseException:
            self.discard(target, minted.token, "it failed verification")
            raise

        self._hook(RotationStep.STORE, "before", rid)
        version = self.store(target, current, record, minted, reason=result.reason, rotation_id=rid,
                             warnings=result.warnings)
        if version is None:
            result.outcome = "lost-race"  # our token is already revoked; the winner writes the outputs
            result.outputs = [OutputResult(v.key, "untouched", token_id=v.holding.token_id if v.holding else None)
                              for v in views]
            return
        result.outcome, result.generation, result.expires_at = "rotated", record.generation, record.expires_at
        self._hook(RotationStep.STORE, "after", rid)

        keep: set[str] | None = set()
        if views:
            settled = self._write_outputs(target, current, record, version, views, result)
            if settled is None:  # the primary moved on, or its bookkeeping could not be written
                keep = None
                result.warnings.append("the primary's list of pending outputs was not updated; nothing revoked "
                                       "in this run (the next run looks at the outputs again)")
            else:
                record, version = settled
                keep = outputs.held_tokens(views)
                if keep is None:
                    result.warnings.append(f"nothing revoked: what {outputs.unknown_outputs(views)} holds is "
                                           "unknown")

        self._hook(RotationStep.RETIRE, "before", rid)
        if keep is not None:  # overlap 0: the token just replaced (the ones carried over were handled above)
            carried = {r.token_id for r in previous.retired} if previous is not None else set()
            revoked, done = self.revoke_due(target, record.without_retired(carried), [], keep=keep)
            if done:
                self.drop_retired(target, current, record, version, done)
            result.revoked += revoked
        self._hook(RotationStep.RETIRE, "after", rid)
        if any(not o.done for o in result.outputs):
            self._outputs_failed(target, result)

    # -- the claim of a refresh (docs/architecture.md, Invariants 6) --------------------------------
    def _claim_refresh(self, target: Target, current: Current, rid: str) -> str | None:
        """The default ``before_mint``. JFrog refresh tokens are single-use: of several processes
        refreshing one target from one version, the one that claims it refreshes, the others mint
        nothing (``None``: go on). A store that cannot hold a claim (a KV v1 mount) refreshes
        unclaimed, as its compare-and-set is weaker too. A claim given back by a failed rotation
        (:meth:`_settle_refresh_claim`) or left by a process that died ends after
        :data:`REFRESH_CLAIM_TTL`."""
        if self.planned_strategy(target, current.record) != "refresh":
            return None
        backend = current.backend
        if not isinstance(backend, RotationClaims):
            return None
        holder = f"{socket.gethostname()}:{os.getpid()}:{rid}"
        try:
            who = backend.claim_rotation(target.path, current.version, holder=holder, rotation_id=rid,
                                         ttl=REFRESH_CLAIM_TTL)
        except Unsupported:
            return None
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.MINT,
                                f"cannot claim the refresh (a refresh runs only under a rotation claim): {exc}") from None
        if who != holder and self._left_here(who):  # its process is gone: give its claim back, claim again
            log.info("%s: the refresh claim of %s, a process of this host that is gone, is taken over", target.name,
                     who, extra={"target": target.name, "rotation_id": rid})
            try:
                backend.release_rotation(target.path, current.version, holder=who)
                who = backend.claim_rotation(target.path, current.version, holder=holder, rotation_id=rid,
                                             ttl=REFRESH_CLAIM_TTL)
            except BackendError as exc:
                raise RotationError(target.name, RotationStep.MINT, f"cannot claim the refresh: {exc}") from None
        if who != holder:
            log.info("%s: another rotation (%s) claimed this refresh; nothing minted", target.name, who,
                     extra={"target": target.name, "rotation_id": rid, "outcome": "skipped"})
            return f"another rotation ({who}) claimed this refresh; nothing minted"
        self._claimed[rid] = (target.name, backend, target.path, current.version, holder)
        return None

    def _left_here(self, holder: str) -> bool:
        """Whether a claim's holder (``host:pid:rotation id``, as :meth:`_claim_refresh` names it) is a
        process of this host that has exited, or this process for a rotation no longer in flight:
        a CLI run whose STORE failed with the store down could not give its claim back, and a rerun
        must not wait out the claim's TTL with a dead token stored. Anything else counts as alive."""
        host, _, rest = holder.partition(":")
        pid, _, rid = rest.partition(":")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        if int(pid) == os.getpid():
            return rid not in self._claimed
        try:
            os.kill(int(pid), 0)  # signal 0: asks whether the process exists, sends nothing
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def _settle_refresh_claim(self, rid: str, stored: bool) -> None:
        """The default ``after_rotation``: a rotation that claimed and did not store gives its claim
        back, so a rerun goes at once."""
        claim = self._claimed.pop(rid, None)
        if claim is None or stored:
            return
        name, backend, path, version, holder = claim
        try:
            backend.release_rotation(path, version, holder=holder)
        except BackendError as exc:  # the claim ends by itself after its ttl
            log.warning("%s: could not give back the rotation claim: %s", name, exc)

    # -- fan-out (rotator/engine/outputs.py) ------------------------------------------------------
    def _output_hook(self, rid: str) -> outputs.OutputHook:
        return lambda when: self._hook(RotationStep.OUTPUTS, when, rid)

    def _sync(self, target: Target, current: Current, views: list[outputs.OutputView], result: Any, *,
              report_all: bool = False) -> Current:
        """Sync the outputs that do not hold the primary's token and settle its bookkeeping; the
        primary read again when that changed it."""
        assert current.record is not None
        rid = result.rotation_id
        synced = outputs.sync(self, target, current, views, reason=result.reason, rotation_id=rid,
                              warnings=result.warnings, hook=self._output_hook(rid))
        if report_all or any(o.state != "in-sync" for o in synced):  # what the sync did (if anything)
            result.outputs = [OutputResult(target.primary.key, "in-sync", primary=True,
                                           token_id=current.record.token_id), *synced]
        settled = outputs.settle(self, target, current, current.record, current.version, views, synced,
                                 overlap=target.overlap, persistency_threshold=self.persistency_threshold,
                                 rotation_id=f"outputs-sync-{rid}")
        if settled is not None and settled[1] == current.version and settled[0] == current.record:
            return current
        return self.read(target)

    def _write_outputs(self, target: Target, current: Current, record: SecretRecord, version: Any,
                       views: list[outputs.OutputView], result: Any) -> tuple[SecretRecord, Any] | None:
        """The outputs besides the primary, after it: each gets the new token (or keeps the one it
        had and is reported); then the primary's bookkeeping says which are still pending."""
        rid = result.rotation_id
        written = [outputs.write_output(self, target, view, record, state="rotated", reason=result.reason,
                                        rotation_id=rid, warnings=result.warnings, hook=self._output_hook(rid))
                   for view in views]
        result.outputs = [OutputResult(target.primary.key, "rotated", primary=True, token_id=record.token_id),
                          *written]
        # The bookkeeping write goes to the primary as STORE left it (the value our record, or the document).
        stored = replace(current, record=record)
        return outputs.settle(self, target, stored, record, version, views, written, overlap=target.overlap,
                              persistency_threshold=self.persistency_threshold, rotation_id=f"outputs-{rid}")

    def _outputs_failed(self, target: Target, result: Any) -> None:
        """Not every output holds the new token: the run failed (the next one syncs them)."""
        failed = [o for o in result.outputs if not o.done]
        result.outcome, result.step = "failed", RotationStep.OUTPUTS.value
        result.error = scrub(
            f"{target.name}: outputs: {len(failed)} of {len(result.outputs)} outputs do not hold the new token "
            f"(each keeps a working token; the next run writes them): "
            + "; ".join(f"{o.output}: {o.error or o.state}" for o in failed))
        self.record_failure(target, result.error)

    def sync_outputs(self, target: Target, *, reason: str = "sync", rotation_id: str | None = None) -> RotationResult:
        """Only finish an earlier rotation: write the primary's token to the outputs that do not hold
        it, mint nothing (the daemon's job when a target is not due but an output is behind)."""
        rid = rotation_id or str(uuid.uuid4())
        result = RotationResult(target=target.name, rotation_id=rid, outcome="failed", reason=reason)
        started = time.monotonic()
        try:
            current = self.read(target)
            if current.repaired:
                result.warnings.append(current.repaired)
            views = outputs.read_outputs(self, target)
            refused = self._fenced(target) if current.record is not None else None
            if current.record is None:
                result.outcome = "skipped"  # no token yet: the first rotation writes every output
            elif refused:
                result.outcome = "skipped"  # nothing written: this replica does not lead any more
                result.warnings.append(refused)
            else:
                self._sync(target, current, views, result, report_all=True)
                result.token_id, result.generation = current.record.token_id, current.record.generation
                result.outcome = "synced"
                if any(not o.done for o in result.outputs):
                    self._outputs_failed(target, result)
                else:  # what status reads: a store that READ takes no metadata from (AWS) may still list some
                    self.write_metadata(target, current.backend, {"outputs": ",".join(o.id for o in target.outputs),
                                                                  "outputs_pending": None}, result.warnings)
        except RotationError as exc:
            result.error, result.step = str(exc), exc.step.value
        finally:
            result.duration = time.monotonic() - started
        log.info("sync %s", result.outcome, extra={"target": target.name, "rotation_id": rid, "reason": reason,
                                                   "duration": round(result.duration, 3), "step": result.step})
        return result

    def sweep(self, target: Target, *, listed: Sequence[Mapping[str, Any]] | None = None) -> SweepResult:
        """Revoke retired tokens that are due, and live tokens tagged for this target that the
        store does not know (orphans of a crash), once they are older than ``orphan_grace``.
        ``listed``: the target's tokens from the list of :meth:`sweep_all`."""
        result = SweepResult(target.name)
        try:
            current = self.read(target)
        except RotationError as exc:
            result.errors.append(str(exc))
            result.bad_input = exc.bad_input
            return result
        result.repaired = current.repaired
        keep: set[str] | None = set()
        if target.outputs:  # sync the outputs first; never revoke what one of them holds
            views = outputs.read_outputs(self, target)
            if current.record is not None:
                sync = RotationResult(target=target.name, rotation_id=str(uuid.uuid4()), outcome="synced",
                                      reason="sweep")
                try:
                    refused = self._fenced(target)
                    if refused:  # a sweep that may not write the outputs revokes nothing either
                        log.info("%s: sweep skipped: %s", target.name, refused, extra={"target": target.name})
                        return result
                    current = self._sync(target, current, views, sync)
                except RotationError as exc:
                    result.errors.append(str(exc))
                    return result
                result.outputs = sync.outputs
                result.errors += [f"{target.name}: output {o.output}: {o.error}" for o in sync.outputs if not o.done]
            keep = outputs.held_tokens(views)
            if keep is None:
                result.errors.append(f"{target.name}: nothing revoked: what {outputs.unknown_outputs(views)} "
                                     "holds is unknown")
                return result
        record = self.pending_retired(current)
        if record is not None:
            revoked, done = self.revoke_due(target, record, result.errors, keep=keep)
            if done:
                self.drop_retired(target, current, record, current.version, done)
            result.retired_revoked = revoked
        result.orphans_revoked = self.sweep_orphans(target, current.record, result.errors, also_known=keep or (),
                                                    listed=listed)
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
            return [SweepResult(t.name, errors=[f"{t.name}: list tokens: {with_call(exc)}"]) for t in targets]
        by_target: dict[str, list[Mapping[str, Any]]] = {}
        for token in tokens:
            name = tag_target(token.get("description"))
            if name is not None:
                by_target.setdefault(name, []).append(token)

        def one(target: Target) -> SweepResult:
            listed = by_target.get(target.name, [])
            local = isinstance(self.backends.get(target.backend), LocalStore)
            if read_all or local or target.outputs or self.needs_read(target, listed):  # outputs: sync them
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
        store lists it). No token: nothing JFrog could revoke. Several tokens, all younger than
        the target's overlap and orphan grace (a sweep right after ``rotate --all``): nothing can
        be due yet, as a retired token was retired after it was issued and is due ``overlap``
        after that, and an orphan is revoked only once older than ``orphan_grace``.
        """
        if len(listed) != 1:
            return len(listed) > 1 and self._may_be_due(target, listed)
        if tag_after_untagged(listed[0].get("description")):
            return True
        expiry = target.token.expiry
        return bool(expiry) and 0 < self.persistency_threshold and expiry < self.persistency_threshold

    def _may_be_due(self, target: Target, listed: Sequence[Mapping[str, Any]]) -> bool:
        youngest_due = self.clock().timestamp() - min(target.overlap, target.orphan_grace)
        return any(not isinstance(t.get("issued_at"), (int, float)) or t["issued_at"] <= youngest_due for t in listed)

    def _hook(self, step: RotationStep, when: str, rid: str) -> None:
        if self.step_hook is not None:
            self.step_hook(step, when, rid)
