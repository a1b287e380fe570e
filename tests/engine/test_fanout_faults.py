"""Fan-out with a fault injected at each output, over real HTTP: a Vault KV v2 primary, an AWS
Secrets Manager output (the bare token) and a Vault KV v2 dockerconfigjson output, each reached
through its own loopback proxy (tests/fixtures/tcp_proxy.py). The fault is a store that is down
(nothing reaches it) or one whose answer never comes back although the write landed.

Whatever fails, every output still holds a working token, the run reports the output that failed,
and a later run (the daemon's sync, then a sweep) converges without leaving a live orphan."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace as with_

import pytest

from backends.base import create_backend
from rotator.core.options import Options
from rotator.core.target import Output
from rotator.engine import Engine, RotationStep
from rotator.jfrog import AccessClient
from tests.fixtures.stores import still_known
from tests.fixtures.tcp_proxy import TcpProxy

OUTPUTS = ("primary", "aws", "docker")


@pytest.fixture
def proxies(openbao, moto_server):
    moto_port = int(moto_server.url.rsplit(":", 1)[1])
    started = {"primary": TcpProxy("127.0.0.1", openbao.port), "aws": TcpProxy("127.0.0.1", moto_port),
               "docker": TcpProxy("127.0.0.1", openbao.port)}
    for proxy in started.values():
        proxy.start()
    yield started
    for proxy in started.values():
        proxy.refuse.clear()
        proxy.stall_responses.clear()
        proxy.stop()


@pytest.fixture
def backends(proxies, openbao, make_store):
    """The stores as the engine reaches them (through the proxies, 1 s timeouts), and as the tests
    read the truth (straight to the servers)."""
    def vault(proxy):
        return create_backend("vault", Options({
            "type": "vault", "url": proxy.url, "mount": "secret", "kv_version": "2", "timeout": "1s",
            "auth": {"method": "token", "token_insecure_inline": openbao.root_token}}, "backends.vault"))

    made = {"vault": vault(proxies["primary"]), "docker": vault(proxies["docker"]),
            "aws": create_backend("aws", Options({"type": "aws-secretsmanager", "region": "us-east-1",
                                                  "endpoint_url": proxies["aws"].url, "timeout": "1s",
                                                  "max_attempts": 1}, "backends.aws"))}
    yield made, {"vault": make_store("vault-kv2"), "aws": make_store("aws")}
    for backend in made.values():
        backend.close()


@pytest.fixture
def fan_target(target):
    suffix = uuid.uuid4().hex[:8]
    return with_(target, backend="vault", overlap=0, outputs=(Output("aws", f"jfrog/lambda-{suffix}", "token"),
                                                              Output("docker", f"jfrog/docker-{suffix}",
                                                                     "dockerconfigjson")))


@pytest.fixture
def engine(backends, users, clock):
    made, _ = backends
    with AccessClient(users.url, access_token=users.admin_token) as client:
        yield Engine(jfrog=client, backends=made, has_admin=True, clock=clock, verify_delay=0.01)


def held(backends, target) -> dict[str, str | None]:
    """The token each output holds, read the way its consumer reads it, straight from the server."""
    _, truth = backends
    primary = truth["vault"].read(target.path).text
    aws, docker = target.outputs
    try:
        aws_value = truth["aws"].client.get_secret_value(SecretId=aws.path, VersionStage="AWSCURRENT")["SecretString"]
    except truth["aws"].client.exceptions.ResourceNotFoundException:
        aws_value = None
    docker_text = truth["vault"].read(docker.path).text
    docker_token = None
    if docker_text:
        [entry] = json.loads(docker_text)["auths"].values()
        docker_token = base64.b64decode(entry["auth"]).decode().partition(":")[2]
    return {"primary": json.loads(primary)["access_token"] if primary else None, "aws": aws_value,
            "docker": docker_token}


def fault_at(proxies, where: str, kind: str):
    """A step hook that breaks the store of ``where`` right before the engine writes it."""
    writes = []

    def hook(step, when, rotation_id):
        if when != "before":
            return
        if step is RotationStep.STORE:
            name = "primary"
        elif step is RotationStep.OUTPUTS:
            writes.append(rotation_id)
            name = OUTPUTS[len(writes)]
        else:
            return
        if name == where:
            (proxies[where].refuse if kind == "down" else proxies[where].stall_responses).set()

    return hook


@pytest.mark.parametrize("kind", ["down", "landed"])
@pytest.mark.parametrize("where", OUTPUTS)
def test_a_fault_at_any_output_leaves_working_tokens_is_reported_and_converges(engine, proxies, backends, fan_target,
                                                                              users, where, kind):
    first = engine.rotate(fan_target)
    assert first.outcome == "rotated", first.error
    before = held(backends, fan_target)
    engine.step_hook = fault_at(proxies, where, kind)
    try:
        broken = engine.rotate(fan_target)
    finally:
        engine.step_hook = None
        proxies[where].refuse.clear()
        proxies[where].stall_responses.clear()

    now = held(backends, fan_target)
    assert all(users.authenticates(token) for token in now.values()), now  # old or new, each one works
    assert broken.outcome == "failed"
    if where == "primary":  # the primary's compare-and-set did not confirm: no other output was touched
        assert broken.step == "store" and "the outcome is unknown" in broken.error
        assert now["aws"] == before["aws"] and now["docker"] == before["docker"]
        assert users.is_token_active(broken.token_id), "a token the store might hold is never revoked"
    else:  # the primary and the other output moved; the broken one kept the token it had, and says so
        assert broken.step == "outputs" and f"{fan_target.outputs[OUTPUTS.index(where) - 1].key}:" in broken.error
        states = {o.output: o.state for o in broken.outputs}
        assert states[fan_target.outputs[OUTPUTS.index(where) - 1].key] == "failed"
        assert [s for s in states.values() if s == "rotated"] == ["rotated", "rotated"]
        assert users.is_token_active(first.token_id), "overlap 0, yet an output may still hold it"

    mints = users.mint_count
    synced = engine.sync_outputs(fan_target)  # the daemon's job when the target is not due
    assert synced.outcome == "synced" and users.mint_count == mints, synced.error
    swept = engine.sweep(fan_target)
    assert swept.errors == [], swept.errors
    after = held(backends, fan_target)
    assert len(set(after.values())) == 1 and users.authenticates(after["primary"])
    record = engine.read(fan_target).record
    assert record.outputs_pending == ()
    known = still_known(backends[1]["vault"], fan_target.path)  # a revoked entry may stay until the next write
    assert users.live_token_count(description_prefix="jfrog-rotator:ci:") == len(known)
