"""Wire a loaded :class:`~rotator.config.Config` to a ready :class:`~rotator.engine.Engine`."""

from __future__ import annotations

import os
from collections.abc import Callable

from rotator.config import AwsIamSettings, Config, JFrogSettings
from rotator.core.options import ConfigError, SecretRef
from rotator.core.redact import register
from rotator.engine import AdminCredential, BeforeMint, Engine, Fence, StepHook
from rotator.engine.stored_token import StoredToken
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogConfigError, MintingCredentialError
from rotator.jfrog.jwt import username_from_subject
from rotator.jfrog.minting import AwsIamCredential
from rotator.jfrog.oidc_credential import OidcCredential
from rotator.jfrog.servers import server_from_config


class TokenFile:
    """``jfrog.access_token_file`` read again at each use, so a long-running process (the daemon)
    mints with the token the file holds now, not the one it held at start."""

    def __init__(self, ref: SecretRef) -> None:
        self.ref = ref

    def token(self) -> str:
        try:
            value = self.ref.resolve()
        except ValueError as exc:
            raise MintingCredentialError(f"jfrog.access_token_file: {exc}") from None
        register(value)
        return value


#: A minting credential read when needed: ``token()`` is the JFrog token to mint with now.
MintingSource = OidcCredential | StoredToken | AwsIamCredential


def jfrog_client(settings: JFrogSettings, source: str = "") -> tuple[AccessClient, bool]:
    """The client for the platform and whether it carries an admin credential."""
    url, token = settings.url, None
    cert, key = settings.client_cert_path, settings.client_cert_key_path
    if settings.server_id:
        try:
            details = server_from_config(settings.server_id)
        except JFrogConfigError as exc:
            raise ConfigError(source, "jfrog.server_id", str(exc)) from None
        if not details.url and not url:
            raise ConfigError(source, "jfrog.server_id", f"JFrog CLI server {settings.server_id!r} not found")
        url = url or details.url
        token = details.access_token or None
        cert = cert or details.client_cert_path or None
        key = key or details.client_cert_key_path or None
        if not token:
            raise ConfigError(source, "jfrog.server_id",
                              f"JFrog CLI server {settings.server_id!r} has no access token")
    elif settings.token.is_set():
        try:
            token = settings.token.resolve()
        except ValueError as exc:
            raise ConfigError("", "", str(exc)) from None
    try:
        client = AccessClient(url, access_token=token, client_cert=cert, client_key=key,
                              ca_bundle=settings.ca_bundle, verify=settings.tls_verify,
                              verify_setting="jfrog.tls_verify: false",
                              timeout=(min(10, settings.timeout), settings.timeout))
    except JFrogConfigError as exc:
        raise ConfigError(source, "jfrog", str(exc)) from None
    return client, bool(token)


def aws_iam_credential(settings: AwsIamSettings, client: AccessClient, source: str = "") -> AwsIamCredential:
    """``jfrog.aws_iam`` as a credential read when needed; the region defaults to boto3's
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``."""
    region = settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError(source, "jfrog.aws_iam.region", "is required when AWS_REGION and AWS_DEFAULT_REGION "
                                                          "are not set (the STS region to sign for)")
    return AwsIamCredential(client, region, role_arn=settings.role_arn, expires_in=settings.expires_in)


def minting_source(config: Config, client: AccessClient) -> MintingSource | None:
    """The credential of ``jfrog.oidc``, ``jfrog.access_token_from`` or ``jfrog.aws_iam``; ``None``
    when the client's own token (``access_token_*``, ``server_id``) mints, or nothing does. What
    can be checked offline is checked here (an ID token that cannot be read, no AWS region): a
    config error now, not a failed rotation later."""
    settings = config.jfrog
    if settings.oidc is not None:
        oidc = settings.oidc
        try:
            oidc.id_token.resolve()
        except ValueError as exc:
            raise ConfigError("", "", str(exc)) from None
        return OidcCredential(client, provider_name=oidc.provider_name, id_token=oidc.id_token.resolve,
                              identity_mapping=oidc.identity_mapping, project_key=oidc.project_key,
                              max_lifetime=oidc.expires_in)
    if settings.access_token_from is not None:
        stored = settings.access_token_from
        return StoredToken(config.backends[stored.backend], stored.path)
    if settings.aws_iam is not None:
        return aws_iam_credential(settings.aws_iam, client, str(config.source))
    return None


def credential_check(config: Config, client: AccessClient, has_admin: bool) -> tuple[str, Callable[[], str]] | None:
    """What ``check-config --online`` runs for the minting credential: one exchange or read, and
    ``GET /tokens/me`` with the result; it reports the JFrog user, never the token."""
    source = minting_source(config, client)
    if source is None:
        if not has_admin:
            return None
        return "jfrog token", lambda: f"admin token works (token id {client.get_me().get('token_id', '?')})"
    if isinstance(source, AwsIamCredential):
        def exchange() -> str:
            answer = source.exchange()
            return f"AWS IAM exchange works: JFrog user {answer.username or '?'} (token id {answer.token_id})"
        return "jfrog aws_iam", exchange
    what = (f"OIDC exchange with provider {source.provider_name!r}" if isinstance(source, OidcCredential)
            else f"admin token from {source.where}")

    def check() -> str:
        me = client.get_me(token=source.token())
        user = username_from_subject(str(me.get("subject") or "")) or "?"
        return f"{what} works: JFrog user {user!r} (token id {me.get('token_id', '?')})"

    return "jfrog token", check


def build_engine(config: Config, *, step_hook: StepHook | None = None, before_mint: BeforeMint | None = None,
                 fence: Fence | None = None, orphan_grace_floor: int = 0,
                 after_rotation: Callable[[str, bool], None] | None = None) -> Engine:
    client, has_admin = jfrog_client(config.jfrog, str(config.source))
    source = minting_source(config, client)
    if source is None and config.jfrog.token.file:  # a secret mount replaces the file when the token rotates
        source = TokenFile(config.jfrog.token)
    admin = AdminCredential(read=source.token) if source is not None else None
    return Engine(jfrog=client, backends=config.backends, has_admin=has_admin, admin=admin, step_hook=step_hook,
                  persistency_threshold=config.jfrog.persistency_threshold, before_mint=before_mint, fence=fence,
                  orphan_grace_floor=orphan_grace_floor, after_rotation=after_rotation)
