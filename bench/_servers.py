"""Servers for the benchmarks: the same OpenBao and moto helpers the tests use, on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.moto_server import MotoServer, aws_env  # noqa: E402
from tests.fixtures.openbao import OpenBaoServer  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request


def dummy_aws_env() -> None:
    """Dummy AWS credentials so nothing can reach real AWS."""
    aws_env(os.environ)


class EmulatorProcess:
    """`jfrog-rotator emulator` in its own process, like a remote JFrog: it does not share our GIL."""

    def __init__(self) -> None:
        import secrets

        self.admin_token = "bench-admin-" + secrets.token_hex(24)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> EmulatorProcess:
        env = {**os.environ, "JFROG_EMULATOR_ADMIN_TOKEN": self.admin_token, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "rotator", "emulator", "--port", "0"], env=env,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "http://" not in line:
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["EmulatorProcess", "MotoServer", "OpenBaoServer", "dummy_aws_env"]
