"""Each format, in each store that keeps it, read back by the real consumer: the ``bao`` CLI
(``kv get -format=json`` and ``-field=``) and hvac on OpenBao; boto3 and AWS's caching client
(``aws-secretsmanager-caching``) on moto's server; the file as a shell, Docker or npm reads it
(tests/fixtures/consumers.py). What each reads is the token the rotation just stored, and it
works (docs/consumers.md)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import boto3
import hvac
import pytest
from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

from rotator.core.shapes import registry_hosts
from rotator.core.target import Target
from rotator.core.token_spec import TokenSpec
from rotator.engine import Engine
from rotator.jfrog import AccessClient
from tests.fixtures.consumers import npmrc_template, token_as_read
from tests.fixtures.moto_server import aws_env
from tests.fixtures.openbao import bao_binary
from tests.fixtures.stores import STORE_NAME

FORMATS = ("record", "token", "dockerconfigjson", "username-password", "env", "template")
#: What a CI job asks ``bao kv get -field=`` for, per format (text formats sit under ``value``).
FIELD = {"record": "access_token", "token": "value", "env": "value", "template": "value",
         "username-password": "password"}


@pytest.fixture
def rotate(emulator, make_store):
    """``rotate(kind, fmt)`` -> (store, target, token id): one rotation of a fresh target in ``fmt``."""
    emulator.create_user("ci", groups=("deployers",))
    clients = []

    def run(kind: str, fmt: str):
        store = make_store(kind)
        registry = registry_hosts(emulator.url)[0]
        target = Target(name=f"ci-{uuid.uuid4().hex[:8]}", backend=STORE_NAME, path=f"jfrog/ci-{uuid.uuid4().hex[:8]}",
                        token=TokenSpec(username="ci", groups="deployers", expiry=14400, force_revocable=True),
                        format=fmt, template=npmrc_template(registry) if fmt == "template" else None)
        client = AccessClient(emulator.url, access_token=emulator.admin_token)
        clients.append(client)
        engine = Engine(jfrog=client, backends={STORE_NAME: store}, has_admin=True, verify_delay=0.01)
        result = engine.rotate(target)
        assert result.outcome == "rotated", result.error
        return store, target, result.token_id, engine

    yield run
    for client in clients:
        client.close()


def reads(emulator, fmt: str, text: str, token_id: str) -> None:
    """The consumer of ``fmt`` finds in ``text`` the token ``token_id``, and JFrog accepts it."""
    token = token_as_read(fmt, text, url=emulator.url, registry=registry_hosts(emulator.url)[0], username="ci")
    with AccessClient(emulator.url) as client:
        assert client.get_me(token=token)["token_id"] == token_id


def bao(openbao, *args: str) -> str:
    env = {**os.environ, "BAO_ADDR": openbao.addr, "BAO_TOKEN": openbao.root_token}
    answer = subprocess.run([bao_binary(), "kv", "get", "-mount=secret", *args], env=env, capture_output=True,
                            text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


# -- Vault (OpenBao): the bao CLI and hvac --------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_bao_kv_get_and_hvac_read_each_format(rotate, emulator, openbao, fmt):
    store, target, token_id, _ = rotate("vault-kv2", fmt)
    data = json.loads(bao(openbao, "-format=json", target.path))["data"]["data"]
    hvac_data = hvac.Client(url=openbao.addr, token=openbao.root_token).secrets.kv.v2.read_secret_version(
        target.path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert hvac_data == data
    document = data["value"] if set(data) == {"value"} else json.dumps(data)  # a text format sits under "value"
    reads(emulator, fmt, document, token_id)
    if fmt in FIELD:  # what a CI job takes with -field=
        field = bao(openbao, f"-field={FIELD[fmt]}", target.path)
        if fmt in ("record", "username-password"):
            with AccessClient(emulator.url) as client:
                assert client.get_me(token=field)["token_id"] == token_id
        else:
            reads(emulator, fmt, field, token_id)
    else:  # dockerconfigjson: the auths map, as JSON, is what Docker's config.json holds
        auths = json.loads(bao(openbao, "-format=json", "-field=auths", target.path))
        reads(emulator, fmt, json.dumps({"auths": auths}), token_id)


# -- AWS Secrets Manager: boto3 and AWS's caching client ------------------------------------------
@pytest.fixture
def sm(moto_server, monkeypatch):
    aws_env(monkeypatch)
    client = boto3.client("secretsmanager", endpoint_url=moto_server.url, region_name="us-east-1")
    yield client
    client.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_boto3_and_the_caching_client_read_each_format(rotate, emulator, sm, fmt):
    store, target, token_id, engine = rotate("aws", fmt)
    value = sm.get_secret_value(SecretId=target.path, VersionStage="AWSCURRENT")["SecretString"]
    reads(emulator, fmt, value, token_id)
    cache = SecretCache(config=SecretCacheConfig(), client=sm)  # the default: refreshed hourly
    reads(emulator, fmt, cache.get_secret_string(target.path), token_id)

    again = engine.rotate(target)
    assert again.outcome == "rotated", again.error
    # Not refreshed yet, the cache serves the previous token: it still works (the overlap is an hour).
    reads(emulator, fmt, cache.get_secret_string(target.path), token_id)
    cache.refresh_secret_now(target.path)
    reads(emulator, fmt, cache.get_secret_string(target.path), again.token_id)


# -- the file store: the file as its consumer reads it ---------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_file_is_read_as_its_consumer_reads_it(rotate, emulator, fmt):
    store, target, token_id, _ = rotate("file", fmt)
    file = store.directory / f"{target.path}.json"
    assert file.stat().st_mode & 0o777 == 0o600
    reads(emulator, fmt, file.read_text(), token_id)


def test_a_dockerconfigjson_holds_every_registry_asked_for_and_docker_finds_each(emulator, make_store):
    emulator.create_user("ci", groups=("deployers",))
    store = make_store("file")
    hosts = (registry_hosts(emulator.url)[0], "docker.acme.example", "[::1]:8443")
    target = Target(name="ci-pull", backend=STORE_NAME, path="jfrog/ci-pull", format="dockerconfigjson",
                    registry_hosts=hosts, token=TokenSpec(username="ci", expiry=14400, force_revocable=True))
    with AccessClient(emulator.url, access_token=emulator.admin_token) as client:
        result = Engine(jfrog=client, backends={STORE_NAME: store}, has_admin=True, verify_delay=0.01).rotate(target)
    assert result.outcome == "rotated", result.error
    text = (store.directory / "jfrog/ci-pull.json").read_text()
    assert sorted(json.loads(text)["auths"]) == sorted(hosts)
    for host in hosts:
        token = token_as_read("dockerconfigjson", text, url=emulator.url, registry=host, username="ci")
        assert emulator.authenticates(token)
    with pytest.raises(KeyError):  # Docker looks a registry up by its exact host (and port)
        token_as_read("dockerconfigjson", text, url=emulator.url, registry="docker.acme.example:443", username="ci")
