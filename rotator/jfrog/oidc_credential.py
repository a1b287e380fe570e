"""Mint with an OIDC ID token instead of a long-lived admin token (``jfrog.oidc``,
docs/configuration.md).

The ID token (a Kubernetes projected service-account token, a CI job's ID token) is read each
time an exchange is needed, because its issuer replaces it on disk before it expires
(https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#serviceaccount-token-volume-projection).
It is exchanged for a JFrog access token with ``POST /access/api/v1/oidc/token``
(https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange); the JFrog user and the scope come
from the platform's identity mapping. That token is kept until shortly before it expires
(:class:`~rotator.jfrog.exchanged_token.ExchangedToken`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rotator.core.redact import register
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogError, MintingCredentialError
from rotator.jfrog.exchanged_token import ExchangedToken

OIDC_TOKEN_CALL = "POST /access/api/v1/oidc/token"


class OidcCredential:
    """A minting credential: ``token()`` is a JFrog access token exchanged for the current ID token.

    ``id_token`` returns the ID token (re-read on every call; :class:`ValueError` when it cannot
    be had). ``max_lifetime`` caps how long one exchanged token is used (the exchange request has
    no expiry field: the identity mapping sets the token's own). Safe to share between threads:
    one exchange at a time.
    """

    def __init__(
        self,
        client: AccessClient,
        *,
        provider_name: str,
        id_token: Callable[[], str],
        identity_mapping: str | None = None,
        project_key: str | None = None,
        max_lifetime: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.provider_name = provider_name
        self._id_token = id_token
        self.identity_mapping = identity_mapping
        self.project_key = project_key
        self.max_lifetime = max_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._current: ExchangedToken | None = None

    def token(self) -> str:
        """The exchanged JFrog token, exchanged again when less than 10 % / 5 minutes of its life is left."""
        return self.current().access_token

    def current(self) -> ExchangedToken:
        """The exchanged token with the user it acts as (what ``check-config --online`` reports)."""
        with self._lock:
            now = self._clock()
            if self._current is None or self._current.renew_due(now):
                self._current = self._exchange(now)
            return self._current

    def _exchange(self, now: float) -> ExchangedToken:
        try:
            id_token = self._id_token()
        except ValueError as exc:
            raise MintingCredentialError(f"cannot read the OIDC ID token: {exc}") from None
        register(id_token)
        try:
            answer = self.client.oidc_token_exchange(
                provider_name=self.provider_name, subject_token=id_token, project_key=self.project_key,
                **({"identity_mapping_name": self.identity_mapping} if self.identity_mapping else {}))
        except JFrogError as exc:
            raise MintingCredentialError(f"OIDC token exchange with provider {self.provider_name!r} failed "
                                         f"({OIDC_TOKEN_CALL}): {exc}") from None
        exchanged = ExchangedToken.from_answer(answer, now, max_lifetime=self.max_lifetime)
        if not exchanged.access_token:
            raise MintingCredentialError(f"{OIDC_TOKEN_CALL} answered without an access_token")
        return exchanged

    def __repr__(self) -> str:
        return f"OidcCredential(provider_name={self.provider_name!r}, identity_mapping={self.identity_mapping!r})"
