"""The demo's store: a real OpenBao dev server with the shipped policies, or the file store.

Each kind gives the daemon's config block and environment, writes the hand-made secret the
daemon will adopt, lets the consumer read the secret with a credential of its own, and (Vault
only) hands out the requester token that may ask for a rotation but not read the token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hvac

from rotator.cli.demo.openbao import OpenBaoDevServer
from rotator.core.redact import register

#: The shipped policies (docs/vault-triggers.md#policies), read from the source tree the demo runs from.
POLICY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "vault"
DAEMON_POLICY, REQUESTER_POLICY = "jfrog-rotator-daemon", "jfrog-rotator-requester"

#: What a consumer (a CI job) gets: read on the one secret it uses, nothing else.
CONSUMER_POLICY = 'path "secret/data/jfrog/ci-deployer" {\n  capabilities = ["read"]\n}\n'

DAEMON_TOKEN_ENV = "DEMO_DAEMON_VAULT_TOKEN"


class VaultStore:
    """Targets in ``secret/`` (KV v2) of an OpenBao dev server; one token per role, each from its policy."""

    kind = "vault"

    def __init__(self, directory: Path) -> None:
        self.server = OpenBaoDevServer(log_path=directory / "openbao.log")
        self.daemon_token = self.requester_token = self.consumer_token = ""

    def start(self) -> VaultStore:
        self.server.start(new_session=True)
        register(self.server.root_token)
        for name in (DAEMON_POLICY, REQUESTER_POLICY):
            self.server.write_policy(name, (POLICY_DIR / f"{name}.hcl").read_text())
        self.server.write_policy("demo-consumer", CONSUMER_POLICY)
        self.daemon_token = self.server.create_token([DAEMON_POLICY], period="1h", display_name="daemon")
        self.requester_token = self.server.create_token([REQUESTER_POLICY], display_name="requester")
        self.consumer_token = self.server.create_token(["demo-consumer"], display_name="consumer")
        register(self.daemon_token, self.requester_token, self.consumer_token)
        return self

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def describe(self) -> str:
        return (f"dev server on {self.server.addr}, KV v2 at secret/; tokens: the daemon's with policy "
                f"{DAEMON_POLICY}, the requester's with {REQUESTER_POLICY} (both from deploy/vault), the "
                "consumer's with read on one secret")

    def backend_block(self) -> str:
        return (f"demo-vault: {{type: vault, url: '{self.server.addr}', mount: secret, kv_version: 2,\n"
                f"             reconcile_interval: 1s, auth: {{method: token, token_env: {DAEMON_TOKEN_ENV}}}}}")

    def daemon_env(self) -> dict[str, str]:
        return {DAEMON_TOKEN_ENV: self.daemon_token}

    def where(self, path: str) -> str:
        return f"secret/{path}"

    def write_by_hand(self, path: str, value: dict[str, str]) -> None:
        """What a person does today: ``bao kv put secret/<path> username=... password=...``."""
        self._client(self.server.root_token).secrets.kv.v2.create_or_update_secret(path, value, mount_point="secret")

    def read_as_admin(self, path: str) -> dict[str, Any] | None:
        return self._read(self.server.root_token, path)

    def read_as_consumer(self, path: str) -> dict[str, Any] | None:
        return self._read(self.consumer_token, path)

    def read_as_requester(self, path: str) -> str:
        """What the requester's token gets when it tries to read the secret (it must be refused)."""
        try:
            self._read(self.requester_token, path)
        except hvac.exceptions.Forbidden:
            return "403 permission denied"
        return "it could read it (the requester policy is too wide)"

    def _read(self, token: str, path: str) -> dict[str, Any] | None:
        """``GET secret/data/<path>`` (https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-version)."""
        try:
            answer = self._client(token).secrets.kv.v2.read_secret_version(path, mount_point="secret",
                                                                           raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return answer["data"]["data"]

    def _client(self, token: str) -> hvac.Client:
        return hvac.Client(url=self.server.addr, token=token, timeout=5)

    def stop(self) -> int | None:
        return self.server.stop()


class FileStore:
    """Targets as 0600 JSON files under ``<directory>/secrets`` (the file store of docs/configuration.md)."""

    kind = "file"
    pid = None
    requester_token = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "secrets"

    def start(self) -> FileStore:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        return self

    def describe(self) -> str:
        return f"file store in {self.directory} (one 0600 JSON file per target)"

    def backend_block(self) -> str:
        return f"demo-files: {{type: file, directory: '{self.directory}'}}"

    def daemon_env(self) -> dict[str, str]:
        return {}

    def where(self, path: str) -> str:
        return str(self.directory / f"{path}.json")

    def write_by_hand(self, path: str, value: dict[str, str]) -> None:
        file = Path(self.where(path))
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(value, out)

    def read_as_admin(self, path: str) -> dict[str, Any] | None:
        return self.read_as_consumer(path)

    def read_as_consumer(self, path: str) -> dict[str, Any] | None:
        try:
            return json.loads(Path(self.where(path)).read_text())
        except FileNotFoundError:
            return None

    def stop(self) -> None:
        return None


DemoStore = VaultStore | FileStore
