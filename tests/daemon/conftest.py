"""Daemon test helpers: configs with second-scale schedules, in-process and subprocess daemons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from rotator.daemon import RotationDaemon
from rotator.core.record import SecretRecord

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def daemon_env(monkeypatch, emulator, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    for name in ("alpha", "beta", "gamma"):
        emulator.create_user(name)
    return emulator


def write_config(path: Path, emulator, targets: str, *, backends: str | None = None, daemon: str = "") -> Path:
    backends = backends or "local: {type: file, directory: ./secrets}"
    text = (f"jfrog:\n  url: {emulator.url}\n  access_token_env: JFROG_ADMIN_TOKEN\n"
            f"backends:\n{textwrap.indent(textwrap.dedent(backends).strip(), '  ')}\n"
            f"targets:\n{textwrap.indent(textwrap.dedent(targets).strip(), '  ')}\n")
    if daemon:
        text += f"daemon:\n{textwrap.indent(textwrap.dedent(daemon).strip(), '  ')}\n"
    path.write_text(text)
    return path


def file_record(tmp_path: Path, name: str) -> SecretRecord | None:
    file = tmp_path / "secrets" / f"{name}.json"
    return SecretRecord.loads(file.read_text()) if file.exists() else None


@pytest.fixture
def start_daemon():
    """Start an in-process daemon on a loopback endpoint; every one is stopped after the test."""
    started: list[RotationDaemon] = []

    def start(config: Path, **kwargs) -> RotationDaemon:
        kwargs.setdefault("listen", "127.0.0.1:0")
        daemon = RotationDaemon(str(config), **kwargs).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if not daemon.stopped:
            daemon.stop()


class DaemonProcess:
    """``jfrog-rotator daemon`` (or a script) in a subprocess, JSON logs captured to a file."""

    def __init__(self, tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        self.argv = argv
        self.env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, wait_for_endpoint: bool = True) -> DaemonProcess:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=ROOT)
        if wait_for_endpoint:
            line = wait_until(lambda: self._find("operations endpoint listening on"), 30,
                              what=f"the daemon's endpoint (log: {self.log_path})")
            self.url = line["message"].rsplit(" ", 1)[-1]
        return self

    def _find(self, text: str):
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        return next((r for r in self.logs() if text in r.get("message", "")), None)

    def logs(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line, "raw": True})
        return out

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=10)

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()


@pytest.fixture
def spawn(tmp_path):
    """``spawn(config)`` -> a started `jfrog-rotator daemon` subprocess; stopped after the test."""
    procs: list[DaemonProcess] = []

    def start(config: Path, *extra: str, script: str | None = None, env=None) -> DaemonProcess:
        argv = ([sys.executable, "-c", script, str(config), *extra] if script else
                [sys.executable, "-m", "rotator", "daemon", "-c", str(config), "--listen", "127.0.0.1:0",
                 "--log-format", "json", *extra])
        proc = DaemonProcess(tmp_path, argv, env).start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
