"""Emulator test fixtures: emulators with a manual clock or custom settings, and HTTP helpers bound
to them (the plain ``emulator`` fixture is shared: tests/fixtures/plugin.py). All are stopped or
closed after the test."""

from __future__ import annotations

import pytest
import requests

from rotator.emulator import Emulator, ManualClock
from tests.fixtures.emulator_http import Api


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
