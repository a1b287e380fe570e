"""State and rules of the emulated JFrog Access token service, with no HTTP in sight.

Reference: /work/shared/reference/jfrog-access-api.md (§1 endpoints, §2 token semantics, §6 checklist).
JFrog pages: https://jfrog.com/help/r/jfrog-rest-apis/create-token,
https://jfrog.com/help/r/jfrog-rest-apis/notes-on-the-create-token-api,
https://jfrog.com/help/r/jfrog-rest-apis/refresh-token, https://jfrog.com/help/r/jfrog-rest-apis/get-tokens,
https://jfrog.com/help/r/jfrog-rest-apis/revoke-token-by-id,
https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange,
https://jfrog.com/help/r/jfrog-rest-apis/recommended-configurations (policy knobs).

Every public method of :class:`AccessModel` takes already-decoded arguments plus the authenticated
:class:`Principal` and returns the JSON-ready dict of the answer, or raises :class:`AccessError`.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rotator.emulator.jwt_signer import JwtSigner
from rotator.emulator.validation import (
    AccessError,
    TokenRequest,
    as_bool,
    as_str,
    bad_request,
    forbidden,
    not_found,
    unauthorized,
)

__all__ = [
    "AccessError",
    "AccessModel",
    "AccessPolicy",
    "ManualClock",
    "OidcProvider",
    "Principal",
    "TokenRecord",
    "TokenRequest",
    "User",
]

USER_SCOPE = "applied-permissions/user"
ADMIN_SCOPE = "applied-permissions/admin"
DEFAULT_AUDIENCE = "*@*"
REFRESH_NOT_FOUND = "Token matching the provided refresh token was not found."
EXPIRED_MESSAGE = "Invalid token, expired"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:jwt")
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

_ORDER_KEYS = {
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


class ManualClock:
    """A clock for tests: ``AccessModel(clock=ManualClock())`` then ``clock.advance(3600)``."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class AccessPolicy:
    """The ``access.config`` token knobs (reference §2.2, recommended-configurations page).

    * ``default_expiry``: lifetime when ``expires_in`` is omitted; 0 = non-expiring.
    * ``max_expiry``: 0 = not set. Non-admins are capped at ``max_expiry`` when set, otherwise at
      ``default_expiry`` (the CLI/docs rule), and may not ask for non-expiring tokens while any cap
      applies. Admins are never capped. ``max_expiry`` must be >= ``default_expiry`` when set.
    * ``allow_refreshable``: when False, ``refreshable`` is silently ignored.
    * ``revocable_expiry_threshold``: tokens living shorter than this are not revocable unless
      created with ``force_revocable``.
    * ``refresh_grace``: ``token.refresh-expiry``: seconds after expiry during which a token can
      still be refreshed (and may authenticate its own refresh request).
    * ``allow_basic_token_creation``: "Enable Token Generation via API" for username+password.
    * ``track_last_used``: report ``last_used`` in token listings (7.108.3+, off by default).
    * ``artifactory_anonymous_access``: let unauthenticated calls read ``api/system/version``.
    """

    default_expiry: int = 31_536_000
    max_expiry: int = 0
    allow_refreshable: bool = True
    revocable_expiry_threshold: int = 21_600
    refresh_grace: int = 86_400
    allow_basic_token_creation: bool = False
    track_last_used: bool = False
    artifactory_anonymous_access: bool = False

    def __post_init__(self) -> None:
        for name in ("default_expiry", "max_expiry", "revocable_expiry_threshold", "refresh_grace"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_expiry and self.default_expiry > self.max_expiry:
            raise ValueError("max_expiry must be >= default_expiry (or 0)")

    @property
    def non_admin_cap(self) -> int:
        """Longest lifetime a non-admin may request; 0 means unlimited (non-expiring allowed)."""
        return self.max_expiry or self.default_expiry


@dataclass
class User:
    name: str
    admin: bool = False
    groups: tuple[str, ...] = ()
    enabled: bool = True
    password: str | None = field(default=None, repr=False)


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
    last_used: int | None = None
    internal: bool = False  # the emulator's own admin token: not counted by live_token_count
    seq: int = 0  # creation order, to sort tokens issued in the same second

    def is_expired(self, now: float) -> bool:
        return self.expiry is not None and now >= self.expiry

    @property
    def lifetime(self) -> int:
        return 0 if self.expiry is None else self.expiry - self.issued_at


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user name, the effective scope and the token used (None for a password)."""

    username: str
    scope: str
    is_admin: bool
    token: TokenRecord | None = None

    @property
    def via_password(self) -> bool:
        return self.token is None


@dataclass
class OidcProvider:
    """A configured OIDC integration: accepted subject (ID) tokens map to a username."""

    name: str
    subject_tokens: dict[str, str] = field(repr=False)
    provider_type: str = "GenericOidc"
    scope: str = USER_SCOPE
    audience: str = DEFAULT_AUDIENCE
    expires_in: int = 3600


class AccessModel:
    """Users, tokens, OIDC providers and the rules of the Access token API.

    ``clock`` (default ``time.time``) is injectable so tests can move time forward. One lock
    guards all state; RSA signing happens outside it so concurrent minting does not serialise.
    """

    def __init__(
        self,
        policy: AccessPolicy | None = None,
        *,
        clock: Callable[[], float] | None = None,
        issuer_id: str | None = None,
        signing_key: object | None = None,
    ) -> None:
        if issuer_id is not None and not re.fullmatch(r"[0-9a-z]{26}", issuer_id):
            raise ValueError("issuer_id must be 26 lowercase letters or digits")
        self.policy = policy or AccessPolicy()
        self._clock = clock or time.time
        self.instance_id = issuer_id or new_instance_id()
        self.issuer = f"jfac@{self.instance_id}"
        self.service_id = f"jfrt@{self.instance_id}"
        self.signer = JwtSigner(self.issuer, signing_key)  # type: ignore[arg-type]
        self.mint_count = 0
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._users: dict[str, User] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._by_value: dict[str, TokenRecord] = {}  # access token and reference token values
        self._by_refresh: dict[str, TokenRecord] = {}
        self._oidc: dict[str, OidcProvider] = {}

    def now(self) -> float:
        return float(self._clock())

    # ---- users and configuration -------------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        groups: Iterable[str] = (),
        password: str | None = None,
        enabled: bool = True,
    ) -> User:
        """Create the user, or replace its attributes if it exists (e.g. to disable it)."""
        user = User(name, admin=admin, groups=tuple(groups), enabled=enabled, password=password)
        with self._lock:
            self._users[name] = user
        return user

    def get_user(self, name: str) -> User | None:
        with self._lock:
            return self._users.get(name)

    def add_oidc_provider(self, provider: OidcProvider) -> None:
        with self._lock:
            self._oidc[provider.name] = provider

    # ---- authentication --------------------------------------------------------------------

    def authenticate_bearer(self, value: str, *, allow_expired: bool = False, touch: bool = True) -> Principal:
        """Resolve a bearer value (JWT, reference token or injected credential) to a principal.

        ``allow_expired`` admits a token expired less than ``refresh_grace`` ago: only used for
        refresh requests, which the Vault plugin sends with the expired token (reference §5.1).
        ``touch=False`` leaves ``last_used`` alone (for inspection from tests).
        """
        now = self.now()
        with self._lock:
            record = self._by_value.get(value)
            if record is None:
                raise unauthorized()
            if record.revoked:
                raise unauthorized("Invalid token, revoked")
            if record.is_expired(now) and not (
                allow_expired and now < record.expiry + self.policy.refresh_grace  # type: ignore[operator]
            ):
                raise unauthorized(EXPIRED_MESSAGE)
            user = self._users.get(record.username)
            if user is not None and not user.enabled:
                raise unauthorized()
            if touch and self.policy.track_last_used:
                record.last_used = int(now)
            return self._principal_locked(record)

    def authenticate_basic(self, username: str, password: str) -> Principal:
        """Basic auth: a user's password, or one of the user's own tokens used as the password."""
        with self._lock:
            user = self._users.get(username)
            by_password = user is not None and user.password is not None and secrets.compare_digest(
                user.password.encode(), password.encode()
            )
            if by_password:
                if not user.enabled:
                    raise unauthorized()
                return Principal(username, USER_SCOPE, user.admin, None)
            record = self._by_value.get(password)
        if record is not None and record.username == username:
            return self.authenticate_bearer(password)
        raise unauthorized()

    def authenticates(self, value: str) -> bool:
        try:
            self.authenticate_bearer(value, touch=False)
        except AccessError:
            return False
        return True

    def _principal_locked(self, record: TokenRecord) -> Principal:
        scopes = record.scope.split()
        user = self._users.get(record.username)
        is_admin = ADMIN_SCOPE in scopes or (USER_SCOPE in scopes and user is not None and user.admin)
        return Principal(record.username, record.scope, is_admin, record)

    # ---- minting ---------------------------------------------------------------------------

    def _sign_record(
        self, username: str, req: TokenRequest, lifetime: int, *, scope: str, audience: str
    ) -> TokenRecord:
        """Build and sign a record (no state touched; callers insert it under the lock)."""
        now = int(self.now())
        expiry = now + lifetime if lifetime else None
        revocable = (
            expiry is None or lifetime >= self.policy.revocable_expiry_threshold or req.force_revocable
        )
        claims: list[tuple[str, object]] = []
        if revocable:
            claims.append(("ext", '{"revocable":"true"}'))  # a JSON *string*, as Access writes it
        claims += [("sub", f"{self.issuer}/users/{username}"), ("scp", scope), ("aud", audience), ("iss", self.issuer)]
        if expiry is not None:
            claims.append(("exp", expiry))
        claims.append(("iat", now))
        jwt, jti = self.signer.sign(claims)
        refreshable = req.refreshable and self.policy.allow_refreshable
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
        )

    def _insert_locked(self, record: TokenRecord, *, counted: bool) -> None:
        record.seq = next(self._seq)
        self._tokens[record.token_id] = record
        self._by_value[record.access_token] = record
        if record.reference_token:
            self._by_value[record.reference_token] = record
        if record.refresh_token:
            self._by_refresh[record.refresh_token] = record
        if counted:
            self.mint_count += 1

    def _mint(
        self, username: str, req: TokenRequest, lifetime: int, *, counted: bool, internal: bool = False
    ) -> TokenRecord:
        record = self._sign_record(
            username, req, lifetime, scope=req.scope or USER_SCOPE, audience=req.audience or DEFAULT_AUDIENCE
        )
        record.internal = internal
        with self._lock:
            self._insert_locked(record, counted=counted)
        return record

    def _check_identity_target_locked(self, username: str, scope: str) -> None:
        if USER_SCOPE not in scope.split():
            return
        user = self._users.get(username)
        if user is None:
            raise bad_request(f"User '{username}' does not exist: scope {USER_SCOPE} requires an existing user")
        if not user.enabled:
            raise bad_request(f"User '{username}' is disabled")

    def create_token(self, principal: Principal, req: TokenRequest, *, counted: bool = True) -> dict:
        """``POST /tokens`` with ``grant_type=client_credentials`` (reference §1.2)."""
        username = req.username or principal.username
        scope = req.scope or USER_SCOPE
        lifetime = self.policy.default_expiry if req.expires_in is None else req.expires_in
        if not principal.is_admin:
            if username != principal.username:
                raise forbidden("Only an admin may create a token for another user")
            if scope.split() != [USER_SCOPE]:
                raise forbidden(f"Non-admin users may only create identity tokens (scope {USER_SCOPE})")
            if req.project_key:
                raise forbidden("Only an admin may create project tokens")
            cap = self.policy.non_admin_cap
            if cap and lifetime == 0:
                raise forbidden("Only an admin may create a non-expiring token")
            if cap and lifetime > cap:
                raise forbidden(f"Token expiry {lifetime}s exceeds the maximum of {cap}s allowed for non-admin users")
        with self._lock:
            self._check_identity_target_locked(username, scope)
        return self.token_response(self._mint(username, req, lifetime, counted=counted))

    def issue(self, username: str, req: TokenRequest, *, internal: bool = False) -> TokenRecord:
        """Mint a token for ``username`` bypassing authentication and expiry caps (Python API).

        A missing user is created (non-admin) when the scope needs one, for test convenience.
        """
        with self._lock:
            if USER_SCOPE in (req.scope or USER_SCOPE).split() and username not in self._users:
                self._users[username] = User(username)
        lifetime = self.policy.default_expiry if req.expires_in is None else req.expires_in
        return self._mint(username, req, lifetime, counted=False, internal=internal)

    def register_static_token(self, value: str, username: str, scope: str = ADMIN_SCOPE) -> TokenRecord:
        """Accept a caller-chosen credential string (e.g. ``--admin-token``) as a non-expiring token."""
        record = TokenRecord(
            token_id=str(uuid.uuid4()),
            username=username,
            scope=scope,
            audience=DEFAULT_AUDIENCE,
            issued_at=int(self.now()),
            expiry=None,
            refreshable=False,
            revocable=True,
            access_token=value,
            internal=True,
        )
        with self._lock:
            if value in self._by_value:
                raise ValueError("credential already registered")
            self._insert_locked(record, counted=False)
        return record

    def refresh(self, principal: Principal, req: TokenRequest, *, counted: bool = True) -> dict:
        """``POST /tokens`` with ``grant_type=refresh_token`` (reference §1.3, §2.6).

        The new token keeps the old one's user, scope, audience, description and project, and its
        lifetime unless ``expires_in`` is given; ``include_reference_token`` applies afresh. The old
        token (access, refresh and reference values) dies before the new one is signed.
        """
        if not req.refresh_token:
            raise bad_request("refresh_token is required when grant_type is refresh_token")
        now = self.now()
        with self._lock:
            old = self._by_refresh.get(req.refresh_token)
            if old is None or old.revoked or (
                old.expiry is not None and now >= old.expiry + self.policy.refresh_grace
            ):
                raise not_found(REFRESH_NOT_FOUND)
            if old.username != principal.username:
                raise forbidden("The authenticated user does not match the user of the refreshed token")
            lifetime = old.lifetime if req.expires_in is None else req.expires_in
            cap = self.policy.non_admin_cap
            if req.expires_in is not None and not principal.is_admin and cap and not 0 < lifetime <= cap:
                raise forbidden(f"Token expiry must be between 1 and {cap} seconds for non-admin users")
            self._revoke_locked(old)
        new_req = TokenRequest(
            refreshable=True,
            include_reference_token=req.include_reference_token,
            description=old.description,
            project_key=old.project,
            force_revocable=old.force_revocable,
        )
        record = self._sign_record(old.username, new_req, lifetime, scope=old.scope, audience=old.audience)
        with self._lock:
            self._insert_locked(record, counted=counted)
        return self.token_response(record, grant_type="refresh_token")

    @staticmethod
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

    # ---- revocation ------------------------------------------------------------------------

    def _revoke_locked(self, record: TokenRecord) -> None:
        record.revoked = True
        if record.refresh_token:
            self._by_refresh.pop(record.refresh_token, None)

    def _live_locked(self, token_id: str, now: float) -> TokenRecord | None:
        record = self._tokens.get(token_id)
        if record is None or record.revoked or record.is_expired(now):
            return None
        return record

    def _revoke_checked_locked(self, principal: Principal, record: TokenRecord | None) -> int:
        if record is None:
            return 204
        if not principal.is_admin and record.username != principal.username:
            raise forbidden("Only an admin may revoke another user's token")
        if not record.revocable:
            raise bad_request(
                f"Token '{record.token_id}' is not revocable: it expires in less than "
                f"{self.policy.revocable_expiry_threshold} seconds and was not created with force_revocable"
            )
        self._revoke_locked(record)
        return 200

    def revoke_by_id(self, principal: Principal, token_id: str) -> int:
        """``DELETE /tokens/{id}``: 200 revoked, 204 unknown/already revoked/expired.

        Non-revocable tokens (shorter than the threshold, not ``force_revocable``; reference §2.2)
        answer 400 BAD_REQUEST: the reference says they cannot be revoked but gives no status.
        """
        with self._lock:
            return self._revoke_checked_locked(principal, self._live_locked(token_id, self.now()))

    def revoke_me(self, principal: Principal) -> int:
        """``DELETE /tokens/me``; a password-authenticated caller has no token, hence 204."""
        if principal.token is None:
            return 204
        return self.revoke_by_id(principal, principal.token.token_id)

    def revoke_by_value(self, principal: Principal, value: str | None) -> dict | None:
        """``DELETE /tokens/revoke`` (admin only). Returns None (→ 204) for unknown/dead values."""
        if not principal.is_admin:
            raise forbidden("Only an admin may revoke a token by value")
        if not value:
            raise bad_request("The 'token' field is required")
        with self._lock:
            record = self._by_value.get(value)
            live = self._live_locked(record.token_id, self.now()) if record else None
            if self._revoke_checked_locked(principal, live) == 204:
                return None
            return {"revoked-token-id": live.token_id}  # type: ignore[union-attr]

    # ---- reading ---------------------------------------------------------------------------

    def token_info(self, record: TokenRecord) -> dict:
        """A list/get element, keys in the documented order, optional ones only when present."""
        out: dict[str, object] = {"token_id": record.token_id, "subject": f"{self.issuer}/users/{record.username}"}
        if record.expiry is not None:
            out["expiry"] = record.expiry
        out["issued_at"] = record.issued_at
        out["issuer"] = self.issuer
        if record.description is not None:
            out["description"] = record.description
        out["refreshable"] = record.refreshable
        if self.policy.track_last_used and record.last_used is not None:
            out["last_used"] = record.last_used
        if record.project is not None:
            out["project"] = record.project
        return out

    def list_tokens(self, principal: Principal, filters: Mapping[str, str]) -> dict:
        """``GET /tokens`` (reference §1.5). Revoked and expired tokens are not listed.

        ``description`` matches exactly, or as a prefix when it ends with ``*``.
        """
        order_by = filters.get("order_by") or "created"
        if order_by not in _ORDER_KEYS:
            raise bad_request(f"Invalid order_by '{order_by}': expected one of {', '.join(_ORDER_KEYS)}")
        descending = as_bool("descending_order", filters.get("descending_order") or None)
        refreshable = filters.get("refreshable")
        refreshable_flag = None if refreshable in (None, "") else as_bool("refreshable", refreshable)
        description = filters.get("description")
        now = self.now()
        with self._lock:
            records = [r for r in self._tokens.values() if not r.revoked and not r.is_expired(now)]
            if not principal.is_admin:
                records = [r for r in records if r.username == principal.username]
            if filters.get("username"):
                records = [r for r in records if r.username == filters["username"]]
            if filters.get("token_id"):
                records = [r for r in records if r.token_id == filters["token_id"]]
            if refreshable_flag is not None:
                records = [r for r in records if r.refreshable == refreshable_flag]
            if description:
                if description.endswith("*"):
                    prefix = description[:-1]
                    records = [r for r in records if r.description is not None and r.description.startswith(prefix)]
                else:
                    records = [r for r in records if r.description == description]
            records.sort(key=_ORDER_KEYS[order_by], reverse=descending)
            return {"tokens": [self.token_info(r) for r in records]}

    def get_token(self, principal: Principal, token_id: str) -> dict:
        """``GET /tokens/{id}``: 404 unknown/revoked/expired, 403 another user's (non-admin)."""
        with self._lock:
            record = self._live_locked(token_id, self.now())
            if record is None:
                raise not_found(f"Token with id '{token_id}' was not found")
            if not principal.is_admin and record.username != principal.username:
                raise forbidden("Only an admin may read another user's token")
            return self.token_info(record)

    def get_me(self, principal: Principal) -> dict:
        if principal.token is None:
            raise not_found("The request was not authenticated with a token")
        return self.get_token(principal, principal.token.token_id)

    # ---- OIDC token exchange ---------------------------------------------------------------

    def oidc_exchange(self, params: Mapping[str, object], *, counted: bool = False) -> dict:
        """``POST /oidc/token`` (reference §1.8): 400 for bad input, 401 for an unknown ID token."""
        fields = {
            name: as_str(name, params.get(name))
            for name in (
                "grant_type", "subject_token_type", "subject_token", "provider_name", "project_key", "audience"
            )
        }
        if fields["grant_type"] != TOKEN_EXCHANGE_GRANT:
            raise bad_request(f"Invalid grant_type: expected {TOKEN_EXCHANGE_GRANT}")
        if fields["subject_token_type"] not in (None, *ID_TOKEN_TYPES):
            raise bad_request(f"Unsupported subject_token_type: {fields['subject_token_type']}")
        if not fields["provider_name"]:
            raise bad_request("provider_name is mandatory")
        if not fields["subject_token"]:
            raise bad_request("subject_token is mandatory")
        with self._lock:
            provider = self._oidc.get(fields["provider_name"])  # type: ignore[arg-type]
        if provider is None:
            raise bad_request(f"OIDC provider '{fields['provider_name']}' was not found")
        username = provider.subject_tokens.get(fields["subject_token"])  # type: ignore[arg-type]
        if username is None:
            raise unauthorized("Failed to validate the subject token")
        req = TokenRequest(
            include_reference_token=as_bool("include_reference_token", params.get("include_reference_token")),
            project_key=fields["project_key"],
            scope=provider.scope,
            audience=provider.audience,
        )
        record = self._mint(username, req, provider.expires_in, counted=counted)
        out: dict[str, object] = {"access_token": record.access_token, "token_type": "Bearer"}
        if record.expiry is not None:
            out["expires_in"] = record.lifetime
        out.update(scope=record.scope, issued_token_type=ISSUED_TOKEN_TYPE, username=username)
        if record.reference_token:
            out["reference_token"] = record.reference_token
        return out

    # ---- inspection for tests and benchmarks -----------------------------------------------

    def is_token_active(self, token_id: str) -> bool:
        with self._lock:
            return self._live_locked(token_id, self.now()) is not None

    def live_token_count(self, *, description_prefix: str | None = None, username: str | None = None) -> int:
        now = self.now()
        with self._lock:
            return sum(
                1
                for r in self._tokens.values()
                if not r.revoked
                and not r.is_expired(now)
                and not r.internal
                and (description_prefix is None or (r.description or "").startswith(description_prefix))
                and (username is None or r.username == username)
            )
