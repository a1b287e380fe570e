"""The store-faults suite's rig: a target on one store (Vault KV v2, KV v1 or AWS Secrets Manager)
reached through a loopback proxy (tests/fixtures/tcp_proxy.py) that faults single requests, and a
config the CLI and the daemon read (docs/reliability.md, "Faults at every store call")."""

from __future__ import annotations

import re
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import BackendError
from rotator.cli import run
from rotator.config import Config, load_config
from rotator.core.record import RecordError, SecretRecord
from rotator.jfrog.jwt import decode_claims
from tests.fixtures.openbao import OpenBaoServer
from tests.fixtures.tcp_proxy import Request, TcpProxy

STORES = ("vault-kv2", "vault-kv1", "aws")
FAULTS = ("drop", "stall", "reset", "503")
TIMEOUT = 1  # seconds: every store call's timeout in the configs below
AWS_ATTEMPTS = 1  # botocore's total attempts per call (max_attempts): each fault fails its call, with no back-off
TOKEN_ENV = "STORE_FAULTS_VAULT_TOKEN"


class DedicatedOpenBao(OpenBaoServer):
    """An OpenBao dev server of this suite's own (it is stopped, sealed and has tokens revoked,
    which the session's shared server must never see), with a KV v1 mount ``kv1/``."""

    def start(self, **kwargs) -> DedicatedOpenBao:
        super().start(**kwargs)
        self.enable_kv1("kv1")
        return self

    @property
    def unseal_key(self) -> str:
        """The dev server's unseal key, which it prints at start (``Unseal Key: ...``)."""
        found = re.search(r"Unseal Key: (\S+)", Path(self.log_path).read_text(errors="replace"))
        assert found, "the dev server printed no unseal key"
        return found.group(1)

    def seal(self) -> None:
        """https://openbao.org/api-docs/system/seal/"""
        self.api("PUT", "sys/seal")

    def unseal(self) -> None:
        """https://openbao.org/api-docs/system/unseal/"""
        answer = self._session.put(f"{self.addr}/v1/sys/unseal", json={"key": self.unseal_key}, timeout=10)
        assert answer.status_code == 200 and not answer.json()["sealed"], answer.text
        deadline = time.monotonic() + 30  # the mounts come back after the unseal: wait for the KV v2 one
        while time.monotonic() < deadline:
            if self._session.get(f"{self.addr}/v1/secret/config", headers={"X-Vault-Token": self.root_token},
                                 timeout=2).status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError("OpenBao's KV mount did not come back after the unseal")


@dataclass
class Rig:
    """One target ``ci`` on one store kind through ``proxy``; ``config`` is its rotator.yaml."""

    kind: str
    proxy: TcpProxy
    config: Path
    path: str
    capsys: object
    truth: Path  # the same config straight to the server (no proxy): what a test reads to check
    outputs: list[str] = field(default_factory=list)
    _truth: Config | None = None

    @property
    def truth_config(self) -> Config:
        """:attr:`truth` loaded once (its stores' clients kept) for the invariant checks."""
        if self._truth is None:
            self._truth = load_config(self.truth)
        return self._truth

    def close(self) -> None:
        if self._truth is not None:
            self._truth.close()
            self._truth = None

    @property
    def attempts(self) -> int:
        """Tries per store call: botocore retries (max_attempts); the Vault store does not retry."""
        return AWS_ATTEMPTS if self.kind == "aws" else 1

    def run(self, *args: str) -> tuple[int, str]:
        """``jfrog-rotator <args> -c <config>``: exit code and what it printed (also kept for invariant 4)."""
        self.capsys.readouterr()
        code = run([*args, "-c", str(self.config)])
        captured = self.capsys.readouterr()
        text = captured.out + captured.err
        self.outputs.append(text)
        return code, text

    def rotate(self) -> tuple[int, str]:
        return self.run("rotate", "--all")

    def sweep(self) -> tuple[int, str]:
        return self.run("sweep")

    def mine(self, request: Request) -> bool:
        """Whether a request the proxy saw is about this target (its value, metadata or claim)."""
        return self.path in request.path or request.secret_id == self.path

    def clean_calls(self) -> list[Request]:
        """The store calls of one clean rotation (a target that has a token already)."""
        start = len(self.proxy.requests)
        code, text = self.rotate()
        assert code == 0 and "rotated" in text, text
        return [r for r in self.proxy.requests[start:] if self.mine(r)]

    def bound(self, calls: int) -> float:
        """The longest a rotation may take when each of its ``calls`` store calls (and a re-read after
        a write whose outcome is unknown) can use its whole timeout on every attempt, plus 3 s for
        the JFrog calls and the process (loopback): from the config, not a measured figure."""
        return (calls + 2) * TIMEOUT * self.attempts + 3

    def stored_token_id_or_none(self) -> str | None:
        """:meth:`stored_token_id`, or ``None`` while the server cannot answer (sealed, paused)."""
        try:
            return self.stored_token_id()
        except BackendError:
            return None

    def stored_token_id(self) -> str:
        """The id of the token the store holds (our record's ``token_id``, or the ``jti`` of a bare
        token), read straight from the server."""
        text = self.truth_config.backends["store"].read(self.path).text or ""
        try:
            return SecretRecord.loads(text).token_id
        except RecordError:
            return str(decode_claims(text.strip()).raw["jti"])


def store_block(kind: str, url: str, *, leader: bool = False, auth: str | None = None) -> str:
    """The ``backends:`` of a config: ``store`` through the proxy at ``url`` (and a file store for
    the daemon's lease, so the lease's renewals do not go through the proxy)."""
    if kind == "aws":
        store = (f"store: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{url}', "
                 f"timeout: {TIMEOUT}s, max_attempts: {AWS_ATTEMPTS}}}")
    else:
        mount, version = ("secret", 2) if kind == "vault-kv2" else ("kv1", 1)
        store = (f"store: {{type: vault, url: '{url}', mount: {mount}, kv_version: {version}, timeout: {TIMEOUT}s, "
                 f"reconcile_interval: 1h, auth: {auth or '{method: token, token_env: ' + TOKEN_ENV + '}'}}}")
    return store + (", lease: {type: file, directory: ./lease}" if leader else "")


def write_config(directory: Path, kind: str, url: str, emulator_url: str, *, daemon: bool = False,
                 fmt: str = "record", overlap: str = "0s", path: str | None = None,
                 name: str = "", auth: str | None = None) -> tuple[Path, str]:
    """A config with one target ``ci`` at a fresh path; with ``daemon``, a leader lease (so each
    rotation claims the target in its store first, docs/architecture.md invariant 6); ``fmt``:
    the target's ``format`` (another than ``record`` keeps the bookkeeping in the metadata only)."""
    path = path or f"jfrog/ci-{uuid.uuid4().hex[:8]}"
    text = textwrap.dedent(f"""\
        jfrog: {{url: "{emulator_url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends: {{{store_block(kind, url, leader=daemon, auth=auth)}}}
        targets:
          - {{name: ci, backend: store, path: "{path}", overlap: {overlap}, orphan_grace: 0s, format: {fmt},
              token: {{username: ci, expiry: 7d}}, schedule: {{every: 1h}}}}
        """)
    if daemon:
        text += "daemon: {sweep_interval: 1h, leader: {backend: lease, path: leader, ttl: 30s}}\n"
    config = directory / f"rotator-{kind}{'-daemon' if daemon else ''}{name}.yaml"
    config.write_text(text)
    return config, path
