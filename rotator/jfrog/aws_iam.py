"""The AWS side of JFrog's AWS IAM role exchange: the credentials of the role this process runs
as, and the SigV4-signed STS ``GetCallerIdentity`` request whose headers prove it to JFrog.

JFrog's own AWS projects build the request the same way (jfrog/jfrog-secret-rotator-lambda,
jfrog/jfrog-registry-operator): sign
``GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`` with
botocore's :class:`~botocore.auth.SigV4Auth`, do not send it, send its headers to
``POST /access/api/v1/aws/token`` (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).

boto3 and botocore are imported when a credential is first needed, not with :mod:`rotator.jfrog`:
the command line and the engine start without them (tests/test_cli_commands.py).
"""

from __future__ import annotations

import logging
from typing import Any

from rotator.core.redact import register
from rotator.jfrog.errors import JFrogError

AWS_TOKEN = "/access/api/v1/aws/token"
STS_PARAMS = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
SESSION_NAME = "jfrog-token-rotator"


class _NoSignatureRecords(logging.Filter):
    """Drops botocore.auth's DEBUG lines that carry a signature: until STS stops accepting it
    (15 minutes) the signed GetCallerIdentity request buys a JFrog token, like a password."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Signature:", "StringToSign:"))


_NO_SIGNATURES = _NoSignatureRecords()


class AwsCredentialError(JFrogError):
    """No AWS credentials to sign with: none found, or ``sts:AssumeRole`` failed."""


def aws_credentials(*, region: str, role_arn: str | None = None) -> Any:
    """Frozen botocore credentials of this process (environment, IRSA web identity, container or
    instance role: boto3's chain), or of ``role_arn`` assumed with them first."""
    import boto3  # lazily: see the module docstring
    import botocore.exceptions
    from botocore.credentials import Credentials

    session = boto3.Session(region_name=region)
    try:
        if role_arn:
            answer = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
            keys = answer["Credentials"]
            credentials = Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
        else:
            found = session.get_credentials()
            if found is None:
                raise AwsCredentialError("no AWS credentials found (environment, web identity, container or "
                                         "instance role) to sign the AWS IAM token exchange with")
            credentials = found.get_frozen_credentials()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        what = f"sts:AssumeRole {role_arn}" if role_arn else "reading the AWS credentials"
        raise AwsCredentialError(f"{what} failed: {_safe(exc)}") from None
    register(credentials.secret_key, credentials.token)
    return credentials


def signed_identity_headers(credentials: Any, region: str) -> dict[str, str]:
    """The SigV4 headers (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token`` for temporary
    credentials) of an STS GetCallerIdentity request in ``region``; registered for redaction,
    since they prove the identity for as long as STS accepts the signature."""
    from botocore.auth import SigV4Auth  # lazily: see the module docstring
    from botocore.awsrequest import AWSRequest

    register(credentials.secret_key, credentials.token)
    logging.getLogger("botocore.auth").addFilter(_NO_SIGNATURES)  # once: a filter is added only once
    request = AWSRequest(method="GET", url=f"https://sts.{region}.amazonaws.com/", params=dict(STS_PARAMS))
    SigV4Auth(credentials, "sts", region).add_auth(request)
    headers = {name: str(value) for name, value in request.headers.items()}
    authorization = headers.get("Authorization", "")
    register(authorization, authorization.rpartition("Signature=")[2] or None)
    return headers


def _safe(exc: BaseException) -> str:
    """The error text of boto without the request it was about (it may carry credentials)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
