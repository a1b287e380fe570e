"""Servers for the benchmarks: the same OpenBao and moto helpers the tests use, on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backends.base import create_backend  # noqa: E402
from rotator.core.options import Options  # noqa: E402
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


# -- shared by the benches: a store whose calls are counted, percentiles ----------------------------
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *args, **kwargs):
        self.n += 1
        return args[0] if args else None


def make_store(kind: str, servers: dict, tmp: str):
    if kind == "file":
        opts = {"type": "file", "directory": f"{tmp}/secrets"}
    elif kind == "vault":
        opts = {"type": "vault", "url": servers["vault"].addr,
                "auth": {"method": "token", "token_insecure_inline": servers["vault"].root_token}}
    else:
        opts = {"type": "aws-secretsmanager", "region": "us-east-1", "endpoint_url": servers["aws"].url}
    backend = create_backend("store", Options(opts, "backends.store"))
    counter = Counter()
    if kind == "vault":  # hvac's calls and the lean path's both go through this pool
        pool = backend.transport.lean(backend.client).pool
        urlopen = pool.urlopen
        pool.urlopen = lambda *a, **kw: (counter(), urlopen(*a, **kw))[1]
    elif kind == "aws":
        backend.client.meta.events.register("before-send.secrets-manager", lambda **kw: counter())
    return backend, counter


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]
