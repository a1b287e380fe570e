"""The commands the demo runs as a user would: ``jfrog-rotator daemon`` as a child process whose
JSON log lines it reads, and short commands (``trigger``, ``status``) it waits for.

Children get a session of their own, so a Ctrl-C on the terminal reaches only the demo, which then
stops each child itself, by its PID, in order (the daemon before the store it writes to).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STOP_TIMEOUT = 15.0


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to ``proc`` (a child we started) if it still runs, SIGKILL if it has not exited
    after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

#: Variables a developer's shell may hold that would change what the children talk to.
_DROPPED = ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR", "VAULT_NAMESPACE", "BAO_NAMESPACE",
            "JFROG_CLI_SERVER_ID", "JFROG_ADMIN_TOKEN")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update({"JFROG_CLI_LOG_TIMESTAMP": "OFF", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def rotator_command(*args: str) -> list[str]:
    """``jfrog-rotator ARGS`` with this interpreter (the same installation as the demo)."""
    return [sys.executable, "-m", "rotator", *args]


def run_command(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(rotator_command(*args), env=child_env(env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class DaemonProcess:
    """``jfrog-rotator daemon -c CONFIG --log-format json``: every log line is kept in ``log_path``
    and handed to :attr:`lines` as a dict (lines that are not JSON as ``{"message": line}``)."""

    def __init__(self, config: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.config, self.env, self.log_path = config, env, log_path
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> DaemonProcess:
        self.proc = subprocess.Popen(
            rotator_command("daemon", "-c", str(self.config), "--log-format", "json", "--shutdown-timeout", "5"),
            env=child_env(self.env), cwd=self.config.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, name="demo-daemon-log", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as log:
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = {"message": line.rstrip("\n")}
                self.lines.put(entry if isinstance(entry, dict) else {"message": str(entry)})

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM to the daemon's PID (it finishes rotations in flight), SIGKILL if it does not exit
        in time; returns its exit status (None when it was never started)."""
        proc = self.proc
        if proc is None:
            return None
        stop_process(proc, STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return proc.returncode
