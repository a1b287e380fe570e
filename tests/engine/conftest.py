"""Engine fixtures: a real emulator, an engine with a clock tests can move, a target policy.

Every engine test that takes ``store`` or ``engine`` runs once per store (tests/fixtures/plugin.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from rotator.core.target import Target
from rotator.core.token_spec import TokenSpec
from rotator.engine import Engine
from rotator.jfrog import AccessClient
from tests.fixtures.stores import STORE_NAME


class Clock:
    """The engine's clock: real time (so the emulator's tokens and ours agree) plus what tests add."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    @property
    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def users(emulator):
    emulator.create_user("ci", groups=("deployers",))
    return emulator


@pytest.fixture
def admin(emulator):
    """An admin client for test set-up and checks over HTTP."""
    with AccessClient(emulator.url, access_token=emulator.admin_token) as client:
        yield client


@pytest.fixture
def target():
    """A 4 h token: over JFrog's persistency threshold (3 h), so it can be listed and revoked, and
    under the revocable threshold (6 h), hence ``force_revocable``."""
    return Target(name="ci", backend=STORE_NAME, path=f"jfrog/ci-{uuid.uuid4().hex[:8]}",
                        token=TokenSpec(username="ci", groups="deployers", expiry=14400, force_revocable=True),
                        overlap=3600, orphan_grace=0)


@pytest.fixture
def make_engine(users, clock):
    """``make_engine(backend, has_admin=True, hook=None)`` -> Engine talking to the emulator."""
    clients = []

    def make(backend, *, has_admin=True, hook=None, backend_name=STORE_NAME):
        client = AccessClient(users.url, access_token=users.admin_token if has_admin else None)
        clients.append(client)
        return Engine(jfrog=client, backends={backend_name: backend}, has_admin=has_admin, clock=clock,
                      step_hook=hook, verify_delay=0.01)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def engine(make_engine, store):
    return make_engine(store)
