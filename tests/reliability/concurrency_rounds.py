"""Helpers of the concurrency suite (tests/reliability/test_concurrency.py): configs on every
store, the racing worker processes (tests/reliability/concurrency_worker.py) driven round by
round, and the emulator's record of refresh grants."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

from rotator.emulator import Emulator
from tests.fixtures.daemon import ROOT, wait_until
from tests.fixtures.moto_server import aws_env

VAULT_TOKEN_ENV = "ROTATOR_TEST_VAULT_TOKEN"


def store_block(kind: str, request, *, vault_url: str | None = None, directory: str = "./secrets") -> str:
    """The ``store`` backend of a config for ``kind`` (file, vault-kv2, aws) on the session's servers."""
    if kind == "file":
        return f"{{type: file, directory: \"{directory}\"}}"
    if kind == "vault-kv2":
        openbao = request.getfixturevalue("openbao")
        return (f"{{type: vault, url: \"{vault_url or openbao.addr}\", "
                f"auth: {{method: token, token_env: {VAULT_TOKEN_ENV}}}}}")
    if kind == "aws":
        moto = request.getfixturevalue("moto_server")
        return f"{{type: aws-secretsmanager, region: us-east-1, endpoint_url: \"{moto.url}\", timeout: 10s}}"
    raise ValueError(kind)


def store_env(kind: str, request, monkeypatch) -> None:
    """What the store of ``kind`` needs in this process's environment (children inherit it)."""
    if kind == "vault-kv2":
        monkeypatch.setenv(VAULT_TOKEN_ENV, request.getfixturevalue("openbao").root_token)
    if kind == "aws":
        aws_env(monkeypatch)


def fleet(count: int, prefix: str = "race") -> list[tuple[str, str]]:
    run_id = uuid.uuid4().hex[:8]
    return [(f"{prefix}{i}", f"concurrency/{run_id}/{prefix}{i}") for i in range(count)]


def write_cli_config(path: Path, emulator: Emulator, store: str, targets: list[tuple[str, str]], *,
                     strategy: str = "recreate", extra: str = "") -> Path:
    refreshable = ", refreshable: true" if strategy == "refresh" else ""
    lines = "\n".join(f"  - {{name: {name}, backend: store, path: \"{where}\", strategy: {strategy}, "
                      f"token: {{username: alpha, expiry: 4h{refreshable}}}, overlap: 0s, orphan_grace: 0s}}"
                      for name, where in targets)
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          store: {store}
        {extra}
        targets:
        """) + lines + "\n")
    return path


class Racers:
    """``workers`` processes of tests/reliability/concurrency_worker.py on one config, released
    together each round; stopped by PID."""

    def __init__(self, directory: Path, config: Path, *, workers: int, rounds: int) -> None:
        self.directory, self.config, self.workers, self.rounds = directory, config, workers, rounds
        directory.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self) -> Racers:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for n in range(self.workers):
            log = self.directory / f"worker-{n}.log"
            self.logs.append(log)
            with open(log, "w") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.reliability.concurrency_worker", str(self.config),
                     str(self.directory), f"w{n}", str(self.workers), str(self.rounds)],
                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT))
        return self

    def round(self, number: int, timeout: float = 90) -> list[dict]:
        """Release round ``number``; every worker's answers, one dict per target rotation."""
        (self.directory / f"go-{number}").touch()

        def done():
            for proc in self.procs:
                if proc.poll() not in (None, 0):
                    raise AssertionError(f"a worker exited with {proc.returncode}: {self.log_text()[-3000:]}")
            found = list(self.directory.glob(f"done-{number}-*.json"))
            return found if len(found) == self.workers else None

        files = wait_until(done, timeout, interval=0.02, what=f"round {number} of {self.workers} workers")
        return [answer for f in files for answer in json.loads(f.read_text())]

    def met(self, number: int, target: str) -> int:
        """How many workers reached READ-after of ``target`` in round ``number`` (all: they raced)."""
        return len(list(self.directory.glob(f"read-{number}-{target}-*")))

    def log_text(self) -> str:
        return "\n".join(log.read_text() for log in self.logs if log.exists())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def refresh_uses(emulator: Emulator) -> Counter:
    """How many times each refresh token was presented to ``POST /tokens`` (keyed by its hash)."""
    uses: Counter = Counter()
    for req in emulator.requests:
        body = req.form if req.form is not None else req.json if isinstance(req.json, dict) else {}
        if req.method == "POST" and req.path.endswith("/access/api/v1/tokens") and body \
                and body.get("grant_type") == "refresh_token":
            uses[hashlib.sha256(str(body.get("refresh_token")).encode()).hexdigest()[:12]] += 1
    return uses


def refresh_answers(emulator: Emulator) -> Counter:
    """The statuses JFrog answered to refresh grants."""
    statuses: Counter = Counter()
    for req in emulator.requests:
        body = req.form if req.form is not None else req.json if isinstance(req.json, dict) else {}
        if req.method == "POST" and body and body.get("grant_type") == "refresh_token":
            statuses[req.status] += 1
    return statuses


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def leader_gauge(proc) -> float | None:
    """``jfrog_rotator_leader`` of a daemon subprocess (``None``: it does not answer, e.g. stopped)."""
    import requests

    try:
        text = requests.get(proc.url + "/metrics", timeout=0.5).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith("jfrog_rotator_leader{"):
            return float(line.split()[-1])
    return None


class LeaderWatch:
    """Samples every daemon's ``jfrog_rotator_leader`` in a loop (a thread) until stopped; a round
    where two daemons answer 1 is a violation of "one leader at a time"."""

    def __init__(self, procs: list) -> None:
        import threading

        self.procs = procs
        self.samples = 0
        self.both: list[list[int]] = []  # the rounds that saw two or more leaders: who
        self.leaders: list[int | None] = []  # who led in each sampled round (None: nobody answered 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-watch", daemon=True)

    def start(self) -> LeaderWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            said = [i for i, proc in enumerate(self.procs) if proc.proc.poll() is None and leader_gauge(proc) == 1.0]
            self.samples += 1
            if len(said) > 1:
                self.both.append(said)
            self.leaders.append(said[0] if said else None)
            time.sleep(0.05)

    def current(self) -> int | None:
        return self.leaders[-1] if self.leaders else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
