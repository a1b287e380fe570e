"""The steps of one rotation, each a public method, so that every door drives the same code.

``Engine.rotate`` chains them for the CLI and the daemon (READ, MINT, VERIFY, STORE, RETIRE); the
Lambda's four handlers call them one per Secrets Manager step (READ + MINT + build + STAGE,
VERIFY, PROMOTE + metadata + revoke due + orphan sweep). The credential used to mint and to clean
up and the retire policy are given, not hard-coded. See docs/architecture.md ("One rotation").

The steps do no I/O of their own: they call the JFrog client and the store they are given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from backends.base import (
    BackendError,
    BoundedMetadata,
    CASConflict,
    MetadataNotWritten,
    SecretBackend,
    StagingBackend,
    WriteOutcomeUnknown,
)
from rotator.core.options import shown
from rotator.core.record import RETIRED_KEYS, RetiredOverflow, SecretRecord, retired_room, utc_iso
from rotator.core.shapes import Found
from rotator.core.tags import description_filter, description_tag, tag_rotation, tag_target
from rotator.core.target import Target
from rotator.core.token_spec import SpecError
from rotator.engine.current import AdminCredential, Current, Minted, repair_metadata
from rotator.engine.documents import keeps_record, render_value
from rotator.engine.reading import read_current
from rotator.engine.records import RetirePolicy, cleared_fanout_keys, next_record, revoked_per_metadata, rotation_metadata
from rotator.engine.results import RefreshFailed, RotationError, RotationStep, VerifyUnavailable
from rotator.jfrog.client import AccessClient, TokenResponse
from rotator.jfrog.errors import JFrogConnectionError, JFrogError, JFrogHTTPError, with_call
from rotator.jfrog.jwt import InvalidTokenFormat

log = logging.getLogger("rotator.engine")

_RETRYABLE_VERIFY = (401, 403, 404)  # new credentials can take a moment to propagate


class RotationSteps:
    """The steps, over one JFrog client and the configured stores."""

    def __init__(
        self,
        *,
        jfrog: AccessClient,
        backends: Mapping[str, SecretBackend],
        has_admin: bool = False,
        admin: AdminCredential | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        sleep: Callable[[float], None] = time.sleep,
        verify_attempts: int = 5,
        verify_delay: float = 0.2,
        verify_timeout: float | None = None,
        orphan_grace_floor: int = 0,
    ) -> None:
        self.jfrog = jfrog
        self.backends = backends
        self.admin = admin if admin is not None else (AdminCredential() if has_admin else None)
        self.clock = clock
        self.sleep = sleep
        self.verify_attempts = verify_attempts
        self.verify_delay = verify_delay
        self.verify_timeout = verify_timeout
        # the least orphan grace this process sweeps with, whatever a target says: a daemon sweeps
        # while its own jobs (and other replicas, the CLI) may be between MINT and STORE
        self.orphan_grace_floor = orphan_grace_floor

    @property
    def has_admin(self) -> bool:
        return self.admin is not None

    # -- READ -------------------------------------------------------------------------------
    def backend(self, target: Target) -> SecretBackend:
        try:
            return self.backends[target.backend]
        except KeyError:
            raise RotationError(target.name, RotationStep.READ, f"no backend named {target.backend!r}") from None

    def read(self, target: Target) -> Current:
        """The current value as a record (ours, rebuilt from a document, or adopted); metadata that
        disagrees with our record is repaired (:mod:`rotator.engine.reading`)."""
        return read_current(target, self.backend(target), self.jfrog)

    def repair_metadata(self, target: Target, backend: SecretBackend, record: SecretRecord,
                        metadata: Mapping[str, str], version: Any) -> str | None:
        return repair_metadata(target, backend, record, metadata, version)

    def check_room(self, target: Target, current: SecretRecord | None, found: Found | None, policy: RetirePolicy,
                   *, reason: str, extra: Mapping[str, str | None] | None = None) -> None:
        """Before MINT: will the bookkeeping of a document (any value that is not our record) fit the
        store's metadata? Its retired list must fit :data:`~rotator.core.record.RETIRED_KEYS` (a
        live token left out would look like an orphan to the sweep and be revoked before its
        overlap ends), and a store with limits (:class:`~backends.base.BoundedMetadata`, AWS's 50
        tags) must have room for the metadata. Otherwise :class:`RotationError`: nothing is minted
        or written, and the rotation can succeed once a sweep has revoked what is due."""
        if keeps_record(target, found):
            return
        backend = self.backend(target)
        now = self.clock()
        retired = policy.retired(current, self.planned_strategy(target, current), "", now)
        where = f"{backend.name}:{target.path}"
        what = f"format {target.format}" if target.format else f"the shape found ({found.describe()})" if found else ""
        try:
            retired_room(retired, now=now)
        except RetiredOverflow as exc:
            due = min(r.revoke_after for r in retired)
            raise RotationError(target.name, RotationStep.MINT,
                                f"{where} keeps the bookkeeping of {what} in its metadata, and {exc}; nothing was "
                                f"minted. The earliest is due for revocation at {utc_iso(due)} (a sweep then makes "
                                "room): rotate less often, shorten overlap, or use format: record") from None
        if not isinstance(backend, BoundedMetadata):
            return
        planned = SecretRecord(access_token="", token_id="planned", username=current.username if current else "",
                               scope="", url="", issued_at=now, expires_at=current.expires_at if current else None,
                               target=target.name, generation=(current.generation if current else 0) + 1,
                               retired=tuple(retired))
        metadata = {**rotation_metadata(planned, reason=reason, now=now), **self._version_key(backend, "planned"),
                    **(extra or {})}
        try:
            backend.check_metadata(target.path, metadata)
        except BackendError as exc:
            raise RotationError(target.name, RotationStep.MINT,
                                f"{exc}; the bookkeeping of {what} lives in those tags, so nothing was minted") from None

    # -- MINT -------------------------------------------------------------------------------
    def planned_strategy(self, target: Target, current: SecretRecord | None) -> str:
        if target.strategy == "refresh" and not (current and current.refresh_token):
            return "recreate"
        if target.strategy == "self" and current is None:
            return "recreate"
        return target.strategy

    def may_recreate(self, target: Target) -> bool:
        """Whether a ``refresh`` target may fall back to ``recreate``."""
        return target.fallback_to_recreate and self.has_admin

    def stored_token_works(self, record: SecretRecord) -> bool | None:
        """``GET /access/api/v1/tokens/me`` with the stored token: whether JFrog still accepts it
        (``None``: no answer to tell). After a refresh whose answer was lost or unusable, a dead
        stored token says JFrog acted on it: refresh tokens are single-use and the old token dies."""
        try:
            self.jfrog.get_me(token=record.access_token)
        except JFrogHTTPError as exc:
            return exc.status not in (401, 403, 404)
        except JFrogError:
            return None
        return True

    def mint(self, target: Target, current: SecretRecord | None, rotation_id: str, *,
             recreate: bool = False) -> Minted:
        """A new token, by the target's strategy (a refresh falls back to recreate when allowed;
        ``recreate``: do that now). Replacing a token the rotator did not mint (generation 0:
        adopted, or stored by hand), its tag says so (:func:`~rotator.core.tags.description_tag`),
        for the sweep."""
        after_untagged = current is not None and current.generation == 0
        if recreate:
            return Minted(self._create(target, rotation_id, token=None, after_untagged=after_untagged), "recreate")
        if target.strategy == "refresh":
            if current and current.refresh_token:
                try:
                    return Minted(self._refresh(target, current), "refresh")
                except JFrogHTTPError as exc:
                    if exc.status not in (400, 401, 404) or not self.may_recreate(target):
                        raise RefreshFailed(target.name, RotationStep.MINT,
                                            f"refresh failed (POST /access/api/v1/tokens): {exc}") from None
                    log.warning("%s: refresh token unusable (%s %s); falling back to recreate",
                                target.name, exc.status, exc.first_message())
                except JFrogError as exc:
                    raise RefreshFailed(target.name, RotationStep.MINT,
                                        f"refresh failed (POST /access/api/v1/tokens): {exc}") from None
            elif current is not None and not self.may_recreate(target):
                raise RotationError(target.name, RotationStep.MINT,
                                    "no refresh token stored and recreating is not allowed for this target")
            return Minted(self._create(target, rotation_id, token=None, after_untagged=after_untagged),
                          "recreate")  # also the first token
        if target.strategy == "self":
            if current is not None:
                return Minted(self._create(target, rotation_id, token=current.access_token,
                                           after_untagged=after_untagged), "self")
            if not self.has_admin:
                raise RotationError(target.name, RotationStep.MINT,
                                    "strategy self needs a token in the store to mint its successor "
                                    "(store a first token, or configure an admin credential to bootstrap)")
        return Minted(self._create(target, rotation_id, token=None, after_untagged=after_untagged), "recreate")

    def _create(self, target: Target, rotation_id: str, *, token: str | None,
                after_untagged: bool = False) -> TokenResponse:
        if token is None:
            if self.admin is None:
                raise RotationError(target.name, RotationStep.MINT, "no JFrog admin credential configured")
            try:
                token = self.admin.token()  # an exchange, for a credential read when needed
            except JFrogError as exc:
                raise RotationError(target.name, RotationStep.MINT, str(exc)) from None
        try:
            tag = description_tag(target.name, rotation_id, after_untagged=after_untagged)
            spec = target.token.with_description_tag(tag).validate()
        except SpecError as exc:
            raise RotationError(target.name, RotationStep.MINT, str(exc)) from None
        try:
            return self.jfrog.create_token(spec.request_body(), token=token)
        except JFrogError as exc:
            raise RotationError(target.name, RotationStep.MINT,
                                f"create token failed (POST /access/api/v1/tokens): {exc}") from None

    def _refresh(self, target: Target, current: SecretRecord) -> TokenResponse:
        return self.jfrog.refresh_token(
            current.refresh_token or "",
            access_token=current.access_token,
            expires_in=target.token.expiry,
            include_reference_token=target.token.reference,
        )

    # -- VERIFY -----------------------------------------------------------------------------
    def verify(self, target: Target, token: TokenResponse | SecretRecord) -> int:
        """``GET /access/api/v1/tokens/me`` with the new token, retried with backoff while it may
        still be propagating (401/403/404, no connection), for ``verify_attempts`` tries or
        ``verify_timeout`` seconds. Returns the number of attempts."""
        delay, waited, attempt = self.verify_delay, 0.0, 0
        started = time.monotonic()
        while True:
            attempt += 1
            try:
                me = self.jfrog.get_me(token=token.access_token)
                break
            except (JFrogHTTPError, JFrogConnectionError) as exc:
                retryable = isinstance(exc, JFrogConnectionError) or exc.status in _RETRYABLE_VERIFY
                spent = max(waited, time.monotonic() - started)
                out_of_time = self.verify_timeout is not None and spent + delay > self.verify_timeout
                if not retryable or out_of_time or (self.verify_timeout is None and attempt >= self.verify_attempts):
                    refused = isinstance(exc, JFrogHTTPError) and exc.status in _RETRYABLE_VERIFY
                    raise (RotationError if refused else VerifyUnavailable)(
                        target.name, RotationStep.VERIFY,
                        f"the new token {token.token_id} does not work (attempt {attempt}): {with_call(exc)}") from None
                self.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
            except JFrogError as exc:
                raise VerifyUnavailable(target.name, RotationStep.VERIFY,
                                        f"cannot verify the new token: {with_call(exc)}") from None
        if me.get("token_id") != token.token_id:  # an answer naming no token proves nothing
            answered = me.get("token_id")
            which = f"token {shown(answered)}" if answered else "no token (no token_id in the answer)"
            raise RotationError(target.name, RotationStep.VERIFY,
                                f"GET /tokens/me answered for {which}, not {token.token_id}")
        return attempt

    # -- build ------------------------------------------------------------------------------
    def build_record(self, target: Target, current: SecretRecord | None, minted: Minted, policy: RetirePolicy,
                     *, now: datetime | None = None) -> SecretRecord:
        now = now or self.clock()
        retired = policy.retired(current, minted.strategy, minted.token.token_id, now)
        try:
            return next_record(current, minted.token, target=target.name, url=self.jfrog.url, now=now,
                               retired=retired)
        except InvalidTokenFormat as exc:
            raise RotationError(target.name, RotationStep.VERIFY, f"the new access token is not a JWT: {exc}") from None

    # -- STORE ------------------------------------------------------------------------------
    def store(self, target: Target, current: Current, record: SecretRecord, minted: Minted, *,
              reason: str, rotation_id: str, warnings: list[str]) -> Any:
        """Compare-and-set write of ``record`` with the rotation's metadata; the new version, or
        ``None`` when another writer won (our token is revoked then)."""
        backend = current.backend
        metadata = {**cleared_fanout_keys(current.record, record), **rotation_metadata(record, reason=reason,
                                                                                      now=self.clock())}
        try:
            text = render_value(target, record, current.found, self.jfrog.url)
            self._bookkeeping_first(target, current, metadata)
            return backend.write(target.path, text, expected_version=current.version,
                                 metadata=metadata, rotation_id=rotation_id)
        except CASConflict:
            self.discard(target, minted.token, "another writer stored a token first")
            log.info("%s: lost the compare-and-set race; revoked our token %s", target.name, minted.token.token_id)
            return None
        except MetadataNotWritten as exc:
            warnings.append(f"{exc}; the next status, sweep or rotation repairs the metadata")
            log.warning("%s: %s", target.name, warnings[-1])
            return exc.version
        except WriteOutcomeUnknown as exc:
            version = self._resolve_unknown_write(target, backend, minted.token, exc)
            self.write_metadata(target, backend, {**metadata, **self._version_key(backend, version)}, warnings)
            return version
        except BackendError as exc:
            self.discard(target, minted.token, "it could not be stored")
            raise RotationError(target.name, RotationStep.STORE, str(exc)) from None

    @staticmethod
    def _bookkeeping_first(target: Target, current: Current, metadata: Mapping[str, str | None]) -> None:
        """A document's bookkeeping is its metadata, which stores with metadata apart from the value
        (Vault KV v2, AWS) write after the value: a crash between the two would leave the new
        document beside metadata that does not list the token it replaced (an adopted one, which no
        tag finds, would never be revoked). So the retired list goes to the metadata first; READ
        carries it over when the value turns out to hold another token (see ``reading``). The file
        store writes a document's sidecar before the value itself."""
        backend = current.backend
        if keeps_record(target, current.found) or current.stored.text is None or not backend.metadata_without_secret:
            return
        keys = ("managed_by", "target", *RETIRED_KEYS, "retired_count")
        backend.patch_metadata(target.path, {key: metadata.get(key) for key in keys})

    def _resolve_unknown_write(self, target: Target, backend: SecretBackend, minted: TokenResponse,
                               exc: BackendError) -> Any:
        """The write may have landed: never revoke a token the store might now hand out."""
        try:
            again = backend.read(target.path)
            landed = again.text is not None and minted.access_token in again.text  # any format holds it
        except BackendError:
            raise RotationError(target.name, RotationStep.STORE,
                                f"{exc}; the outcome is unknown: token {minted.token_id} was kept (if it was "
                                "stored, the next status, sweep or rotation repairs the metadata; if not, "
                                "a sweep revokes it)") from None
        if landed:
            return again.version
        self.discard(target, minted, "it was not stored")
        raise RotationError(target.name, RotationStep.STORE, str(exc))

    @staticmethod
    def _version_key(backend: SecretBackend, version: Any) -> dict[str, str]:
        return {"rotator_version": str(version)} if backend.metadata_without_secret and version is not None else {}

    def write_metadata(self, target: Target, backend: SecretBackend, metadata: Mapping[str, str | None],
                       warnings: list[str]) -> None:
        """Merge the rotation's metadata beside a value already stored (a failure is a warning:
        the value is what counts, and the next read repairs the metadata)."""
        try:
            backend.patch_metadata(target.path, metadata)
        except BackendError as exc:
            warnings.append(f"stored, but the metadata update failed ({exc}); the next status, sweep or "
                            "rotation repairs it")
            log.warning("%s: %s", target.name, warnings[-1])

    # -- staging stores (the Lambda) ----------------------------------------------------------
    def staging_backend(self, target: Target) -> StagingBackend:
        backend = self.backend(target)
        if not isinstance(backend, StagingBackend):
            raise RotationError(target.name, RotationStep.STORE, f"{backend.name} has no staging labels")
        return backend

    def promote(self, target: Target, record: SecretRecord, rotation_id: str, expected_version: Any, *,
                reason: str, warnings: list[str]) -> Any:
        """Make pending version ``rotation_id`` current (compare-and-set on the label), then write
        the same metadata a STORE writes. :class:`~backends.base.CASConflict` when another writer won."""
        backend = self.staging_backend(target)
        version = backend.promote(target.path, rotation_id, expected_version)
        metadata = rotation_metadata(record, reason=reason, now=self.clock())
        self.write_metadata(target, backend, {**metadata, **self._version_key(backend, version)}, warnings)
        return version

    # -- RETIRE and the sweep ---------------------------------------------------------------
    def credential_for(self, record: SecretRecord | None) -> str | None:
        """Who revokes and lists: the admin credential, else the stored token itself."""
        if self.admin is not None:
            return self.admin.token()
        return record.access_token if record else None

    def pending_retired(self, current: Current) -> SecretRecord | None:
        """The current record without the retired entries its metadata says are done already
        (revoked by an earlier RETIRE or sweep; :func:`~rotator.engine.records.revoked_per_metadata`)."""
        record = current.record
        if record is None or not record.retired:
            return record
        done = revoked_per_metadata(record, current.stored.metadata)
        return record.without_retired(done) if done else record

    def revoke_due(self, target: Target, record: SecretRecord, errors: list[str], *,
                   keep: Collection[str] = ()) -> tuple[list[str], set[str]]:
        """Revoke the retired tokens whose ``revoke_after`` has come, except those in ``keep`` (held
        by an output of a fan-out target). Returns the ids revoked and the ids that are done
        (revoked, or expired already: nothing left to revoke)."""
        now = self.clock()
        revoked: list[str] = []
        done: set[str] = set()
        due = [r for r in record.retired if r.revoke_after <= now]
        if not due:
            return revoked, done
        try:
            credential = self.credential_for(record)
        except JFrogError as exc:  # a minting credential read when needed: the next sweep retries
            errors.append(f"{target.name}: {exc}")
            return revoked, done
        for retired in due:
            if retired.token_id in keep:
                continue
            if retired.expires_at is not None and retired.expires_at <= now:
                done.add(retired.token_id)
                continue
            outcome = self.revoke(target, retired.token_id, credential, errors)
            if outcome is not None:
                done.add(retired.token_id)
            if outcome:
                revoked.append(retired.token_id)
        return revoked, done

    def drop_retired(self, target: Target, current: Current, record: SecretRecord, version: Any,
                     done: set[str]) -> None:
        """Say that the ``done`` entries of ``record`` need nothing more.

        Where the store keeps metadata apart from the value (Vault KV v2, AWS) and for a document
        (its bookkeeping is the metadata), only the metadata changes: the record keeps the entries
        until the next rotation's own write leaves them out, so a rotation is one version of the
        secret. The file store and a KV v1 mount keep no versions, and their metadata lives in the
        record anyway: the record is rewritten without them (compare-and-set on ``version``)."""
        backend = current.backend
        remaining = record.without_retired(done)
        if backend.metadata_without_secret or not keeps_record(target, current.found):
            try:
                backend.patch_metadata(target.path, remaining.metadata(now=self.clock()))
            except BackendError as exc:  # the next RETIRE or sweep revokes them again (JFrog answers 204)
                log.warning("%s: revoked retired token(s) but could not update the metadata: %s", target.name, exc)
            return
        try:
            backend.write(target.path, remaining.dumps(), expected_version=version,
                          metadata=remaining.metadata(now=self.clock()), rotation_id=f"retire-{version}")
        except BackendError as exc:  # the entries stay listed; a later sweep removes them
            log.warning("%s: revoked retired token(s) but could not update the record: %s", target.name, exc)

    def sweep_orphans(self, target: Target, record: SecretRecord | None, errors: list[str], *,
                      this_rotation: str | None = None, also_known: Collection[str] = (),
                      listed: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        """Revoke live tokens tagged for ``target`` that ``record`` does not know (orphans of a
        crash), once older than ``orphan_grace``; those of ``this_rotation`` (a step that died after
        minting and was run again) at once. ``also_known``: tokens held by the other outputs of a
        fan-out target, never orphans. ``listed``: the target's tokens from a list made for a
        whole sweep (``Engine.sweep_all``) instead of a list call of its own."""
        try:
            credential = self.credential_for(record)
        except JFrogError as exc:
            errors.append(f"{target.name}: {exc}")
            return []
        if self.admin is None and credential is None:
            return []
        if listed is not None:
            tokens = list(listed)
        else:
            try:
                tokens = self.jfrog.list_tokens(description=description_filter(target.name), token=credential)
            except JFrogError as exc:
                errors.append(f"{target.name}: list tokens: {with_call(exc)}")
                return []
        known = set(also_known)
        if record is not None:
            known.add(record.token_id)
            known.update(r.token_id for r in record.retired)
        cutoff = self.clock().timestamp() - max(target.orphan_grace, self.orphan_grace_floor)
        revoked = []
        for token in tokens:
            token_id = str(token.get("token_id") or "")
            description = token.get("description")
            if not token_id or token_id in known or tag_target(description) != target.name:
                continue
            issued = token.get("issued_at")
            ours = this_rotation is not None and tag_rotation(description) == this_rotation
            if not ours and isinstance(issued, (int, float)) and issued > cutoff:
                continue  # may belong to a rotation still in flight on another replica
            if self.revoke(target, token_id, credential, errors):
                revoked.append(token_id)
        return revoked

    def revoke(self, target: Target, token_id: str, credential: str | None, errors: list[str]) -> bool | None:
        """``DELETE /tokens/{id}``: True when revoked now, False when JFrog no longer had it (204),
        ``None`` when the call failed (logged and added to ``errors``)."""
        try:
            return self.jfrog.revoke_token(token_id, token=credential)
        except JFrogError as exc:
            message = f"{target.name}: revoke {token_id}: {with_call(exc)}"
            log.warning("%s", message)
            errors.append(message)
            return None

    def discard(self, target: Target, minted: TokenResponse, why: str) -> bool:
        """Revoke a token that was minted but will not be stored (with itself when there is no
        admin); a failure is logged, and a sweep finds the token later by its tag."""
        try:
            credential = self.admin.token() if self.admin is not None else minted.access_token
        except JFrogError:
            credential = minted.access_token  # a token may revoke itself
        try:
            self.jfrog.revoke_token(minted.token_id, token=credential)
        except JFrogError as exc:
            log.warning("%s: could not revoke new token %s (%s); a sweep will retry", target.name,
                        minted.token_id, with_call(exc))
            return False
        log.info("%s: revoked new token %s because %s", target.name, minted.token_id, why)
        return True

    def record_failure(self, target: Target, message: str) -> None:
        try:
            backend = self.backends[target.backend]
            if backend.read_metadata(target.path) is not None:
                backend.patch_metadata(target.path, {"last_error": " ".join(message.split())[:500],
                                                     "last_error_at": utc_iso(self.clock())})
        except Exception as exc:  # reporting a failure must never hide it
            log.debug("%s: could not record the failure in the store: %s", target.name, exc)
