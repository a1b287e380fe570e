"""Resolve which JFrog Platform to talk to, exactly like the JFrog CLI does.

Connection flags (``--url``, ``--user``, ``--password``, ``--access-token``, ``--ssh-key-path``,
``--ssh-passphrase``, ``--client-cert-path``, ``--client-cert-key-path``) are used *exclusively*
when any of them is given: the CLI never mixes flags with a stored config, for security.
Otherwise the server is taken from ``$JFROG_CLI_HOME_DIR/jfrog-cli.conf.v6`` (default
``~/.jfrog/``): the one named by ``--server-id``, else by ``JFROG_CLI_SERVER_ID``, else the
default server. Encrypted configs (``"enc": true``) are AES-256-GCM with the master key from
``JFROG_CLI_ENCRYPTION_KEY`` or ``security/security.yaml`` (jfrog-cli-core ``encryption.go``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rotator.core.redact import register
from rotator.jfrog.errors import JFrogConfigError

CONFIG_FILE = "jfrog-cli.conf.v6"
ENCRYPTION_KEY_ENV = "JFROG_CLI_ENCRYPTION_KEY"
_SECRET_FIELDS = ("password", "accessToken", "sshPassphrase", "refreshToken")


@dataclass(frozen=True, repr=False)
class ServerDetails:
    """Connection details of one JFrog Platform (secrets are never shown by ``repr``)."""

    url: str = ""
    access_token: str = ""
    user: str = ""
    password: str = ""
    ssh_key_path: str = ""
    ssh_passphrase: str = ""
    client_cert_path: str = ""
    client_cert_key_path: str = ""
    server_id: str = ""
    source: str = "flags"

    def __repr__(self) -> str:
        return (
            f"ServerDetails(url={self.url!r}, user={self.user!r}, server_id={self.server_id!r}, "
            f"source={self.source!r}, access_token={'***' if self.access_token else ''!r})"
        )


@dataclass(frozen=True)
class ConnectionFlags:
    """The connection flags as given on the command line (``None`` = not given)."""

    url: str | None = None
    user: str | None = None
    password: str | None = None
    access_token: str | None = None
    ssh_key_path: str | None = None
    ssh_passphrase: str | None = None
    client_cert_path: str | None = None
    client_cert_key_path: str | None = None
    server_id: str | None = None

    def any_credentials(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "server_id")


def jfrog_cli_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("JFROG_CLI_HOME_DIR")
    return Path(home) if home else Path.home() / ".jfrog"


def resolve_server(flags: ConnectionFlags, env: Mapping[str, str] | None = None) -> ServerDetails:
    """Flags exclusively when any is given; else ``--server-id`` / ``JFROG_CLI_SERVER_ID`` / default."""
    env = os.environ if env is None else env
    if flags.any_credentials():
        details = ServerDetails(
            url=flags.url or "",
            access_token=flags.access_token or "",
            user=flags.user or "",
            password=flags.password or "",
            ssh_key_path=flags.ssh_key_path or "",
            ssh_passphrase=flags.ssh_passphrase or "",
            client_cert_path=flags.client_cert_path or "",
            client_cert_key_path=flags.client_cert_key_path or "",
            source="flags",
        )
    else:
        server_id = flags.server_id or env.get("JFROG_CLI_SERVER_ID") or ""
        details = server_from_config(server_id, env)
    register(details.access_token, details.password, details.ssh_passphrase)
    return details


def server_from_config(server_id: str, env: Mapping[str, str] | None = None) -> ServerDetails:
    """The server ``server_id`` (or the default one when empty) of the JFrog CLI config."""
    env = os.environ if env is None else env
    path = jfrog_cli_home(env) / CONFIG_FILE
    servers = load_servers(path, env)
    chosen: dict[str, Any] | None = None
    if server_id:
        chosen = next((s for s in servers if s.get("serverId") == server_id), None)
        if chosen is None:
            raise JFrogConfigError(f"Server ID '{server_id}' does not exist.")
    else:
        chosen = next((s for s in servers if s.get("isDefault")), None)
        if chosen is None and len(servers) == 1:
            chosen = servers[0]
    if chosen is None:
        return ServerDetails(source="none")
    return _details_of(chosen, path)


def load_servers(path: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The decrypted ``servers`` list of a JFrog CLI config; ``[]`` when the file does not exist."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JFrogConfigError(f"cannot read the JFrog CLI config {path}: {exc.strerror}") from None
    try:
        config = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise JFrogConfigError(f"the JFrog CLI config {path} is not valid JSON: {exc}") from None
    servers = (config.get("servers") or []) if isinstance(config, dict) else []
    if not isinstance(servers, list):
        raise JFrogConfigError(f"the JFrog CLI config {path} has no 'servers' list")
    servers = [dict(s) for s in servers if isinstance(s, dict)]
    if config.get("enc"):
        key = _master_key(path, env)
        for server in servers:
            for name in _SECRET_FIELDS:
                if server.get(name):
                    server[name] = _decrypt(server[name], key, path)
    return servers


def _details_of(server: Mapping[str, Any], path: Path) -> ServerDetails:
    url = str(server.get("url") or "")
    if not url and server.get("artifactoryUrl"):
        url = str(server["artifactoryUrl"]).rstrip("/").removesuffix("/artifactory")
    access_token = str(server.get("accessToken") or "")
    # The CLI excludes tokens it derived from user+password itself (it refreshes those), so
    # such a server counts as a user/password server when creating access tokens.
    if server.get("artifactoryRefreshToken") or int(server.get("tokenRefreshInterval") or 0) > 0:
        access_token = ""
    return ServerDetails(
        url=url,
        access_token=access_token,
        user=str(server.get("user") or ""),
        password=str(server.get("password") or ""),
        ssh_key_path=str(server.get("sshKeyPath") or ""),
        ssh_passphrase=str(server.get("sshPassphrase") or ""),
        client_cert_path=str(server.get("clientCertPath") or ""),
        client_cert_key_path=str(server.get("clientCertKeyPath") or ""),
        server_id=str(server.get("serverId") or ""),
        source=f"config:{path}",
    )


def _master_key(path: Path, env: Mapping[str, str]) -> bytes:
    value = env.get(ENCRYPTION_KEY_ENV, "")
    origin = ENCRYPTION_KEY_ENV
    if value and (value.endswith(".key") or os.path.isfile(value)):
        origin = f"{ENCRYPTION_KEY_ENV} (file {value})"
        try:
            value = Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise JFrogConfigError(f"cannot read the key file named by {origin}: {exc.strerror}") from None
    if not value:
        value = _security_yaml_key(path.parent)
        origin = "security/security.yaml masterKey"
    if not value:
        raise JFrogConfigError(
            f"the JFrog CLI config {path} is encrypted (\"enc\": true) but no master key is "
            f"available: set {ENCRYPTION_KEY_ENV} to the 32-character key (or the path of a .key file)"
        )
    key = value.encode("utf-8")
    if len(key) != 32:
        raise JFrogConfigError(
            f"the master key from {origin} has {len(key)} bytes; it must be exactly 32 "
            f"(set {ENCRYPTION_KEY_ENV} to the key the JFrog CLI config was encrypted with)"
        )
    return key


def _security_yaml_key(home: Path) -> str:
    path = home / "security" / "security.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    import yaml  # only needed for encrypted configs; keeps the Lambda import light

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise JFrogConfigError(f"{path} is not valid YAML") from None
    return str(data.get("masterKey") or "") if isinstance(data, dict) else ""


def _decrypt(value: str, key: bytes, path: Path) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        sealed = base64.b64decode(value, validate=True)
        nonce, ciphertext = sealed[:12], sealed[12:]
        if len(sealed) < 12 + 16:
            raise ValueError("too short")
        return AESGCM(key).decrypt(nonce, ciphertext, None).decode("utf-8")
    except (InvalidTag, ValueError, binascii.Error, UnicodeDecodeError):
        raise JFrogConfigError(
            f"cannot decrypt the JFrog CLI config {path}: wrong master key "
            f"(check {ENCRYPTION_KEY_ENV})"
        ) from None


def encrypt_secret(value: str, key: bytes) -> str:
    """Encrypt like ``jf config`` does (for tests and migration tooling)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, value.encode("utf-8"), None)).decode()
