"""Issued tokens: the record, its value formats, how one is signed, the table that finds it by id
or by value, the answers that show it, and the query of ``GET /tokens``.

Nothing here locks: :class:`~rotator.emulator.model.AccessModel` holds its one lock around every
use of a :class:`TokenTable`. JFrog's pages: https://jfrog.com/help/r/jfrog-rest-apis/create-token,
https://jfrog.com/help/r/jfrog-rest-apis/get-tokens; the emulator's rules are in docs/emulator.md.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import string
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rotator.emulator.jwt_signer import JwtSigner
from rotator.emulator.policy import AccessPolicy
from rotator.emulator.validation import TokenRequest, as_bool, bad_request

DEFAULT_AUDIENCE = "*@*"

ORDER_KEYS = {
    "created": lambda r: (r.issued_at, r.seq),
    "token_id": lambda r: r.token_id,
    "owner": lambda r: (r.username, r.seq),
    "subject": lambda r: (r.username, r.seq),
    # Non-expiring tokens sort after every expiring one.
    "expiry": lambda r: (r.expiry is None, r.expiry or 0, r.seq),
}
_ALNUM = string.ascii_letters + string.digits
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_instance_id() -> str:
    """A 26-character lowercase ULID-like id, as in ``jfac@01g5hek6kb29520rbz71v91cw9``."""
    return "01" + "".join(secrets.choice(_CROCKFORD) for _ in range(24))


def new_reference_token(expiry: int | None) -> str:
    """64-character reference token: base64 of ``reftkn:01:<10-digit expiry|0000000000>:<27 alnum>``.

    48 bytes encode to exactly 64 characters without padding, and ASCII digits, ``:`` and
    alphanumerics never produce ``+`` or ``/``, so the result always matches ``cmVmd[A-Za-z0-9]{59}``.
    """
    stamp = f"{min(expiry, 9_999_999_999):010d}" if expiry else "0" * 10
    raw = f"reftkn:01:{stamp}:{''.join(secrets.choice(_ALNUM) for _ in range(27))}"
    return base64.b64encode(raw.encode("ascii")).decode("ascii")


@dataclass
class TokenRecord:
    """One issued token. The access, refresh and reference values are aliases of this record."""

    token_id: str
    username: str
    scope: str
    audience: str
    issued_at: int
    expiry: int | None
    refreshable: bool
    revocable: bool
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    reference_token: str | None = field(default=None, repr=False)
    description: str | None = None
    project: str | None = None
    force_revocable: bool = False
    revoked: bool = False
    persistent: bool = True  # False: shorter than the persistency threshold, never stored by Access
    last_used: int | None = None
    internal: bool = False  # the emulator's own admin token: not counted by live_token_count
    seq: int = 0  # creation order, to sort tokens issued in the same second

    def is_expired(self, now: float) -> bool:
        return self.expiry is not None and now >= self.expiry

    @property
    def lifetime(self) -> int:
        return 0 if self.expiry is None else self.expiry - self.issued_at


def sign_token(
    signer: JwtSigner,
    policy: AccessPolicy,
    req: TokenRequest,
    *,
    username: str,
    now: int,
    lifetime: int,
    scope: str,
    audience: str,
) -> TokenRecord:
    """Build and sign the record of a new token (no state touched; the caller inserts it)."""
    expiry = now + lifetime if lifetime else None
    revocable = expiry is None or lifetime >= policy.revocable_expiry_threshold or req.force_revocable
    claims: list[tuple[str, object]] = []
    if revocable:
        claims.append(("ext", '{"revocable":"true"}'))  # a JSON *string*, as Access writes it
    claims += [("sub", f"{signer.issuer}/users/{username}"), ("scp", scope), ("aud", audience),
               ("iss", signer.issuer)]
    if expiry is not None:
        claims.append(("exp", expiry))
    claims.append(("iat", now))
    jwt, jti = signer.sign(claims)
    refreshable = req.refreshable and policy.allow_refreshable
    return TokenRecord(
        token_id=jti,
        username=username,
        scope=scope,
        audience=audience,
        issued_at=now,
        expiry=expiry,
        refreshable=refreshable,
        revocable=revocable,
        access_token=jwt,
        refresh_token=str(uuid.uuid4()) if refreshable else None,
        reference_token=new_reference_token(expiry) if req.include_reference_token else None,
        description=req.description,
        project=req.project_key,
        force_revocable=req.force_revocable,
        persistent=policy.persists(lifetime),
    )


class TokenTable:
    """Every issued token, found by id, by value (access or reference token) or by refresh token."""

    def __init__(self) -> None:
        self._by_id: dict[str, TokenRecord] = {}
        self._by_value: dict[str, TokenRecord] = {}
        self._by_refresh: dict[str, TokenRecord] = {}
        self._seq = itertools.count()

    def insert(self, record: TokenRecord) -> None:
        record.seq = next(self._seq)
        self._by_id[record.token_id] = record
        self._by_value[record.access_token] = record
        if record.reference_token:
            self._by_value[record.reference_token] = record
        if record.refresh_token:
            self._by_refresh[record.refresh_token] = record

    def revoke(self, record: TokenRecord) -> None:
        """Kill every value of the token: the refresh token stops resolving at once."""
        record.revoked = True
        if record.refresh_token:
            self._by_refresh.pop(record.refresh_token, None)

    def by_value(self, value: str) -> TokenRecord | None:
        return self._by_value.get(value)

    def by_refresh_token(self, value: str) -> TokenRecord | None:
        return self._by_refresh.get(value)

    def live(self, token_id: str, now: float) -> TokenRecord | None:
        """The token if it exists and is neither revoked nor expired."""
        record = self._by_id.get(token_id)
        if record is None or record.revoked or record.is_expired(now):
            return None
        return record

    def all_live(self, now: float) -> list[TokenRecord]:
        """Tokens neither revoked nor expired, oldest first."""
        return [r for r in self._by_id.values() if not r.revoked and not r.is_expired(now)]

    def stored(self, token_id: str, now: float) -> TokenRecord | None:
        """The live token as Access's database knows it: ``None`` for one too short to be stored."""
        record = self.live(token_id, now)
        return record if record is not None and record.persistent else None

    def values(self) -> list[str]:
        """Every secret value ever issued: access, reference and refresh tokens (revoked ones too)."""
        return list(self._by_value) + [r.refresh_token for r in self._by_id.values() if r.refresh_token]

    def all_stored(self, now: float) -> list[TokenRecord]:
        """The live tokens Access's database holds (what ``GET /tokens`` can list), oldest first."""
        return [r for r in self.all_live(now) if r.persistent]


@dataclass(frozen=True)
class TokenQuery:
    """The query string of ``GET /tokens``, validated: filters and order.

    ``description`` matches exactly, or as a prefix when it ends with ``*``.
    """

    order_by: str = "created"
    descending: bool = False
    username: str | None = None
    token_id: str | None = None
    refreshable: bool | None = None
    description: str | None = None

    @classmethod
    def from_params(cls, filters: Mapping[str, str]) -> "TokenQuery":
        order_by = filters.get("order_by") or "created"
        if order_by not in ORDER_KEYS:
            raise bad_request(f"Invalid order_by '{order_by}': expected one of {', '.join(ORDER_KEYS)}")
        descending = as_bool("descending_order", filters.get("descending_order") or None)
        refreshable = filters.get("refreshable")
        return cls(
            order_by=order_by,
            descending=descending,
            username=filters.get("username") or None,
            token_id=filters.get("token_id") or None,
            refreshable=None if refreshable in (None, "") else as_bool("refreshable", refreshable),
            description=filters.get("description") or None,
        )

    def select(self, records: Iterable[TokenRecord], *, owner: str | None) -> list[TokenRecord]:
        """The matching records in order; ``owner`` (for a non-admin caller) keeps only theirs."""
        chosen = [r for r in records if self._matches(r) and (owner is None or r.username == owner)]
        chosen.sort(key=ORDER_KEYS[self.order_by], reverse=self.descending)
        return chosen

    def _matches(self, record: TokenRecord) -> bool:
        if self.username and record.username != self.username:
            return False
        if self.token_id and record.token_id != self.token_id:
            return False
        if self.refreshable is not None and record.refreshable != self.refreshable:
            return False
        if not self.description:
            return True
        if self.description.endswith("*"):
            return record.description is not None and record.description.startswith(self.description[:-1])
        return record.description == self.description


def token_response(record: TokenRecord, *, grant_type: str | None = None) -> dict:
    """The create/refresh answer: ``expires_in`` omitted for non-expiring tokens."""
    out: dict[str, object] = {"token_id": record.token_id, "access_token": record.access_token}
    if record.refresh_token:
        out["refresh_token"] = record.refresh_token
    if record.expiry is not None:
        out["expires_in"] = record.lifetime
    out["scope"] = record.scope
    out["token_type"] = "Bearer"
    if record.reference_token:
        out["reference_token"] = record.reference_token
    if grant_type:
        out["grant_type"] = grant_type
    return out


def token_info(record: TokenRecord, issuer: str, *, show_last_used: bool) -> dict:
    """A list/get element, keys in the documented order, optional ones only when present."""
    out: dict[str, object] = {"token_id": record.token_id, "subject": f"{issuer}/users/{record.username}"}
    if record.expiry is not None:
        out["expiry"] = record.expiry
    out["issued_at"] = record.issued_at
    out["issuer"] = issuer
    if record.description is not None:
        out["description"] = record.description
    out["refreshable"] = record.refreshable
    if show_last_used and record.last_used is not None:
        out["last_used"] = record.last_used
    if record.project is not None:
        out["project"] = record.project
    return out
