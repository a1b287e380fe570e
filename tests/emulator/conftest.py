"""Fixtures for the emulator tests: a started :class:`Emulator` per test, always stopped after it."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from rotator.emulator import Emulator, ManualClock, generate_signing_key

TOKENS = "/access/api/v1/tokens"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwt_payload(jwt: str) -> dict:
    """Decode the payload the way the JFrog CLI does: standard base64 alphabet, padding added."""
    segment = jwt.split(".")[1]
    return json.loads(base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True))


class Api:
    """Tiny HTTP helper bound to one emulator; every call is a real request over a Session."""

    def __init__(self, emulator: Emulator, session: requests.Session) -> None:
        self.emu, self.session = emulator, session

    def url(self, path: str) -> str:
        return self.emu.url + path

    def create(self, token: str | None = None, **fields) -> requests.Response:
        """POST /tokens as JSON, authenticated with ``token`` (default: the admin token)."""
        return self.session.post(self.url(TOKENS), headers=bearer(token or self.emu.admin_token), json=fields)

    def refresh(self, token: str, refresh_token: str, **fields) -> requests.Response:
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token, **fields}
        return self.session.post(self.url(TOKENS), headers=bearer(token), json=body)

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.session.get(self.url(path), headers=bearer(token or self.emu.admin_token), **kwargs)

    def delete(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.session.delete(self.url(path), headers=bearer(token or self.emu.admin_token), **kwargs)

    def user_token(self, username: str = "alice", **fields) -> dict:
        """Create ``username`` (non-admin) and an identity token for it through HTTP as admin."""
        if self.emu.model.get_user(username) is None:
            self.emu.create_user(username)
        response = self.create(username=username, **fields)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def signing_key():
    """One RSA key for the whole session: generating one per emulator costs ~50 ms each."""
    return generate_signing_key()


@pytest.fixture
def emulator(signing_key):
    emu = Emulator(signing_key=signing_key).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked_emulator(clock: ManualClock, signing_key):
    """An emulator whose time only moves when the test calls ``clock.advance``."""
    emu = Emulator(clock=clock, signing_key=signing_key).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def make_emulator(signing_key):
    """Factory for emulators with custom settings; all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(**kwargs) -> Emulator:
        emu = Emulator(**{"signing_key": signing_key, **kwargs}).start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def api(emulator: Emulator):
    with requests.Session() as session:
        yield Api(emulator, session)


@pytest.fixture
def api_for():
    """Build an :class:`Api` for another emulator (custom policy, clock...)."""
    sessions: list[requests.Session] = []

    def factory(emu: Emulator) -> Api:
        session = requests.Session()
        sessions.append(session)
        return Api(emu, session)

    yield factory
    for session in sessions:
        session.close()
