"""Wire a loaded :class:`~rotator.config.Config` to a ready :class:`~rotator.engine.Engine`."""

from __future__ import annotations

from rotator.config import Config, JFrogSettings
from rotator.core.options import ConfigError
from rotator.engine import Engine, StepHook
from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import JFrogConfigError
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


def build_engine(config: Config, *, step_hook: StepHook | None = None) -> Engine:
    client, has_admin = jfrog_client(config.jfrog, str(config.source))
    return Engine(jfrog=client, backends=config.backends, has_admin=has_admin, step_hook=step_hook,
                  persistency_threshold=config.jfrog.persistency_threshold)
