"""Engine fixtures: a real emulator, a store, an engine with a clock tests can move."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from backends.base import create_backend
from rotator.core.options import Options
from tests.fixtures.moto_server import aws_env
from rotator.core.target import Target
from rotator.engine import Engine
from rotator.jfrog import AccessClient
from rotator.core.token_spec import TokenSpec


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


STORES = ("file", "vault-kv2", "vault-kv1", "aws")


@pytest.fixture(scope="session")
def kv1_mount(openbao):
    openbao.enable_kv1("kv1")
    return "kv1"


@pytest.fixture(params=STORES)
def store(request, tmp_path, monkeypatch):
    """Every store the engine supports, each on its real server (OpenBao, moto) or disk."""
    backend = make_store(request.param, request, tmp_path, monkeypatch)
    yield backend
    backend.close()


def make_store(kind, request, tmp_path, monkeypatch):
    if kind == "file":
        options = {"type": "file", "directory": str(tmp_path / "secrets")}
    elif kind.startswith("vault"):
        openbao = request.getfixturevalue("openbao")
        mount = request.getfixturevalue("kv1_mount") if kind == "vault-kv1" else "secret"
        options = {"type": "vault", "url": openbao.addr, "mount": mount,
                   "auth": {"method": "token", "token_insecure_inline": openbao.root_token}}
    else:
        moto = request.getfixturevalue("moto_server")
        aws_env(monkeypatch)
        options = {"type": "aws-secretsmanager", "region": "us-east-1", "endpoint_url": moto.url, "timeout": "10s"}
    return create_backend("store", Options(options, "backends.store"))


def write_raw(store, path, text):
    """Put a value into a store the way a person would, bypassing the rotator (malformed records)."""
    kind = type(store).__name__
    if kind == "FileBackend":
        file = store._file(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    elif kind == "VaultBackend":
        client = store._client
        if store.kv_version == 2:
            client.secrets.kv.v2.create_or_update_secret(path, secret=json.loads(text), mount_point=store.mount)
        else:
            client.secrets.kv.v1.create_or_update_secret(path, secret=json.loads(text), mount_point=store.mount)
    else:
        store.client.create_secret(Name=path, SecretString=text)


def read_raw(store, path):
    """The value as a consumer reads it (AWS: by stage, never stage-less)."""
    return store.read(path).text


@pytest.fixture
def target():
    return Target(name="ci", backend="store", path=f"jfrog/ci-{uuid.uuid4().hex[:8]}",
                       token=TokenSpec(username="ci", groups="deployers", expiry=7200, force_revocable=True),
                        overlap=3600, orphan_grace=0)


@pytest.fixture
def make_engine(users, clock):
    """``make_engine(backend, has_admin=True, hook=None)`` -> Engine talking to the emulator."""
    clients = []

    def make(backend, *, has_admin=True, hook=None, backend_name="store"):
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


def with_(target: Target, **changes) -> Target:
    return replace(target, **changes)
