"""Access error bodies and the typed, validated fields of ``POST /access/api/v1/tokens``.

Fields and limits: https://jfrog.com/help/r/jfrog-rest-apis/create-token (and docs/emulator.md
for what the emulator checks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_LENGTH_LIMITS = {"username": 255, "scope": 500, "description": 1024, "audience": 255}
# Service types accepted in `audience` (the list of the JFrog Terraform provider's serviceIdTypesValidator).
_AUDIENCE_RE = re.compile(r"^(jfrt|jfxr|jfpip|jfds|jfmc|jfac|jfevt|jfmd|jfcon|\*)@.+$")


class AccessError(Exception):
    """An Access API failure: HTTP ``status`` plus the ``code``/``message`` of the error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return {"errors": [{"code": self.code, "message": self.message}]}


def bad_request(message: str) -> AccessError:
    return AccessError(400, "BAD_REQUEST", message)


def unauthorized(message: str = "Bad credentials") -> AccessError:
    return AccessError(401, "UNAUTHORIZED", message)


def forbidden(message: str) -> AccessError:
    return AccessError(403, "FORBIDDEN", message)


def not_found(message: str) -> AccessError:
    return AccessError(404, "NOT_FOUND", message)


def as_str(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"Invalid value for '{name}': expected a string")
    return value or None  # an empty string means "not given", like the Go client's omitempty


def as_bool(name: str, value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"Invalid value for '{name}': expected true or false")


def _as_expires_in(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request("Invalid value for 'expires_in': expected a non-negative integer")
    if value < 0:
        raise bad_request("Invalid value for 'expires_in': must be a non-negative integer")
    if value >= 2**63:
        raise bad_request("Invalid value for 'expires_in': out of range")
    return value


@dataclass
class TokenRequest:
    """The fields of ``POST /access/api/v1/tokens``, typed and validated.

    Form bodies carry strings only, so ``"true"``/``"false"`` and digit strings are accepted for
    the boolean and integer fields; JSON may use either. Unknown fields are ignored (the JFrog
    client sends ``access_token`` in refresh bodies).
    """

    grant_type: str = "client_credentials"
    username: str | None = None
    scope: str | None = None
    expires_in: int | None = None
    refreshable: bool = False
    description: str | None = None
    audience: str | None = None
    include_reference_token: bool = False
    force_revocable: bool = False
    project_key: str | None = None
    refresh_token: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> "TokenRequest":
        strings = {
            name: as_str(name, params.get(name))
            for name in ("grant_type", "username", "scope", "description", "audience", "project_key", "refresh_token")
        }
        for name, limit in _LENGTH_LIMITS.items():
            if strings[name] is not None and len(strings[name]) > limit:
                raise bad_request(f"Invalid value for '{name}': longer than {limit} characters")
        grant_type = strings.pop("grant_type") or "client_credentials"
        if grant_type not in ("client_credentials", "refresh_token"):
            raise bad_request(f"Unsupported grant type: {grant_type}")
        if strings["audience"]:
            for entry in strings["audience"].split():
                if not _AUDIENCE_RE.match(entry):
                    raise bad_request(f"Invalid audience '{entry}': expected <service-type>@<service-id>")
        return cls(
            grant_type=grant_type,
            expires_in=_as_expires_in(params.get("expires_in")),
            refreshable=as_bool("refreshable", params.get("refreshable")),
            include_reference_token=as_bool("include_reference_token", params.get("include_reference_token")),
            force_revocable=as_bool("force_revocable", params.get("force_revocable")),
            **strings,
        )
