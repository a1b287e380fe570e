"""What one Lambda container keeps between invocations: its clients, its caches, its clock.

One boto3 client and one JFrog session per container, created on first use and reused; secret
versions are immutable, so values read or written are cached by VersionId for the later steps;
the admin token is cached for a few minutes. Tests build their own :class:`Container` with a
clock and a sleep of their choice and :func:`install` it, as they give the engine its own.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from backends.aws_secretsmanager import SecretsManagerBackend
from rotator.aws_lambda.settings import LambdaSettings, RotationSetupError
from rotator.jfrog.client import AccessClient, RetryPolicy

if TYPE_CHECKING:  # imported by aws_iam() when JFROG_AUTH=aws-iam: other setups never load it
    from rotator.jfrog.minting import AwsIamCredential

ADMIN_CACHE_SECONDS = 300
_AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=20)
# Well inside the Lambda timeout: a JFrog call takes at most ~3 x 20 s + 2 x 2 s.
_JFROG_RETRY = RetryPolicy(retries=2, backoff_factor=0.25, backoff_max=2.0)
_JFROG_TIMEOUT = (5.0, 20.0)


class Container:
    """Clients created once per container (per endpoint / JFrog URL) and the value caches."""

    MAX_VALUES = 32

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self.secrets_manager: Any = None
        self.jfrog_client: AccessClient | None = None
        self._sm_key: tuple[str | None, str | None] | None = None
        self._backend: SecretsManagerBackend | None = None
        self._values: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._admin: dict[str, tuple[float, str]] = {}
        self._aws_iam: AwsIamCredential | None = None

    def backend(self, settings: LambdaSettings, secret_id: str) -> SecretsManagerBackend:
        region = _region(secret_id)
        key = (region, settings.secrets_manager_endpoint)
        if self._backend is None or key != self._sm_key:
            self.secrets_manager = boto3.client("secretsmanager", region_name=region,
                                                endpoint_url=settings.secrets_manager_endpoint, config=_AWS_CONFIG)
            self._sm_key = key
            self._backend = SecretsManagerBackend("aws", client=self.secrets_manager)
        return self._backend

    def jfrog(self, settings: LambdaSettings) -> AccessClient:
        if self.jfrog_client is None or self.jfrog_client.url != settings.jfrog_url:
            if self.jfrog_client is not None:
                self.jfrog_client.close()
            self.jfrog_client = AccessClient(settings.jfrog_url, retry=_JFROG_RETRY, timeout=_JFROG_TIMEOUT)
        return self.jfrog_client

    def aws_iam(self, settings: LambdaSettings, secret_id: str) -> AwsIamCredential:
        """The function's own IAM role as the minting credential (``JFROG_AUTH=aws-iam``), one per
        container, so its exchanged token is reused until near its expiry."""
        from rotator.jfrog.minting import AwsIamCredential  # only this auth mode needs the exchange

        region = _region(secret_id)
        if not region:
            raise RotationSetupError("JFROG_AUTH is aws-iam but the AWS region is unknown: set AWS_REGION")
        client = self.jfrog(settings)
        if self._aws_iam is None or self._aws_iam.client is not client or self._aws_iam.region != region:
            self._aws_iam = AwsIamCredential(client, region)
        return self._aws_iam

    def remember(self, arn: str, version_id: str, text: str) -> None:
        self._values[(arn, version_id)] = text
        self._values.move_to_end((arn, version_id))
        while len(self._values) > self.MAX_VALUES:
            self._values.popitem(last=False)

    def recall(self, arn: str, version_id: str) -> str | None:
        return self._values.get((arn, version_id))

    def admin_token(self, arn: str, read: Callable[[], str]) -> str:
        """The admin token of secret ``arn``, read again after :data:`ADMIN_CACHE_SECONDS`."""
        cached = self._admin.get(arn)
        if cached is not None and time.monotonic() - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        token = read()
        self._admin[arn] = (time.monotonic(), token)
        return token


def _region(secret_id: str) -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or _arn_region(secret_id)


def _arn_region(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


_current = Container()


def current() -> Container:
    """The container the handler uses."""
    return _current


def install(container: Container) -> Container:
    """Use ``container`` from now on; returns the one it replaces (tests restore it)."""
    global _current
    previous, _current = _current, container
    return previous
