"""Wire a loaded :class:`~rotator.config.Config` to a ready :class:`~rotator.engine.Engine`."""

from __future__ import annotations

import os
from collections.abc import Callable

from rotator.config import AwsIamSettings, Config, JFrogSettings
from rotator.core.options import ConfigError
from rotator.engine import AdminCredential, Engine, StepHook
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogConfigError
from rotator.jfrog.minting import AwsIamCredential
from rotator.jfrog.servers import server_from_config


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


def admin_check(settings: JFrogSettings, client: AccessClient, has_admin: bool,
                source: str = "") -> tuple[str, Callable[[], str]] | None:
    """What ``check-config --online`` runs to prove the minting credential works (never printing it)."""
    if settings.aws_iam is not None:
        credential = aws_iam_credential(settings.aws_iam, client, source)

        def exchange() -> str:
            answer = credential.exchange()
            return (f"AWS IAM exchange works: JFrog user {answer.raw.get('username', '?')} "
                    f"(token id {answer.token_id})")
        return "jfrog aws_iam", exchange
    if has_admin:
        return "jfrog token", lambda: f"admin token works (token id {client.get_me().get('token_id', '?')})"
    return None


def build_engine(config: Config, *, step_hook: StepHook | None = None) -> Engine:
    client, has_admin = jfrog_client(config.jfrog, str(config.source))
    if config.jfrog.aws_iam is not None:
        credential = aws_iam_credential(config.jfrog.aws_iam, client, str(config.source))
        return Engine(jfrog=client, backends=config.backends, admin=AdminCredential(read=credential.token),
                      step_hook=step_hook)
    return Engine(jfrog=client, backends=config.backends, has_admin=has_admin, step_hook=step_hook)
