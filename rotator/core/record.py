"""The stored record: the JSON object consumers read from Vault, AWS Secrets Manager or a file.

Schema (docs/architecture.md, "The stored record")::

    {"access_token", "token_id", "token_type", "username", "scope", "url", "expires_at",
     "issued_at", "refresh_token"?, "reference_token"?,
     "rotator": {"schema": 1, "target", "generation", "retired": [{"token_id", "revoke_after"}]}}

Times are UTC ISO-8601 with ``Z``; ``expires_at`` is null for non-expiring tokens. Keys a person
added (at the top level or inside ``rotator``) are kept on every rewrite.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from rotator.core.redact import REDACTED, register

SCHEMA = 1
MANAGED_BY = "jfrog-token-rotator"
#: Where :meth:`SecretRecord.metadata` lists the retired tokens, and how long each value may be
#: (an AWS tag value holds 256 characters, a Vault custom_metadata value 512 bytes).
RETIRED_KEYS = ("retired", "retired_2", "retired_3", "retired_4")
RETIRED_CHUNK = 250
_TOP_KEYS = ("access_token", "token_id", "token_type", "username", "scope", "url", "expires_at",
             "issued_at", "refresh_token", "reference_token", "rotator")
_ROTATOR_KEYS = ("schema", "target", "generation", "retired")


class RecordError(ValueError):
    """A stored value is not a record this program can use; the message names what is wrong."""


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str):
        raise RecordError(f"'{what}' must be an ISO-8601 UTC time string, got {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"'{what}' is not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class RetiredToken:
    """A previous token that keeps working until ``revoke_after``, then a sweep revokes it."""

    token_id: str
    revoke_after: datetime
    expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"token_id": self.token_id, "revoke_after": utc_iso(self.revoke_after)}
        if self.expires_at is not None:
            out["expires_at"] = utc_iso(self.expires_at)
        return out


# -- the retired list in metadata ------------------------------------------------------------------
# One entry a token: ``<id>@<revoke_after>`` and, when the token's expiry is known, ``+<expires_at>``;
# times are Unix seconds in base 36 (``revoke_after`` rounded up, so a token is never revoked before
# its time; ``expires_at`` rounded down), a UUID token id (what JFrog uses) is its 16 bytes in
# URL-safe base64 (22 characters), any other id is written as ``=<id>``. So an entry takes 37
# characters instead of 57, and the four keys hold 24 entries. Entries are separated by ``,`` (a
# space on AWS, whose tags refuse commas). Entries written before (``<uuid>@<ISO time>``) are read too.
_COMPACT_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_UUID_ENTRY = 36  # 22 + "@" + 6 + "+" + 6 (base 36 holds Unix seconds in 6 digits until 2038)
#: How many retired tokens with UUID ids and known expiry the metadata lists (24).
RETIRED_CAPACITY = len(RETIRED_KEYS) * ((RETIRED_CHUNK + 1) // (_UUID_ENTRY + 1))
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class RetiredOverflow(ValueError):
    """The retired list does not fit the metadata keys; the message says how many do."""


def _base36(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = _DIGITS36[digit] + out
        if number == 0:
            return out


def _compact_id(token_id: str) -> str:
    try:
        if str(uuid.UUID(token_id)) == token_id:
            return base64.urlsafe_b64encode(uuid.UUID(token_id).bytes).decode("ascii").rstrip("=")
    except ValueError:
        pass
    return f"={token_id}"


def _full_id(text: str) -> str:
    if text.startswith("="):
        return text[1:]
    if _COMPACT_ID.fullmatch(text):
        try:
            return str(uuid.UUID(bytes=base64.urlsafe_b64decode(text + "==")))
        except (binascii.Error, ValueError):
            pass
    return text  # an entry written before the compact form: the id as it is


def retired_entry(retired: RetiredToken) -> str:
    """One entry of the metadata's retired list (see above)."""
    entry = f"{_compact_id(retired.token_id)}@{_base36(math.ceil(retired.revoke_after.timestamp()))}"
    if retired.expires_at is not None:
        entry += f"+{_base36(math.floor(retired.expires_at.timestamp()))}"
    return entry


def _moment(text: str, what: str) -> datetime:
    if "-" in text or ":" in text:  # an ISO time, as entries were written before
        return parse_time(text, what)
    try:
        return datetime.fromtimestamp(int(text, 36), timezone.utc)
    except (ValueError, OverflowError):
        raise RecordError(f"'{what}' is not a time: {text!r}") from None


def parse_retired(text: str) -> list[RetiredToken]:
    """The entries of a retired list (one metadata value, or several joined by ``,``)."""
    out = []
    for item in (part.strip() for part in text.replace(" ", ",").split(",")):
        if "@" not in item:
            continue
        token_id, _, times = item.partition("@")
        revoke_after, _, expires_at = times.partition("+")
        out.append(RetiredToken(_full_id(token_id), _moment(revoke_after, "retired"),
                                _moment(expires_at, "retired") if expires_at else None))
    return out


def retired_from_metadata(metadata: Mapping[str, str]) -> list[RetiredToken]:
    """The retired tokens listed over :data:`RETIRED_KEYS` of a store's metadata."""
    return parse_retired(",".join(metadata.get(key) or "" for key in RETIRED_KEYS))


def spread_retired(entries: Iterable[RetiredToken], *,
                   now: datetime | None = None) -> tuple[dict[str, str | None], tuple[RetiredToken, ...]]:
    """The list over :data:`RETIRED_KEYS` (``None`` for a key left empty), and the entries left
    out. When they do not all fit, tokens already expired at ``now`` go first, oldest first
    (nothing is left to revoke, and JFrog lists no expired token, so the sweep cannot mistake one
    for an orphan); the entries that still do not fit are the last ones."""
    entries = list(entries)
    left_out: list[RetiredToken] = []
    chunks, rest = _chunks(entries)
    expired = sorted((e for e in entries if now is not None and e.expires_at is not None and e.expires_at <= now),
                     key=lambda e: e.expires_at)
    while rest and expired:
        gone = expired.pop(0)
        entries.remove(gone)
        left_out.append(gone)
        chunks, rest = _chunks(entries)
    spread: dict[str, str | None] = {key: None for key in RETIRED_KEYS}
    spread.update({key: chunk or None for key, chunk in zip(RETIRED_KEYS, chunks)})
    return spread, (*left_out, *rest)


def retired_room(entries: Iterable[RetiredToken], *, now: datetime | None = None) -> None:
    """Raise :class:`RetiredOverflow` when ``entries`` cannot all be listed (expired ones aside)."""
    entries = list(entries)
    _, left_out = spread_retired(entries, now=now)
    lost = [e for e in left_out if now is None or e.expires_at is None or e.expires_at > now]
    if lost:
        fits = len(entries) - len(lost)
        raise RetiredOverflow(f"the metadata can list {fits} retired tokens ({len(RETIRED_KEYS)} keys of "
                              f"{RETIRED_CHUNK} characters) and the list would hold {len(entries)}")


def _chunks(entries: list[RetiredToken]) -> tuple[list[str], list[RetiredToken]]:
    chunks = [""]
    for index, retired in enumerate(entries):
        entry = retired_entry(retired)
        if len(chunks[-1]) + len(entry) + 1 > RETIRED_CHUNK:
            if len(chunks) == len(RETIRED_KEYS):
                return chunks, entries[index:]
            chunks.append("")
        chunks[-1] = f"{chunks[-1]},{entry}" if chunks[-1] else entry
    return chunks, []


@dataclass(frozen=True, repr=False)
class SecretRecord:
    access_token: str
    token_id: str
    username: str
    scope: str
    url: str
    issued_at: datetime
    expires_at: datetime | None
    target: str
    generation: int = 1
    token_type: str = "Bearer"
    refresh_token: str | None = None
    reference_token: str | None = None
    retired: tuple[RetiredToken, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    rotator_extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        register(self.access_token, self.refresh_token, self.reference_token)

    def __repr__(self) -> str:
        return (f"SecretRecord(target={self.target!r}, token_id={self.token_id!r}, username={self.username!r}, "
                f"generation={self.generation}, expires_at={self.expires_at}, retired={len(self.retired)}, "
                f"access_token={REDACTED!r})")

    # -- (de)serialisation ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_id": self.token_id,
            "token_type": self.token_type,
            "username": self.username,
            "scope": self.scope,
            "url": self.url,
            "expires_at": utc_iso(self.expires_at) if self.expires_at else None,
            "issued_at": utc_iso(self.issued_at),
        }
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.reference_token:
            out["reference_token"] = self.reference_token
        rotator: dict[str, Any] = {"schema": SCHEMA, "target": self.target, "generation": self.generation,
                                   "retired": [r.to_json() for r in self.retired]}
        rotator.update(self.rotator_extra)
        out["rotator"] = rotator
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, data: Any) -> SecretRecord:
        """Parse a stored value; :class:`RecordError` names the first field that is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"the stored value is a JSON {type(data).__name__}, not an object")
        for key in ("access_token", "token_id"):
            if not isinstance(data.get(key), str) or not data.get(key):
                raise RecordError(f"field '{key}' is missing or not a non-empty string")
        rot = data.get("rotator")
        if rot is None:
            rot = {}
        if not isinstance(rot, dict):
            raise RecordError("field 'rotator' must be an object")
        retired = []
        for i, item in enumerate(rot.get("retired") or []):
            if not isinstance(item, dict) or not isinstance(item.get("token_id"), str):
                raise RecordError(f"field 'rotator.retired[{i}]' must be an object with a 'token_id'")
            expires = item.get("expires_at")
            retired.append(RetiredToken(
                item["token_id"],
                parse_time(item.get("revoke_after"), f"rotator.retired[{i}].revoke_after"),
                parse_time(expires, f"rotator.retired[{i}].expires_at") if expires is not None else None,
            ))
        generation = rot.get("generation", 0)
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise RecordError("field 'rotator.generation' must be a non-negative integer")
        expires = data.get("expires_at")
        issued = data.get("issued_at")
        return cls(
            access_token=data["access_token"],
            token_id=data["token_id"],
            token_type=str(data.get("token_type") or "Bearer"),
            username=str(data.get("username") or ""),
            scope=str(data.get("scope") or ""),
            url=str(data.get("url") or ""),
            issued_at=parse_time(issued, "issued_at") if issued is not None else datetime.fromtimestamp(0, timezone.utc),
            expires_at=parse_time(expires, "expires_at") if expires is not None else None,
            refresh_token=data.get("refresh_token") or None,
            reference_token=data.get("reference_token") or None,
            target=str(rot.get("target") or ""),
            generation=generation,
            retired=tuple(retired),
            extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
            rotator_extra={k: v for k, v in rot.items() if k not in _ROTATOR_KEYS},
        )

    @classmethod
    def loads(cls, text: str) -> SecretRecord:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"the stored value is not valid JSON ({exc.msg} at line {exc.lineno} "
                              f"column {exc.colno})") from None
        return cls.from_json(data)

    # -- derived --------------------------------------------------------------------------
    def metadata(self, *, now: datetime | None = None) -> dict[str, str | None]:
        """Non-secret facts for stores with metadata (Vault custom_metadata, AWS tags).

        ``None`` removes a key (Vault refuses empty values). The retired tokens are spread over
        :data:`RETIRED_KEYS` in the compact form above, each value at most :data:`RETIRED_CHUNK`
        characters: for a document target this list *is* the bookkeeping, and a live token cut
        from it would look like an orphan to the sweep, so the engine refuses a rotation whose
        list would not fit (:func:`retired_room`) before it mints. What :func:`spread_retired`
        leaves out here is expired (at ``now``) or, for our record, still listed in the record.
        ``retired_count`` is the record's count.
        """
        spread, _ = spread_retired(self.retired, now=now)
        return {
            "managed_by": MANAGED_BY,
            "target": self.target or None,
            "token_id": self.token_id,
            "username": self.username or None,
            "issued_at": utc_iso(self.issued_at),
            "expires_at": utc_iso(self.expires_at) if self.expires_at else "never",
            "generation": str(self.generation),
            **spread,
            "retired_count": str(len(self.retired)),
        }

    def without_retired(self, token_ids: set[str]) -> SecretRecord:
        return replace(self, retired=tuple(r for r in self.retired if r.token_id not in token_ids))
