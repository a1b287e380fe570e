"""Who calls the emulator: users (with their groups), the principal a request authenticates as,
and the two scopes that decide what a principal may do.

JFrog's page on token scopes: https://jfrog.com/help/r/jfrog-rest-apis/create-token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rotator.emulator.tokens import TokenRecord

USER_SCOPE = "applied-permissions/user"
ADMIN_SCOPE = "applied-permissions/admin"


@dataclass
class User:
    name: str
    admin: bool = False
    groups: tuple[str, ...] = ()
    enabled: bool = True
    password: str | None = field(default=None, repr=False)


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


def token_principal(record: TokenRecord, user: User | None) -> Principal:
    """The caller behind a token: an admin by the admin scope, or by an admin user's identity token."""
    scopes = record.scope.split()
    is_admin = ADMIN_SCOPE in scopes or (USER_SCOPE in scopes and user is not None and user.admin)
    return Principal(record.username, record.scope, is_admin, record)
