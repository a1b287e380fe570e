"""The next record, who is retired in it, and the metadata every door writes beside it.

Pure functions (no I/O): the engine's steps and the Lambda's steps both build records here, so a
record written by ``jfrog-rotator rotate``, the daemon or the Lambda is the same record.
See docs/architecture.md ("The record", "Retiring the previous token").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Protocol

from rotator.core.record import RetiredToken, SecretRecord, retired_from_metadata, split_ids, utc_iso
from rotator.jfrog.client import TokenResponse
from rotator.jfrog.jwt import decode_claims

#: JFrog's default ``persistent-expiry-threshold`` (3 h): Access never stores a token that lives
#: shorter, so it cannot be listed or revoked; it simply expires
#: (https://jfrog.com/help/r/jfrog-platform-administration-documentation/persistency-threshold).
PERSISTENCY_THRESHOLD = 10_800


def is_stored_by_access(record: SecretRecord, persistency_threshold: int) -> bool:
    """Whether JFrog keeps the token of ``record`` (so it can be revoked): a token that never
    expires, or one whose lifetime (``expires_at - issued_at``) reaches the threshold; a threshold
    of 0 or less means every token is stored."""
    if record.expires_at is None or persistency_threshold <= 0:
        return True
    return (record.expires_at - record.issued_at).total_seconds() >= persistency_threshold


class RetirePolicy(Protocol):
    """Which previous tokens the next record lists in ``rotator.retired``, and until when."""

    #: False: nothing is ever revoked by the rotation (the tokens simply expire).
    revokes: bool

    def retired(self, current: SecretRecord | None, strategy: str, minted_token_id: str,
                now: datetime) -> tuple[RetiredToken, ...]: ...


@dataclass(frozen=True)
class Overlap:
    """The daemon's and the CLI's policy: the replaced token keeps working for ``seconds``, then
    the retire step (or a sweep) revokes it. A refresh kills the old access token at once, and a
    token shorter than ``persistency_threshold`` cannot be revoked (it expires on its own), so
    there is nothing to list then."""

    seconds: int
    persistency_threshold: int = PERSISTENCY_THRESHOLD
    revokes: bool = True

    def retired(self, current: SecretRecord | None, strategy: str, minted_token_id: str,
                now: datetime) -> tuple[RetiredToken, ...]:
        retired = list(current.retired) if current else []
        if (current and strategy != "refresh" and current.token_id != minted_token_id
                and is_stored_by_access(current, self.persistency_threshold)):
            retired.append(RetiredToken(current.token_id, now + timedelta(seconds=self.seconds), current.expires_at))
        return tuple(retired)


@dataclass(frozen=True)
class AfterNextRotation:
    """The Lambda's ``REVOKE_PREVIOUS`` policy (``after-next``, ``immediately`` or ``never``).

    The token being demoted is listed until now + ``grace`` (capped at its expiry) with
    ``after-next`` and ``never``, so a daemon's sweep never revokes it before the Lambda's next
    rotation would; with ``immediately`` it is due now. Entries carried over from the current
    record become due now (the token that was ``AWSPREVIOUS``), except with ``never``. An entry
    that was already due when the current record was minted was handled by that rotation (or is
    an orphan now, which the orphan sweep revokes) and is dropped.

    A demoted token shorter than ``persistency_threshold`` cannot be revoked: it is listed as due
    a second after its own expiry, so no rotation pulls it forward and the retire step finds it
    expired and drops it without a call. It is listed at all because ``finishSecret`` recognises
    the version it promotes by the token that version demotes.
    """

    policy: str = "after-next"
    grace: int = 90 * 86400
    persistency_threshold: int = PERSISTENCY_THRESHOLD

    @property
    def revokes(self) -> bool:
        return self.policy != "never"

    def retired(self, current: SecretRecord | None, strategy: str, minted_token_id: str,
                now: datetime) -> tuple[RetiredToken, ...]:
        if current is None:
            return ()
        carried = []
        for entry in current.retired:
            if entry.token_id == current.token_id or (entry.expires_at is not None and entry.expires_at <= now):
                continue  # nothing left to revoke
            if self.policy != "never" and not _expires_first(entry):
                if entry.revoke_after <= current.issued_at:
                    continue
                entry = replace(entry, revoke_after=min(entry.revoke_after, now))
            carried.append(entry)
        if current.expires_at is not None and not is_stored_by_access(current, self.persistency_threshold):
            keep_until = current.expires_at + _PAST_EXPIRY
        elif self.policy == "immediately":
            keep_until = now
        else:
            keep_until = now + timedelta(seconds=self.grace)
            if current.expires_at is not None:
                keep_until = min(keep_until, current.expires_at)
        return (*carried, RetiredToken(current.token_id, keep_until, current.expires_at))


_PAST_EXPIRY = timedelta(seconds=1)


def _expires_first(entry: RetiredToken) -> bool:
    """An entry due only after its token expires is never revoked: the retire step drops it."""
    return entry.expires_at is not None and entry.revoke_after > entry.expires_at


def next_record(current: SecretRecord | None, minted: TokenResponse, *, target: str, url: str, now: datetime,
                retired: Iterable[RetiredToken]) -> SecretRecord:
    """The record that replaces ``current`` (``None``: the first one) once ``minted`` is stored.

    Times come from the token's own claims (``now`` when it has none); ``retired`` is the whole
    ``rotator.retired`` list of the new record (a :class:`RetirePolicy` decides it). Keys a person
    added to ``current`` are kept. Raises :class:`~rotator.jfrog.jwt.InvalidTokenFormat` when the
    token is not a JWT.
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


def rotation_metadata(record: SecretRecord, *, reason: str, now: datetime) -> dict[str, str | None]:
    """The store metadata of a rotation (Vault custom_metadata, AWS tags, the file's section):
    the record's facts plus when and why it was written; clears the last error and the request
    flag. Every door writes exactly this."""
    return {**record.metadata(now=now), "last_rotation": utc_iso(now), "last_reason": reason[:500],
            "last_error": None, "last_error_at": None, "rotate_requested": "false",
            "requested_by": None, "requested_reason": None, "requested_at": None}


def cleared_fanout_keys(previous: SecretRecord | None, record: SecretRecord) -> dict[str, str | None]:
    """``None`` for the fan-out keys ``previous`` had in its metadata and ``record`` no longer has
    (a target whose ``outputs:`` were removed), so the store drops them."""
    if previous is None:
        return {}
    had = previous.fanout_metadata()
    return {key: None for key in had if key not in record.fanout_metadata()}


def metadata_drift(record: SecretRecord, metadata: Mapping[str, str]) -> str | None:
    """How the metadata beside a record disagrees with it (``None`` when it follows the record).

    It happens when a value landed but the metadata write after it did not (a write that timed
    out and was applied later, a crash between the two writes): the metadata still names the
    previous token, and ``status`` and the daemon's due times would act on it.
    """
    named = metadata.get("token_id")
    if not metadata.get("managed_by") and named is None:
        return None  # no metadata of ours at all (a first write, a store without metadata)
    if named != record.token_id:
        return f"the metadata named token {named or '(none)'} but the record holds {record.token_id}"
    if metadata.get("generation") not in (None, str(record.generation)):
        return (f"the metadata named generation {metadata.get('generation')} but the record is "
                f"generation {record.generation}")
    if record.outputs and split_ids(metadata.get("outputs_pending")) != record.outputs_pending:
        return (f"the metadata listed outputs {_ids(split_ids(metadata.get('outputs_pending')))} as pending but the "
                f"record lists {_ids(record.outputs_pending)}")
    return None


def _ids(ids: tuple[str, ...]) -> str:
    return "[" + ", ".join(ids) + "]"


def revoked_per_metadata(record: SecretRecord, metadata: Mapping[str, str]) -> set[str]:
    """The ``retired`` entries of ``record`` that the metadata beside it says are done.

    On stores that keep metadata apart from the value (Vault KV v2, AWS), revoking a retired
    token changes only the metadata (its ``retired`` list and ``retired_count``): the record
    keeps the entry until the next rotation's own write drops it, so a rotation writes one
    version. This tells which entries those are: the ones the metadata no longer lists, when the
    metadata describes this very record (same token and generation) and lists its retired tokens
    in full (``retired_count`` matches the entries listed; a list cut for length tells nothing).
    Anything else answers the empty set: the entries are then revoked again (JFrog answers 204).
    """
    if not record.retired or metadata.get("token_id") != record.token_id:
        return set()
    if metadata.get("generation") != str(record.generation):
        return set()
    listed = {entry.token_id for entry in retired_from_metadata(metadata)}
    count = metadata.get("retired_count", "")
    if not count.isdigit() or int(count) != len(listed):
        return set()
    return {r.token_id for r in record.retired} - listed
