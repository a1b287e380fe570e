"""What token to mint: the options of ``jf access-token-create`` and how jf turns them into a request.

The request body follows jfrog-cli-core ``general/token/accesstokencreate.go``
(https://github.com/jfrog/jfrog-cli-core) byte for byte (docs/jf-atc.md):
keys in the Go struct order ``scope, expires_in, refreshable, audience, include_reference_token,
username, project_key, description``; ``refreshable`` and ``include_reference_token`` always
sent; ``username`` lower-cased; ``expires_in`` only when an expiry was given (0 = never expires).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

SCOPE_CONFLICT = (
    "Scope can either be provided explicitly with '--scope', or implicitly with "
    "'--grant-admin' and '--groups'. "
)
EXPIRY_NOT_NUMERIC = "The '--expiry' option must have a numeric value. "
EXPIRY_NEGATIVE = "The '--expiry' option must be non-negative. "

# Limits the Access API enforces with a 400 (https://jfrog.com/help/r/jfrog-rest-apis/create-token); checked
# before any request.
MAX_USERNAME = 255
MAX_SCOPE = 500
MAX_DESCRIPTION = 1024
MAX_AUDIENCE = 255

_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1


#: JFrog's default ``revocable-expiry-threshold``: a token that expires sooner can only be revoked
#: when it was created with ``force_revocable`` (https://jfrog.com/help/r/jfrog-rest-apis/create-token).
REVOCABLE_THRESHOLD = 21600


class SpecError(ValueError):
    """An invalid token option. ``option`` names the flag/key (``expiry``, ``scope`` ...)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option

    def as_key_message(self) -> str:
        """The message worded for a config key or variable rather than a jf flag
        (``'--expiry' option`` -> ``'expiry' option``)."""
        return str(self).strip().replace("'--", "'").replace("--", "")


def parse_groups(value: object) -> str | None:
    """Group names as a list or one comma-separated string -> jf's ``--groups`` form (``g1,g2``).
    Raises :class:`ValueError` for anything else."""
    if isinstance(value, list):
        if not all(isinstance(g, str) and g and "," not in g for g in value):
            raise ValueError("must be a list of group names (or one comma-separated string)")
        return ",".join(value) or None
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError("must be a list of group names or a comma-separated string")


def parse_expiry(text: str) -> int:
    """``--expiry`` as jf reads it: Go ``strconv.Atoi`` then a non-negative check."""
    if not _GO_INT.fullmatch(text) or abs(int(text)) > _INT64_MAX:
        raise SpecError(EXPIRY_NOT_NUMERIC, "expiry")
    value = int(text)
    if value < 0:
        raise SpecError(EXPIRY_NEGATIVE, "expiry")
    return value


@dataclass(frozen=True)
class TokenSpec:
    """The options of one token. ``None`` means "not given" (jf tells unset from false/empty)."""

    username: str | None = None
    project: str | None = None
    scope: str | None = None
    groups: str | None = None
    grant_admin: bool | None = None
    expiry: int | None = None
    refreshable: bool = False
    description: str | None = None
    audience: str | None = None
    reference: bool = False
    # Not a jf atc flag (the config's): JFrog only revokes tokens shorter than its
    # revocable-expiry-threshold (6 h by default) when they were created force_revocable.
    force_revocable: bool | None = None

    def revocable_by_default(self) -> TokenSpec:
        """The rotator must be able to revoke the tokens it replaces: a token shorter than
        :data:`REVOCABLE_THRESHOLD` is created ``force_revocable`` unless the option was given."""
        if self.force_revocable is None and self.expiry and self.expiry < REVOCABLE_THRESHOLD:
            return replace(self, force_revocable=True)
        return self

    def validate(self) -> TokenSpec:
        """Raise :class:`SpecError` for what jf or the Access API would refuse; return ``self``."""
        self.check_scope_options()
        if self.expiry is not None and self.expiry < 0:
            raise SpecError(EXPIRY_NEGATIVE, "expiry")
        for option, value, limit in (
            ("description", self.description, MAX_DESCRIPTION),
            ("username", self.username, MAX_USERNAME),
            ("scope", self.effective_scope(), MAX_SCOPE),
            ("audience", self.audience, MAX_AUDIENCE),
        ):
            if value and len(value) > limit:
                raise SpecError(
                    f"--{option} is {len(value)} characters long; JFrog accepts at most {limit}",
                    option,
                )
        return self

    def check_scope_options(self) -> None:
        """jf refuses ``--scope`` with ``--groups``/``--grant-admin`` merely *set* (even ``=false``)."""
        if self.scope is not None and (self.grant_admin is not None or self.groups is not None):
            raise SpecError(SCOPE_CONFLICT, "scope")

    def effective_scope(self) -> str:
        """``--scope`` verbatim, else ``groups:`` and ``admin`` parts joined by one space, else ``""``."""
        if self.scope:
            return self.scope
        parts = []
        if self.groups:
            parts.append(f"applied-permissions/groups:{self.groups}")
        if self.grant_admin:
            parts.append("applied-permissions/admin")
        return " ".join(parts)

    def request_body(self) -> dict[str, Any]:
        """The ``POST /access/api/v1/tokens`` JSON body, keys in jf's order, empty values omitted."""
        body: dict[str, Any] = {}
        scope = self.effective_scope()
        if scope:
            body["scope"] = scope
        if self.expiry is not None:
            body["expires_in"] = self.expiry
        body["refreshable"] = bool(self.refreshable)
        if self.audience:
            body["audience"] = self.audience
        body["include_reference_token"] = bool(self.reference)
        if self.username:
            body["username"] = self.username.lower()
        if self.project:
            body["project_key"] = self.project
        if self.description:
            body["description"] = self.description
        if self.force_revocable is not None:
            body["force_revocable"] = self.force_revocable
        return body

    def with_description_tag(self, tag: str) -> TokenSpec:
        """A copy whose description *starts with* ``tag`` (the user's own text follows it)."""
        text = f"{tag} {self.description}" if self.description else tag
        return replace(self, description=text)
