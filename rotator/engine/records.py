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

from rotator.core.record import RetiredToken, SecretRecord, utc_iso
from rotator.jfrog.client import TokenResponse
from rotator.jfrog.jwt import decode_claims


class RetirePolicy(Protocol):
    """Which previous tokens the next record lists in ``rotator.retired``, and until when."""

    #: False: nothing is ever revoked by the rotation (the tokens simply expire).
    revokes: bool

    def retired(self, current: SecretRecord | None, strategy: str, minted_token_id: str,
                now: datetime) -> tuple[RetiredToken, ...]: ...


@dataclass(frozen=True)
class Overlap:
    """The daemon's and the CLI's policy: the replaced token keeps working for ``seconds``, then
    the retire step (or a sweep) revokes it. A refresh kills the old access token at once, so
    there is nothing to list then."""

    seconds: int
    revokes: bool = True

    def retired(self, current: SecretRecord | None, strategy: str, minted_token_id: str,
                now: datetime) -> tuple[RetiredToken, ...]:
        retired = list(current.retired) if current else []
        if current and strategy != "refresh" and current.token_id != minted_token_id:
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
    """

    policy: str = "after-next"
    grace: int = 90 * 86400

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
            if self.policy != "never":
                if entry.revoke_after <= current.issued_at:
                    continue
                entry = replace(entry, revoke_after=min(entry.revoke_after, now))
            carried.append(entry)
        if self.policy == "immediately":
            keep_until = now
        else:
            keep_until = now + timedelta(seconds=self.grace)
            if current.expires_at is not None:
                keep_until = min(keep_until, current.expires_at)
        return (*carried, RetiredToken(current.token_id, keep_until, current.expires_at))


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
    return {**record.metadata(), "last_rotation": utc_iso(now), "last_reason": reason[:500],
            "last_error": None, "last_error_at": None, "rotate_requested": "false",
            "requested_by": None, "requested_reason": None, "requested_at": None}


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
    return None
