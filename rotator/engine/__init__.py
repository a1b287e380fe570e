"""One rotation, as an explicit state machine shared by every front door (CLI, daemon, Lambda).

Steps (DESIGN.md "One rotation")::

    READ    the current record and its version
    MINT    a new token (recreate: admin mints; refresh: refresh grant; self: the token mints its successor)
    VERIFY  GET /tokens/me with the new token (briefly retried)
    STORE   compare-and-set write of the new record, which lists the previous token in ``retired``
    RETIRE  revoke retired tokens that are due (overlap 0: the previous one, right away)

Invariants: the store always holds a token that works; a token we minted is stored, listed in
``retired`` or revoked; a crash at any step converges on the next rotate + sweep; no secret in a
message. The engine does no I/O of its own: it calls the JFrog client and the backend it is given.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from backends.base import BackendError, CASConflict, SecretBackend, StoredValue, WriteOutcomeUnknown
from rotator.jfrog.client import AccessClient, TokenResponse
from rotator.jfrog.errors import JFrogError, JFrogHTTPError
from rotator.jfrog.jwt import InvalidTokenFormat, decode_claims
from rotator.core.record import RecordError, RetiredToken, SecretRecord, utc_iso
from rotator.core.redact import scrub
from rotator.core.tags import TAG_PREFIX, description_tag, tag_target
from rotator.core.token_spec import SpecError, TokenSpec

log = logging.getLogger(__name__)

class RotationStep(str, Enum):
    READ = "read"
    MINT = "mint"
    VERIFY = "verify"
    STORE = "store"
    RETIRE = "retire"


#: Called as ``hook(step, "before" | "after", rotation_id)``; tests and the crash suite use it to
#: stop or kill the process at a chosen point. Exceptions it raises abort the rotation there.
StepHook = Callable[[RotationStep, str, str], None]


@dataclass(frozen=True)
class TargetPolicy:
    """What the engine needs to know about a target (the config's Target extends it)."""

    name: str
    backend: str
    path: str
    token: TokenSpec
    strategy: str = "recreate"
    overlap: int = 3600
    fallback_to_recreate: bool = True
    orphan_grace: int = 600


class RotationError(Exception):
    """A rotation failed at ``step``; the message says why (never a secret)."""

    def __init__(self, target: str, step: RotationStep, message: str) -> None:
        self.target = target
        self.step = step
        super().__init__(scrub(f"{target}: {step.value}: {message}"))


@dataclass
class RotationResult:
    target: str
    rotation_id: str
    outcome: str  # rotated | lost-race | skipped | dry-run | failed
    reason: str
    strategy: str = ""
    token_id: str | None = None
    previous_token_id: str | None = None
    generation: int | None = None
    expires_at: datetime | None = None
    revoked: list[str] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    step: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "outcome": self.outcome, "reason": self.reason, "rotation_id": self.rotation_id,
            "strategy": self.strategy, "token_id": self.token_id, "previous_token_id": self.previous_token_id,
            "generation": self.generation, "expires_at": utc_iso(self.expires_at) if self.expires_at else None,
            "revoked": self.revoked, "duration_seconds": round(self.duration, 3), "error": self.error,
            "failed_step": self.step,
        }


@dataclass
class SweepResult:
    target: str
    retired_revoked: list[str] = field(default_factory=list)
    orphans_revoked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "retired_revoked": self.retired_revoked,
                "orphans_revoked": self.orphans_revoked, "errors": self.errors}


def next_record(current: SecretRecord | None, minted: TokenResponse, *, target: str, url: str, now: datetime,
                retired: Iterable[RetiredToken]) -> SecretRecord:
    """The record that replaces ``current`` (``None``: the first one) once ``minted`` is stored.

    Times come from the token's own claims (``now`` when it has none); ``retired`` is the whole
    ``rotator.retired`` list of the new record: which previous tokens to list, and until when, is
    the caller's policy (the engine's overlap, the Lambda's ``REVOKE_PREVIOUS``). Keys a person
    added to ``current`` are kept. Raises :class:`InvalidTokenFormat` when the token is not a JWT.
    """
    claims = decode_claims(minted.access_token)
    issued = datetime.fromtimestamp(claims.issued_at, timezone.utc) if claims.issued_at else now
    if claims.expires_at:
        expires: datetime | None = datetime.fromtimestamp(claims.expires_at, timezone.utc)
    elif minted.expires_in:
        expires = issued + timedelta(seconds=minted.expires_in)
    else:
        expires = None
    return SecretRecord(
        access_token=minted.access_token,
        token_id=minted.token_id,
        token_type=minted.token_type or "Bearer",
        username=claims.username,
        scope=minted.scope or claims.scope,
        url=url,
        issued_at=issued,
        expires_at=expires,
        target=target,
        generation=(current.generation + 1) if current else 1,
        refresh_token=minted.refresh_token,
        reference_token=minted.reference_token,
        retired=tuple(retired),
        extra=dict(current.extra) if current else {},
        rotator_extra=dict(current.rotator_extra) if current else {},
    )


def discard_token(jfrog: AccessClient, minted: TokenResponse, *, credential: str | None, owner: str,
                  why: str) -> bool:
    """Revoke a token that was minted but will not be stored; a failure is logged (a sweep finds
    the token later by its tag). ``credential`` authenticates the call (None: the client's own)."""
    try:
        jfrog.revoke_token(minted.token_id, token=credential)
    except JFrogError as exc:
        log.warning("%s: could not revoke new token %s (%s); a sweep will retry", owner, minted.token_id, exc)
        return False
    log.info("%s: revoked new token %s because %s", owner, minted.token_id, why)
    return True


class Engine:
    """Rotates and sweeps targets. ``jfrog`` is the client for the platform; its own credential
    (if any) is the admin credential used for ``recreate``; token-authenticated calls pass the
    token per request, so one kept-alive session serves everything."""

    def __init__(
        self,
        *,
        jfrog: AccessClient,
        backends: Mapping[str, SecretBackend],
        has_admin: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        step_hook: StepHook | None = None,
        verify_attempts: int = 5,
        verify_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.jfrog = jfrog
        self.backends = backends
        self.has_admin = has_admin
        self.clock = clock
        self.step_hook = step_hook
        self.verify_attempts = verify_attempts
        self.verify_delay = verify_delay
        self.sleep = sleep

    # ------------------------------------------------------------------------------------
    # rotate
    # ------------------------------------------------------------------------------------
    def rotate(self, target: TargetPolicy, *, reason: str = "manual", dry_run: bool = False,
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
                self._record_failure(target, str(exc))
        finally:
            result.duration = time.monotonic() - started
        log.info("rotation %s", result.outcome, extra={"target": target.name, "rotation_id": rid,
                                                       "reason": reason, "duration": round(result.duration, 3),
                                                       "step": result.step, "token_id": result.token_id})
        return result

    def _rotate(self, target: TargetPolicy, result: RotationResult, dry_run: bool, only_if_version: Any) -> None:
        backend = self._backend(target)
        rid = result.rotation_id

        self._hook(RotationStep.READ, "before", rid)
        stored, current = self._read(target, backend)
        result.previous_token_id = current.token_id if current else None
        self._hook(RotationStep.READ, "after", rid)
        if only_if_version is not None and stored.version != only_if_version:
            result.outcome = "skipped"  # someone rotated it since the request was seen
            return

        if dry_run:
            result.outcome = "dry-run"
            result.strategy = self._planned_strategy(target, current)
            return

        self._hook(RotationStep.MINT, "before", rid)
        minted, strategy = self._mint(target, current, rid)
        result.strategy, result.token_id = strategy, minted.token_id
        self._hook(RotationStep.MINT, "after", rid)

        try:
            self._hook(RotationStep.VERIFY, "before", rid)
            self._verify(target, minted)
            self._hook(RotationStep.VERIFY, "after", rid)
            record = self._new_record(target, current, minted, strategy)
        except BaseException:
            self._discard(target, minted, "it failed verification")
            raise

        self._hook(RotationStep.STORE, "before", rid)
        version = self._store(target, backend, stored, record, minted, result)
        if version is None:
            return  # lost the race; our token is already revoked
        result.outcome, result.generation, result.expires_at = "rotated", record.generation, record.expires_at
        self._hook(RotationStep.STORE, "after", rid)

        self._hook(RotationStep.RETIRE, "before", rid)
        result.revoked = self._retire_due(target, backend, record, version)
        self._hook(RotationStep.RETIRE, "after", rid)

    def _read(self, target: TargetPolicy, backend: SecretBackend) -> tuple[StoredValue, SecretRecord | None]:
        try:
            stored = backend.read(target.path)
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.READ, str(exc)) from None
        if stored.text is None:
            return stored, None
        try:
            record = SecretRecord.loads(stored.text)
        except RecordError as exc:
            raise RotationError(target.name, RotationStep.READ,
                                f"the stored value at {backend.name}:{target.path} is not a usable record "
                                f"({exc}); it was left untouched: fix it or delete it to bootstrap") from None
        if record.target and record.target != target.name:
            raise RotationError(target.name, RotationStep.READ,
                                f"{backend.name}:{target.path} belongs to target {record.target!r}; "
                                "two targets must not share a path") from None
        return stored, record

    def _planned_strategy(self, target: TargetPolicy, current: SecretRecord | None) -> str:
        if target.strategy == "refresh" and not (current and current.refresh_token):
            return "recreate"
        if target.strategy == "self" and current is None:
            return "recreate"
        return target.strategy

    # -- mint -------------------------------------------------------------------------------
    def _mint(self, target: TargetPolicy, current: SecretRecord | None, rid: str) -> tuple[TokenResponse, str]:
        strategy = target.strategy
        if strategy == "refresh":
            if current and current.refresh_token:
                try:
                    return self._refresh(target, current), "refresh"
                except JFrogHTTPError as exc:
                    if exc.status not in (400, 401, 404) or not (target.fallback_to_recreate and self.has_admin):
                        raise RotationError(target.name, RotationStep.MINT, f"refresh failed: {exc}") from None
                    log.warning("%s: refresh token unusable (%s %s); falling back to recreate",
                                target.name, exc.status, exc.first_message())
                except JFrogError as exc:
                    raise RotationError(target.name, RotationStep.MINT, f"refresh failed: {exc}") from None
            elif current is not None and not (target.fallback_to_recreate and self.has_admin):
                raise RotationError(target.name, RotationStep.MINT,
                                    "no refresh token stored and recreating is not allowed for this target")
            return self._create(target, rid, token=None), "recreate"  # also the first token
        if strategy == "self":
            if current is not None:
                return self._create(target, rid, token=current.access_token), "self"
            if not self.has_admin:
                raise RotationError(target.name, RotationStep.MINT,
                                    "strategy self needs a token in the store to mint its successor "
                                    "(store a first token, or configure an admin credential to bootstrap)")
        return self._create(target, rid, token=None), "recreate"

    def _create(self, target: TargetPolicy, rid: str, *, token: str | None) -> TokenResponse:
        if token is None and not self.has_admin:
            raise RotationError(target.name, RotationStep.MINT, "no JFrog admin credential configured")
        try:
            spec = target.token.with_description_tag(description_tag(target.name, rid)).validate()
        except SpecError as exc:
            raise RotationError(target.name, RotationStep.MINT, str(exc)) from None
        try:
            return self.jfrog.create_token(spec.request_body(), token=token)
        except JFrogError as exc:
            raise RotationError(target.name, RotationStep.MINT, f"create token failed: {exc}") from None

    def _refresh(self, target: TargetPolicy, current: SecretRecord) -> TokenResponse:
        return self.jfrog.refresh_token(
            current.refresh_token or "",
            access_token=current.access_token,
            expires_in=target.token.expiry,
            include_reference_token=target.token.reference,
        )

    # -- verify -----------------------------------------------------------------------------
    def _verify(self, target: TargetPolicy, minted: TokenResponse) -> None:
        delay = self.verify_delay
        for attempt in range(1, self.verify_attempts + 1):
            try:
                me = self.jfrog.get_me(token=minted.access_token)
            except JFrogHTTPError as exc:
                if exc.status in (401, 404) and attempt < self.verify_attempts:
                    self.sleep(delay)  # new credentials can take a moment to propagate
                    delay = min(delay * 2, 2.0)
                    continue
                raise RotationError(target.name, RotationStep.VERIFY, f"the new token does not work: {exc}") from None
            except JFrogError as exc:
                raise RotationError(target.name, RotationStep.VERIFY, f"cannot verify the new token: {exc}") from None
            if me.get("token_id") and me["token_id"] != minted.token_id:
                raise RotationError(target.name, RotationStep.VERIFY,
                                    f"GET /tokens/me answered for token {me['token_id']}, not {minted.token_id}")
            return

    # -- store ------------------------------------------------------------------------------
    def _new_record(self, target: TargetPolicy, current: SecretRecord | None, minted: TokenResponse,
                    strategy: str) -> SecretRecord:
        now = self.clock()
        retired = list(current.retired) if current else []
        # A refresh kills the old access token at once; anything else keeps it for the overlap.
        if current and strategy != "refresh" and current.token_id != minted.token_id:
            retired.append(RetiredToken(current.token_id, now + timedelta(seconds=target.overlap), current.expires_at))
        try:
            return next_record(current, minted, target=target.name, url=self.jfrog.url, now=now, retired=retired)
        except InvalidTokenFormat as exc:
            raise RotationError(target.name, RotationStep.VERIFY, f"the new access token is not a JWT: {exc}") from None

    def _store(self, target: TargetPolicy, backend: SecretBackend, stored: StoredValue, record: SecretRecord,
               minted: TokenResponse, result: RotationResult) -> Any:
        metadata = {**record.metadata(), "last_rotation": utc_iso(self.clock()), "last_reason": result.reason[:500],
                    "last_error": None, "last_error_at": None, "rotate_requested": "false",
                    "requested_by": None, "requested_reason": None, "requested_at": None}
        try:
            return backend.write(target.path, record.dumps(), expected_version=stored.version,
                                 metadata=metadata, rotation_id=result.rotation_id)
        except CASConflict:
            self._discard(target, minted, "another writer stored a token first")
            result.outcome = "lost-race"
            log.info("%s: lost the compare-and-set race; revoked our token %s", target.name, minted.token_id)
            return None
        except WriteOutcomeUnknown as exc:
            version = self._resolve_unknown_write(target, backend, minted, exc)
            try:  # the value landed; make sure the metadata beside it says so too
                backend.patch_metadata(target.path, metadata)
            except BackendError as meta_exc:
                log.warning("%s: stored, but the metadata update failed: %s", target.name, meta_exc)
            return version
        except BackendError as exc:
            self._discard(target, minted, "it could not be stored")
            raise RotationError(target.name, RotationStep.STORE, str(exc)) from None

    def _resolve_unknown_write(self, target: TargetPolicy, backend: SecretBackend, minted: TokenResponse,
                               exc: BackendError) -> Any:
        """The write may have landed: never revoke a token the store might now hand out."""
        try:
            again = backend.read(target.path)
            landed = again.text is not None and SecretRecord.loads(again.text).token_id == minted.token_id
        except (BackendError, RecordError):
            raise RotationError(target.name, RotationStep.STORE,
                                f"{exc}; the outcome is unknown and the token {minted.token_id} was kept "
                                "(a sweep revokes it if it was not stored)") from None
        if landed:
            return again.version
        self._discard(target, minted, "it was not stored")
        raise RotationError(target.name, RotationStep.STORE, str(exc))

    # -- retire / sweep ---------------------------------------------------------------------
    def _retire_due(self, target: TargetPolicy, backend: SecretBackend, record: SecretRecord,
                    version: Any) -> list[str]:
        """Revoke the retired tokens whose overlap is over, then drop them from the record (CAS)."""
        now = self.clock()
        revoked, done = [], set()
        for retired in record.retired:
            if retired.revoke_after > now:
                continue
            if retired.expires_at is not None and retired.expires_at <= now:
                done.add(retired.token_id)  # expired already: nothing left to revoke
            elif self._revoke(target, retired.token_id, record):
                revoked.append(retired.token_id)
                done.add(retired.token_id)
        if done:
            remaining = record.without_retired(done)
            try:
                backend.write(target.path, remaining.dumps(), expected_version=version,
                              metadata=remaining.metadata(), rotation_id=str(uuid.uuid4()))
            except BackendError as exc:  # the entries stay listed; a later sweep removes them
                log.warning("%s: revoked %d retired token(s) but could not update the record: %s",
                            target.name, len(revoked), exc)
        return revoked

    def sweep(self, target: TargetPolicy) -> SweepResult:
        """Revoke retired tokens that are due, and live tokens tagged for this target that the
        store does not know (orphans of a crash), once they are older than ``orphan_grace``."""
        result = SweepResult(target.name)
        backend = self._backend(target)
        try:
            stored, record = self._read(target, backend)
        except RotationError as exc:
            result.errors.append(str(exc))
            return result
        if record is not None:
            result.retired_revoked = self._retire_due(target, backend, record, stored.version)
        result.orphans_revoked = self._sweep_orphans(target, record, result.errors)
        return result

    def _sweep_orphans(self, target: TargetPolicy, record: SecretRecord | None, errors: list[str]) -> list[str]:
        credential = None if self.has_admin else (record.access_token if record else None)
        if not self.has_admin and credential is None:
            return []
        try:
            tokens = self.jfrog.list_tokens(description=f"{TAG_PREFIX}:{target.name}:*", token=credential)
        except JFrogError as exc:
            errors.append(f"{target.name}: list tokens: {exc}")
            return []
        known = set()
        if record is not None:
            known.add(record.token_id)
            known.update(r.token_id for r in record.retired)
        cutoff = self.clock().timestamp() - target.orphan_grace
        revoked = []
        for token in tokens:
            token_id = str(token.get("token_id", ""))
            if not token_id or token_id in known or tag_target(token.get("description")) != target.name:
                continue
            issued = token.get("issued_at")
            if isinstance(issued, (int, float)) and issued > cutoff:
                continue  # may belong to a rotation still in flight on another replica
            if self._revoke(target, token_id, record, errors=errors):
                revoked.append(token_id)
        return revoked

    def _revoke(self, target: TargetPolicy, token_id: str, record: SecretRecord | None,
                errors: list[str] | None = None) -> bool:
        credential = None if self.has_admin else (record.access_token if record else None)
        try:
            self.jfrog.revoke_token(token_id, token=credential)
            return True
        except JFrogError as exc:
            message = f"{target.name}: revoke {token_id}: {exc}"
            log.warning("%s", message)
            if errors is not None:
                errors.append(message)
            return False

    def _discard(self, target: TargetPolicy, minted: TokenResponse, why: str) -> None:
        """Revoke a token we minted but will not store (with itself when there is no admin)."""
        discard_token(self.jfrog, minted, credential=None if self.has_admin else minted.access_token,
                      owner=target.name, why=why)

    # -- helpers ----------------------------------------------------------------------------
    def _backend(self, target: TargetPolicy) -> SecretBackend:
        try:
            return self.backends[target.backend]
        except KeyError:
            raise RotationError(target.name, RotationStep.READ, f"no backend named {target.backend!r}") from None

    def _hook(self, step: RotationStep, when: str, rid: str) -> None:
        if self.step_hook is not None:
            self.step_hook(step, when, rid)

    def _record_failure(self, target: TargetPolicy, message: str) -> None:
        try:
            backend = self.backends[target.backend]
            if backend.read_metadata(target.path) is not None:
                backend.patch_metadata(target.path, {"last_error": " ".join(message.split())[:500],
                                                     "last_error_at": utc_iso(self.clock())})
        except Exception as exc:  # reporting a failure must never hide it
            log.debug("%s: could not record the failure in the store: %s", target.name, exc)

