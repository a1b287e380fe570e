"""Helpers of the load suite (tests/reliability/test_load.py): a fleet of targets over the three
stores behind seeded faults, a real ``jfrog-rotator daemon`` process rotating it, and what the
suite reads of that process (its metrics, its log lines, its resident memory).

Faults: the emulator answers a seeded ``ratio`` of requests with a 5xx (:class:`SeededFaults`, a
thin hook over its own fault injector); the Vault and AWS stores sit behind
:class:`tests.fixtures.tcp_proxy.TcpProxy` with the same ``fail_ratio``.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from rotator.emulator.faults import Fault
from tests.fixtures.daemon import ROOT
from tests.fixtures.openbao import free_port
from tests.fixtures.tcp_proxy import TcpProxy

CLI = str(Path(sys.executable).parent / "jfrog-rotator")
STORES = ("file", "vault", "aws")


class SeededFaults:
    """Wraps an emulator's fault injector: besides the faults a test aims, a seeded ``ratio`` of all
    requests is answered with a 500, 502 or 503; ``injected`` counts them."""

    def __init__(self, emulator, ratio: float, seed: int) -> None:
        self.ratio = ratio
        self.injected = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._injector = emulator._faults  # the server holds this instance: its take() is wrapped
        self._take = self._injector.take
        self._injector.take = self.take

    def take(self, method: str, path: str) -> Fault | None:
        aimed = self._take(method, path)
        if aimed is not None or not self.ratio:
            return aimed
        with self._lock:
            if self._random.random() >= self.ratio:
                return None
            self.injected += 1
            status = self._random.choice((500, 502, 503))
        return Fault(path, method, status, 1)

    def stop(self) -> None:
        self.ratio = 0.0


@dataclass
class Fleet:
    """``count`` targets spread over a file store, Vault KV v2 and AWS (moto), the network stores
    behind faulty proxies; ``config`` is the daemon's JSON config."""

    tmp: Path
    count: int
    every: int
    config: Path
    proxies: list[TcpProxy]
    names: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_faults(self) -> int:
        return sum(p.faults_injected for p in self.proxies)

    def heal(self) -> None:
        for proxy in self.proxies:
            proxy.fail_ratio = 0.0

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()


def make_fleet(tmp: Path, emulator, openbao, moto_server, *, count: int, every: int, ratio: float, seed: int,
               env: dict[str, str], sweep_interval: int = 3, stores: tuple[str, ...] = STORES,
               max_workers: int = 8) -> Fleet:
    host, port = openbao.addr.rsplit("//", 1)[1].rsplit(":", 1)
    vault = TcpProxy(host, int(port), fail_ratio=ratio, seed=seed + 1).start()
    aws = TcpProxy("127.0.0.1", int(moto_server.url.rsplit(":", 1)[1]), fail_ratio=ratio, seed=seed + 2).start()
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    emulator.create_user("ci", groups=("deployers",))
    names, targets = [], []
    for i in range(count):
        store = stores[i % len(stores)]
        name = f"{store}-{i:04d}"
        names.append(name)
        targets.append({"name": name, "backend": store, "path": f"{prefix}/{name}", "overlap": "1s",
                        "orphan_grace": "1s", "schedule": {"every": f"{every}s"},
                        "token": {"username": "ci", "groups": ["deployers"], "expiry": "4h"}})
    fleet = Fleet(tmp, count, every, tmp / "fleet.json", [vault, aws], names, free_port(), env)
    fleet.config.write_text(json.dumps({
        "jfrog": {"url": emulator.url, "access_token_env": "JFROG_ADMIN_TOKEN"},
        "daemon": {"listen": f"127.0.0.1:{fleet.port}", "sweep_interval": f"{sweep_interval}s",
                   "max_workers": max_workers},
        "backends": {
            "file": {"type": "file", "directory": str(tmp / "secrets")},
            "vault": {"type": "vault", "url": vault.url, "auth": {"method": "token", "token_env": "VAULT_TOKEN"}},
            "aws": {"type": "aws-secretsmanager", "region": "us-east-1", "endpoint_url": aws.url, "timeout": "10s"},
        },
        "targets": targets,
    }))
    return fleet


class DaemonProcess:
    """``jfrog-rotator daemon -c FLEET --log-format json``, its log in a file, stopped by its PID."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.log_path = fleet.tmp / "daemon.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([CLI, "daemon", "-c", str(fleet.config), "--log-format", "json"],
                                        cwd=fleet.tmp, env={**fleet.env, "PYTHONPATH": str(ROOT)},
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def metrics(self) -> str:
        try:
            return requests.get(f"{self.fleet.url}/metrics", timeout=10).text
        except requests.RequestException:  # not listening yet
            return ""

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"level": "unparsed", "message": line})
        return out


_ROTATIONS = re.compile(r'^jfrog_rotator_rotations_total\{result="([\w-]+)",target="([\w-]+)"\} ([\d.e+]+)$', re.M)


def rotations(metrics: str) -> dict[str, Counter]:
    """``{result: Counter(target -> count)}`` from ``jfrog_rotator_rotations_total``."""
    out: dict[str, Counter] = {}
    for result, target, value in _ROTATIONS.findall(metrics):
        out.setdefault(result, Counter())[target] = int(float(value))
    return out
