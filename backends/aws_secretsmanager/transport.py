"""Calls to AWS Secrets Manager through boto3: the client, one call wrapper, typed errors.

Every call the store makes goes through :func:`call` (or :func:`pages` for a listing), so every
failure reaches the engine as a :class:`~backends.base.BackendError` that names the backend, the
path, the operation and the AWS error code:

* no answer, or a server fault after botocore's retries, on a call that changes the secret:
  :class:`~backends.base.WriteOutcomeUnknown` (the write may have been applied: re-read);
* any other failure: :class:`AwsError` (``operation`` and ``code`` say which).

A value being written is passed as ``secret`` and cut out of any message (AWS does not echo
values; belt and braces). Deciding that a failure is a compare-and-set conflict takes a look at
the labels, so :class:`~backends.base.CASConflict` is raised by the callers, not here.

API reference: https://docs.aws.amazon.com/secretsmanager/latest/apireference/Welcome.html
(boto3: https://boto3.amazonaws.com/v1/documentation/api/latest/reference/services/secretsmanager.html).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ProfileNotFound
from botocore.exceptions import ConnectionError as BotoConnectionError

from backends.base import BackendError, WriteOutcomeUnknown
from rotator.core.redact import REDACTED

# The package's logger, not this module's: log lines keep the name they have always had.
log = logging.getLogger(__package__)


class _NoSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG, before the store has parsed (and registered with
    the masker) the secret values in it; a refresh token is not shaped like anything the masker
    knows. So a body that carries a ``SecretString`` is not logged (``--debug`` keeps the line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be rendered carries nothing
            return True
        if "SecretString" in text:
            record.msg, record.args = "Response body: (not logged: it holds a secret value)", ()
        return True


logging.getLogger("botocore.parsers").addFilter(_NoSecretBodies())

NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceExistsException"
# How Secrets Manager refuses a label move that does not match the labels (moto and, as far as
# emulators modelled on AWS tell, AWS: InvalidParameterException). The cause is always confirmed
# with DescribeSecret before we call it a conflict, so accepting both codes is safe.
REFUSED = ("InvalidParameterException", "InvalidRequestException")

# No answer (or a server fault) after botocore's retries: a write may have been applied.
_NO_ANSWER = (BotoConnectionError, HTTPClientError)


class AwsError(BackendError):
    """A Secrets Manager call failed; ``operation`` and ``code`` (the AWS error code) say how."""

    def __init__(self, message: str, *, backend: str, path: str, operation: str, code: str = "") -> None:
        super().__init__(message, backend=backend, path=path)
        self.operation = operation
        self.code = code


def default_region(profile: str | None = None) -> str | None:
    """``AWS_REGION`` (set by Lambda, ignored by botocore), else the session's region
    (``AWS_DEFAULT_REGION``, then the profile's ``region``). ``ProfileNotFound`` for an unknown profile."""
    return os.environ.get("AWS_REGION") or boto3.session.Session(profile_name=profile).region_name


def make_client(backend: str, *, region: str | None, profile: str | None, endpoint_url: str | None,
                timeout: float, max_attempts: int) -> Any:
    """A boto3 ``secretsmanager`` client with our timeouts and retries (its region is ``meta.region_name``).

    ``region`` ``None`` means :func:`default_region`; no region at all, or an unknown profile,
    is a :class:`~backends.base.BackendError` naming ``backend``.
    """
    try:
        region = region or default_region(profile)
    except ProfileNotFound:
        raise BackendError(f"AWS profile {profile!r} is not in the AWS config files", backend=backend) from None
    if not region:
        raise BackendError("no AWS region: configure region, or set AWS_REGION / AWS_DEFAULT_REGION",
                           backend=backend)
    # A session of our own: the default boto3 session is not safe to share between threads.
    session = boto3.session.Session(profile_name=profile, region_name=region)
    # total_max_attempts counts the first try (like AWS_MAX_ATTEMPTS); botocore's
    # retries["max_attempts"] would count retries only, one more call than configured.
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                    connect_timeout=timeout, read_timeout=timeout)
    return session.client("secretsmanager", endpoint_url=endpoint_url, config=config)


def call(client: Any, operation: str, *, backend: str, path: str, write: bool = False,
         secret: str | None = None, **params: Any) -> Any:
    """Call ``operation`` (e.g. ``"GetSecretValue"``) with ``params``; failures become typed errors.

    ``write``: a call that changes the secret; no answer then means :class:`WriteOutcomeUnknown`.
    ``secret``: a value the message must never contain.
    """
    try:
        return getattr(client, xform_name(operation))(**params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(operation, exc, backend=backend, path=path, write=write, secret=secret) from None


def pages(client: Any, operation: str, *, backend: str, path: str = "", **params: Any) -> Iterator[Any]:
    """The pages of a paginated read-only ``operation`` (e.g. ``"ListSecrets"``); failures as in :func:`call`."""
    try:
        yield from client.get_paginator(xform_name(operation)).paginate(**params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(operation, exc, backend=backend, path=path) from None


def translate(operation: str, exc: Exception, *, backend: str, path: str, write: bool = False,
              secret: str | None = None) -> BackendError:
    """The :class:`BackendError` for a botocore failure of ``operation`` (see the module docstring)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "Unknown"
        message = f"{operation} failed: {code}: {error.get('Message', '')}".rstrip(": ")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        unknown = write and status >= 500  # a server fault after retries: applied or not, who knows
    else:
        code = type(exc).__name__
        message = f"{operation} failed: {exc}"
        unknown = write and isinstance(exc, _NO_ANSWER)
    if secret:
        message = message.replace(secret, REDACTED)
    if unknown:
        err = WriteOutcomeUnknown(f"{message}; the write may or may not have been applied: re-read to decide",
                                  backend=backend, path=path)
        err.operation, err.code = operation, code  # type: ignore[attr-defined]
        return err
    return AwsError(message, backend=backend, path=path, operation=operation, code=code)


def best_effort(backend: str, what: str, action: Callable[[], None]) -> None:
    """Run a follow-up of a committed write; a failure is logged (the value is stored already)."""
    try:
        action()
    except BackendError as exc:
        log.warning("%s: %s after the value was stored failed: %s", backend, what, exc)


__all__ = ["AwsError", "EXISTS", "NOT_FOUND", "REFUSED", "best_effort", "call", "default_region", "make_client",
           "pages", "translate"]
