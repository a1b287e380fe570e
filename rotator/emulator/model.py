"""State and rules of the emulated JFrog Access token service, with no HTTP in sight.

JFrog pages: https://jfrog.com/help/r/jfrog-rest-apis/create-token,
https://jfrog.com/help/r/jfrog-rest-apis/notes-on-the-create-token-api,
https://jfrog.com/help/r/jfrog-rest-apis/refresh-token, https://jfrog.com/help/r/jfrog-rest-apis/get-tokens,
https://jfrog.com/help/r/jfrog-rest-apis/revoke-token-by-id,
https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange; what the emulator does of them is in
docs/emulator.md.

Every public method of :class:`AccessModel` takes already-decoded arguments plus the authenticated
:class:`~rotator.emulator.users.Principal` and returns the JSON-ready dict of the answer, or raises
:class:`~rotator.emulator.validation.AccessError`. The pieces it holds: :mod:`.policy` (settings),
:mod:`.users` (users and principals), :mod:`.tokens` (records, signing, lookup, listing),
:mod:`.oidc` (the exchange).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping

from rotator.emulator.jwt_signer import JwtSigner
from rotator.emulator.oidc import ExchangeRequest, OidcProvider, exchange_response
from rotator.emulator.policy import AccessPolicy
from rotator.emulator.tokens import (
    DEFAULT_AUDIENCE,
    TokenQuery,
    TokenRecord,
    TokenTable,
    new_instance_id,
    sign_token,
    token_info,
    token_response,
)
from rotator.emulator.users import ADMIN_SCOPE, USER_SCOPE, Principal, User, token_principal
from rotator.emulator.validation import (
    AccessError,
    TokenRequest,
    bad_request,
    forbidden,
    not_found,
    unauthorized,
)

REFRESH_NOT_FOUND = "Token matching the provided refresh token was not found."
EXPIRED_MESSAGE = "Invalid token, expired"


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
        self._users: dict[str, User] = {}
        self._tokens = TokenTable()
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
        refresh requests, which the Vault plugin sends with the expired token.
        ``touch=False`` leaves ``last_used`` alone (for inspection from tests).
        """
        now = self.now()
        with self._lock:
            record = self._tokens.by_value(value)
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
            return token_principal(record, user)

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
            record = self._tokens.by_value(password)
        if record is not None and record.username == username:
            return self.authenticate_bearer(password)
        raise unauthorized()

    def authenticates(self, value: str) -> bool:
        try:
            self.authenticate_bearer(value, touch=False)
        except AccessError:
            return False
        return True

    # ---- minting ---------------------------------------------------------------------------

    def _sign(self, username: str, req: TokenRequest, lifetime: int, *, scope: str, audience: str) -> TokenRecord:
        return sign_token(self.signer, self.policy, req, username=username, now=int(self.now()),
                          lifetime=lifetime, scope=scope, audience=audience)

    def _insert_locked(self, record: TokenRecord, *, counted: bool) -> None:
        self._tokens.insert(record)
        if counted:
            self.mint_count += 1

    def _mint(
        self, username: str, req: TokenRequest, lifetime: int, *, counted: bool, internal: bool = False
    ) -> TokenRecord:
        record = self._sign(
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
        """``POST /tokens`` with ``grant_type=client_credentials``."""
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
        return token_response(self._mint(username, req, lifetime, counted=counted))

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
            if self._tokens.by_value(value) is not None:
                raise ValueError("credential already registered")
            self._insert_locked(record, counted=False)
        return record

    def refresh(self, principal: Principal, req: TokenRequest, *, counted: bool = True) -> dict:
        """``POST /tokens`` with ``grant_type=refresh_token``.

        The new token keeps the old one's user, scope, audience, description and project, and its
        lifetime unless ``expires_in`` is given; ``include_reference_token`` applies afresh. The old
        token (access, refresh and reference values) dies before the new one is signed.
        """
        if not req.refresh_token:
            raise bad_request("refresh_token is required when grant_type is refresh_token")
        now = self.now()
        with self._lock:
            old = self._tokens.by_refresh_token(req.refresh_token)
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
            self._tokens.revoke(old)
        new_req = TokenRequest(
            refreshable=True,
            include_reference_token=req.include_reference_token,
            description=old.description,
            project_key=old.project,
            force_revocable=old.force_revocable,
        )
        record = self._sign(old.username, new_req, lifetime, scope=old.scope, audience=old.audience)
        with self._lock:
            self._insert_locked(record, counted=counted)
        return token_response(record, grant_type="refresh_token")

    # ---- revocation ------------------------------------------------------------------------

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
        self._tokens.revoke(record)
        return 200

    def revoke_by_id(self, principal: Principal, token_id: str) -> int:
        """``DELETE /tokens/{id}``: 200 revoked, 204 unknown/already revoked/expired/never stored.

        Non-revocable tokens (shorter than the threshold, not ``force_revocable``) answer 400
        BAD_REQUEST: JFrog documents that they cannot be revoked but not the status it answers.
        A token under the persistency threshold is unknown to Access, hence 204, and lives on.
        """
        with self._lock:
            return self._revoke_checked_locked(principal, self._tokens.stored(token_id, self.now()))

    def revoke_me(self, principal: Principal) -> int:
        """``DELETE /tokens/me``; a password-authenticated caller has no token, hence 204."""
        if principal.token is None:
            return 204
        return self.revoke_by_id(principal, principal.token.token_id)

    def kill_value(self, value: str) -> bool:
        """A test hook (the ``revoked`` fault): the token with this value dies now, whatever its
        lifetime or revocability; False when no live token has it."""
        with self._lock:
            record = self._tokens.by_value(value)
            if record is None or record.revoked:
                return False
            self._tokens.revoke(record)
            return True

    def revoke_by_value(self, principal: Principal, value: str | None) -> dict | None:
        """``DELETE /tokens/revoke`` (admin only). Returns None (→ 204) for unknown/dead values."""
        if not principal.is_admin:
            raise forbidden("Only an admin may revoke a token by value")
        if not value:
            raise bad_request("The 'token' field is required")
        with self._lock:
            record = self._tokens.by_value(value)
            live = self._tokens.stored(record.token_id, self.now()) if record else None
            if self._revoke_checked_locked(principal, live) == 204:
                return None
            return {"revoked-token-id": live.token_id}  # type: ignore[union-attr]

    # ---- reading ---------------------------------------------------------------------------

    def _info(self, record: TokenRecord) -> dict:
        return token_info(record, self.issuer, show_last_used=self.policy.track_last_used)

    def list_tokens(self, principal: Principal, filters: Mapping[str, str]) -> dict:
        """``GET /tokens``: revoked, expired and never-stored tokens are not listed; a non-admin
        sees only theirs."""
        query = TokenQuery.from_params(filters)
        now = self.now()
        with self._lock:
            owner = None if principal.is_admin else principal.username
            return {"tokens": [self._info(r) for r in query.select(self._tokens.all_stored(now), owner=owner)]}

    def get_token(self, principal: Principal, token_id: str) -> dict:
        """``GET /tokens/{id}``: 404 unknown/revoked/expired/never stored, 403 another user's
        (non-admin)."""
        with self._lock:
            record = self._tokens.stored(token_id, self.now())
            if record is None:
                raise not_found(f"Token with id '{token_id}' was not found")
            if not principal.is_admin and record.username != principal.username:
                raise forbidden("Only an admin may read another user's token")
            return self._info(record)

    def get_me(self, principal: Principal) -> dict:
        """``GET /tokens/me``: the token the caller authenticated with, stored or not."""
        if principal.token is None:
            raise not_found("The request was not authenticated with a token")
        with self._lock:
            return self._info(principal.token)

    # ---- OIDC token exchange ---------------------------------------------------------------

    def oidc_exchange(self, params: Mapping[str, object], *, counted: bool = False) -> dict:
        """``POST /oidc/token``: 400 for bad input, 401 for an unknown ID token."""
        exchange = ExchangeRequest.from_params(params)
        with self._lock:
            provider = self._oidc.get(exchange.provider_name)
        if provider is None:
            raise bad_request(f"OIDC provider '{exchange.provider_name}' was not found")
        username, req = provider.accept(exchange)
        record = self._mint(username, req, provider.expires_in, counted=counted)
        return exchange_response(record, username)

    # ---- inspection for tests and benchmarks -----------------------------------------------

    def is_token_active(self, token_id: str) -> bool:
        with self._lock:
            return self._tokens.live(token_id, self.now()) is not None

    def issued_values(self) -> list[str]:
        with self._lock:
            return self._tokens.values()

    def live_token_ids(self, *, description_prefix: str | None = None) -> set[str]:
        now = self.now()
        with self._lock:
            return {r.token_id for r in self._tokens.all_live(now)
                    if not r.internal and (description_prefix is None or (r.description or "").startswith(description_prefix))}

    def live_token_count(self, *, description_prefix: str | None = None, username: str | None = None) -> int:
        now = self.now()
        with self._lock:
            return sum(
                1
                for r in self._tokens.all_live(now)
                if not r.internal
                and (description_prefix is None or (r.description or "").startswith(description_prefix))
                and (username is None or r.username == username)
            )
