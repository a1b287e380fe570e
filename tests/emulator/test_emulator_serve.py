"""serve_forever(): the foreground entry point used by ``jfrog-rotator emulator``."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENS = "/access/api/v1/tokens"


def _spawn(admin_token: str | None) -> subprocess.Popen:
    code = (
        "import sys; from rotator.emulator import serve_forever; "
        f"sys.exit(serve_forever('127.0.0.1', 0, admin_token={admin_token!r}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_forever_uses_the_given_admin_token_without_printing_it():
    process = _spawn("given-admin-secret")
    try:
        line = process.stdout.readline().strip()
        url = line.rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(url + TOKENS + "/me", headers={"Authorization": "Bearer given-admin-secret"}, timeout=5)
        assert response.status_code == 200
    finally:
        code = _stop(process)
    rest = process.stdout.read()
    process.stdout.close()
    assert code == 0
    assert "given-admin-secret" not in line + rest


def test_serve_forever_prints_a_generated_admin_token_once():
    process = _spawn(None)
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        token = process.stdout.readline().strip().removeprefix("admin token: ")
        response = requests.get(url + TOKENS + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 200
    finally:
        code = _stop(process)
    process.stdout.close()
    assert code == 0
