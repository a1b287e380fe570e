"""Minting credentials that are read when needed: a JFrog token obtained by an exchange, cached
until shortly before it expires, so no long-lived admin token is stored anywhere.

The engine takes one as ``AdminCredential(read=credential.token)`` (rotator/engine/current.py);
docs/configuration.md (``jfrog.aws_iam``) and docs/aws-lambda.md (``JFROG_AUTH=aws-iam``) say
how it is configured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rotator.jfrog.aws_iam import AWS_TOKEN, aws_credentials
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogError, MintingCredentialError
from rotator.jfrog.exchanged_token import ExchangedToken

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 3600


class AwsIamCredential:
    """A JFrog token for the AWS role this process runs as (the Lambda's role, IRSA, an instance
    profile; or ``role_arn``, assumed first), from ``POST /access/api/v1/aws/token``.

    :meth:`token` exchanges on first use and again when the cached token nears its expiry (the
    rule of :class:`~rotator.jfrog.exchanged_token.ExchangedToken`, shared with the OIDC
    credential). ``credentials`` (returns botocore credentials) and ``clock`` (epoch seconds) are
    injectable for tests.
    """

    def __init__(
        self,
        client: AccessClient,
        region: str,
        *,
        role_arn: str | None = None,
        expires_in: int | None = DEFAULT_EXPIRES_IN,
        credentials: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.region = region
        self.role_arn = role_arn
        self.expires_in = expires_in
        self._credentials = credentials or (lambda: aws_credentials(region=region, role_arn=role_arn))
        self._clock = clock
        self._cached: ExchangedToken | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        """The JFrog access token to mint with, exchanged now only if the cached one is due."""
        with self._lock:
            if self._cached is None or self._cached.renew_due(self._clock()):
                self._cached = self._exchange()
            return self._cached.access_token

    def exchange(self) -> ExchangedToken:
        """One exchange now, cached for :meth:`token`; ``username`` names the JFrog user the role
        maps to (what ``check-config --online`` reports)."""
        with self._lock:
            self._cached = self._exchange()
            return self._cached

    def _exchange(self) -> ExchangedToken:
        call = f"POST {AWS_TOKEN}?region={self.region}"
        started = self._clock()  # the token's life counts from before the call
        try:
            answer = self.client.aws_token_exchange(credentials=self._credentials(), region=self.region,
                                                    expires_in=self.expires_in)
        except JFrogError as exc:
            raise MintingCredentialError(f"AWS IAM token exchange failed ({call}): {exc}") from None
        log.info("exchanged the AWS identity for a JFrog token of user %s (token id %s)",
                 answer.raw.get("username", "?"), answer.token_id)
        return ExchangedToken.from_answer({**answer.raw, "access_token": answer.access_token,
                                           "expires_in": answer.expires_in}, started)

    def __repr__(self) -> str:
        return f"AwsIamCredential(region={self.region!r}, role_arn={self.role_arn!r})"
