"""Shared fixtures: a real JFrog Access API emulator over HTTP on a loopback port."""

from __future__ import annotations

import pytest

from rotator.emulator import Emulator, generate_signing_key
from tests.fixtures.moto_server import MotoServer, aws_env
from tests.fixtures.openbao import OpenBaoServer


@pytest.fixture(scope="session")
def openbao():
    """A real OpenBao dev server (loopback, random root token) for the session, stopped at the end."""
    server = OpenBaoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server():
    """moto's Secrets Manager over real HTTP on 127.0.0.1, with dummy credentials, for the session."""
    with pytest.MonkeyPatch.context() as mp:
        aws_env(mp)
        server = MotoServer().start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def signing_key():
    """One RSA key for every emulator of the session (generating one costs ~50 ms)."""
    return generate_signing_key()


@pytest.fixture
def emulator(signing_key):
    """A fresh emulator per test, on a free 127.0.0.1 port, stopped afterwards."""
    emu = Emulator(signing_key=signing_key).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """A clean JFrog CLI environment: empty home, no timestamps in log lines, no server id."""
    monkeypatch.setenv("JFROG_CLI_HOME_DIR", str(tmp_path / "jfrog-home"))
    monkeypatch.setenv("JFROG_CLI_LOG_TIMESTAMP", "OFF")
    for name in ("JFROG_CLI_SERVER_ID", "JFROG_CLI_ERROR_OUTPUT_FORMAT", "JFROG_CLI_ENCRYPTION_KEY",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "jfrog-home"
