"""The minting token kept in a store (``jfrog.access_token_from``, docs/configuration.md).

The admin token lives in Vault, AWS Secrets Manager or the file store like any other secret: a
bare token, JSON with ``access_token``, or one of our records. It is read through the store each
time it is needed, so after a target with ``strategy: self`` has rotated it (the product rotating
its own admin credential) the next read uses the new token.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.base import BackendError, SecretBackend
from rotator.core.redact import register
from rotator.core.token_value import token_in
from rotator.jfrog.errors import MintingCredentialError


class NoStoredToken(MintingCredentialError):
    """The store was read, but the value there holds no token (a setup problem, not an outage)."""


@dataclass(frozen=True)
class StoredToken:
    """``token()`` reads the token at ``path`` of ``backend`` (no cache: a rotation reads it to mint
    and to revoke, and always sees what the store holds now)."""

    backend: SecretBackend
    path: str

    @property
    def where(self) -> str:
        return f"{self.backend.name}:{self.path}"

    def token(self) -> str:
        try:
            text = self.backend.read(self.path).text
        except BackendError as exc:
            raise MintingCredentialError(f"cannot read the admin token at {self.where}: {exc}") from None
        token = token_in(text)
        if not token:
            raise NoStoredToken(f"{self.where} holds no admin token: store the token, JSON with an "
                                "access_token field, or a record of this rotator")
        register(token)
        return token
