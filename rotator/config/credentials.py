"""The keys of ``jfrog:`` that name the credential that mints, beside ``access_token_*`` and
``server_id``: ``oidc`` (an OIDC ID token exchanged for a JFrog token) and ``access_token_from``
(the admin token kept in a configured store). See docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from backends.base import SecretBackend
from rotator.core.options import ConfigError, Options, SecretRef

#: The keys that each name a credential that mints; a config gives at most one of them.
MINTING_CREDENTIALS = (
    "access_token_env",
    "access_token_file",
    "access_token_insecure_inline",
    "server_id",
    "oidc",
    "access_token_from",
    "aws_iam",
)


@dataclass(frozen=True)
class AwsIamSettings:
    """``jfrog.aws_iam``: mint with the AWS role this process runs as (docs/configuration.md)."""

    region: str | None = None
    role_arn: str | None = None
    expires_in: int = 3600


@dataclass(frozen=True)
class OidcSettings:
    """``jfrog.oidc``: exchange an OIDC ID token (re-read each time) for the minting token."""

    provider_name: str
    id_token: SecretRef
    identity_mapping: str | None = None
    project_key: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class StoredTokenSettings:
    """``jfrog.access_token_from``: the minting token is read from a configured store."""

    backend: str
    path: str



def oidc_settings(opts: Options) -> OidcSettings:
    id_token = opts.secret("token", "OIDC ID token")
    if not id_token.is_set():
        raise opts.error("token_file", "the ID token is required: set token_file (e.g. a Kubernetes projected "
                                       "service-account token) or token_env")
    expires_in = opts.duration("expires_in", None)
    if expires_in is not None and expires_in <= 0:
        raise opts.error("expires_in", "must be more than 0s")
    settings = OidcSettings(
        provider_name=opts.str("provider_name"),
        id_token=id_token,
        identity_mapping=opts.str("identity_mapping", None),
        project_key=opts.str("project_key", None),
        expires_in=expires_in,
    )
    opts.finish()
    return settings


def aws_iam_settings(opts: Options) -> AwsIamSettings:
    """``jfrog.aws_iam`` (the only minting credential when given: checked with the others)."""
    expires_in = opts.duration("expires_in", 3600)
    if expires_in <= 0:
        raise opts.error("expires_in", "must be more than 0s (the exchanged token is cached until near its expiry)")
    settings = AwsIamSettings(
        region=opts.str("region", None, pattern=r"[a-z]{2}(-[a-z]+)+-\d+", hint="an AWS region like us-east-1"),
        role_arn=opts.str("role_arn", None, pattern=r"arn:aws[a-z-]*:iam::\d{12}:role/\S+",
                          hint="an IAM role ARN like arn:aws:iam::123456789012:role/jfrog-minter"),
        expires_in=expires_in,
    )
    opts.finish()
    return settings


def stored_token_settings(opts: Options) -> StoredTokenSettings:
    settings = StoredTokenSettings(backend=opts.str("backend"), path=opts.str("path"))
    opts.finish()
    return settings


def check_stored_token(root: Options, stored: StoredTokenSettings | None,
                       backends: Mapping[str, SecretBackend]) -> None:
    """``access_token_from.backend`` must name a configured store (known once the stores are built)."""
    if stored is not None and stored.backend not in backends:
        raise ConfigError(root.source, "jfrog.access_token_from.backend",
                          f"no backend named {stored.backend!r} (defined: {', '.join(backends)})")
