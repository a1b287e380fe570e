"""Secrets users already have are adopted (every shape, every store), and targets write the shapes
their consumers read, with the bookkeeping in the store's metadata (docs/configuration.md, "Formats"
and "Adopting a secret")."""

from __future__ import annotations

import base64
import json
import shlex
import uuid
from dataclasses import replace

import hvac
import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from backends.file import FileBackend
from backends.vault import VaultBackend
from rotator.core.record import SecretRecord
from rotator.core.shapes import find_token
from rotator.core.tags import tag_after_untagged
from rotator.engine.status import target_status
from tests.fixtures.stores import retired_ids

SCOPE = "applied-permissions/groups:deployers"


class _Stores:
    def __init__(self, backends):
        self.backends = backends


def put_by_hand(store, path: str, text: str) -> None:
    """The value a person or another tool left (no metadata of ours)."""
    if isinstance(store, FileBackend):
        file = store.directory / f"{path}.json"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    elif isinstance(store, VaultBackend):
        data = json.loads(text) if text.lstrip().startswith("{") else {"value": text}
        if store.kv_version == 2:
            store.client.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=store.mount)
        else:
            store.client.secrets.kv.v1.create_or_update_secret(path, secret=data, mount_point=store.mount)
    elif isinstance(store, SecretsManagerBackend):
        store.client.create_secret(Name=path, SecretString=text)


def a_token(emulator, **kwargs) -> dict:
    return emulator.create_token("ci", scope=SCOPE, expires_in=14400, force_revocable=True, **kwargs)  # stored: > 3 h


SHAPES = {
    "bare": lambda t: t,
    "access_token": lambda t: json.dumps({"access_token": t}),
    "username-password": lambda t: json.dumps({"username": "ci", "password": t, "note": "keep me"}),
    "jf-atc": lambda t: json.dumps({"scope": SCOPE, "access_token": t, "expires_in": 7200, "token_type": "Bearer"}),
    "dockerconfigjson": lambda t: json.dumps({"auths": {"acme.jfrog.io": {
        "username": "ci", "password": t, "auth": base64.b64encode(f"ci:{t}".encode()).decode()}}}),
    "env": lambda t: f"# written by hand\nexport JFROG_URL=https://acme.jfrog.io\nJFROG_ACCESS_TOKEN={t}\nOTHER=1\n",
}


def same_value(a: str | None, b: str) -> bool:
    """The same value as its consumer reads it (a JSON document may come back with another key order)."""
    if a is None:
        return False
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def holds_metadata_apart(store) -> bool:
    return not (isinstance(store, VaultBackend) and store.kv_version == 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_secret_holding_a_working_token_is_adopted_and_keeps_its_shape(make_engine, store, target, users, clock,
                                                                        admin, shape):
    old = a_token(users)
    text = SHAPES[shape](old["access_token"])
    put_by_hand(store, target.path, text)
    engine = make_engine(store)
    result = engine.rotate(target)
    if not holds_metadata_apart(store):
        assert result.outcome == "failed" and "needs metadata beside the value" in result.error
        assert "left untouched" in result.error and same_value(store.read(target.path).text, text)
        assert users.mint_count == 0
        return
    assert result.outcome == "rotated", result.error
    assert result.previous_token_id == old["token_id"] and result.generation == 1
    stored = store.read(target.path).text
    found = find_token(stored)
    assert found is not None and found.shape == shape and found.token != old["access_token"]
    assert users.authenticates(found.token)
    if shape == "username-password":
        assert json.loads(stored)["note"] == "keep me"
    if shape == "env":
        assert stored.startswith("# written by hand\n") and "OTHER=1" in stored
    meta = store.read_metadata(target.path)
    assert meta["token_id"] == result.token_id and meta["generation"] == "1"
    assert old["token_id"] in retired_ids(meta)  # the adopted token is retired with the overlap
    assert users.is_token_active(old["token_id"])
    status = target_status(_Stores({"store": store}), target)
    assert status.token_id == result.token_id and status.generation == 1 and status.retired_waiting == 1
    assert tag_after_untagged(admin.get_token(result.token_id)["description"]), \
        "the successor's tag says its predecessor carries none (the sweep's one list cannot show it)"
    clock.advance(target.overlap + 1)
    [swept] = engine.sweep_all([target])  # one list for the sweep; the tag makes it read the store
    assert swept.retired_revoked == [old["token_id"]] and not users.is_token_active(old["token_id"])
    assert find_token(store.read(target.path).text).token == found.token  # the sweep left the value alone
    again = engine.rotate(target)  # the next rotation rebuilds the record from the metadata
    assert again.outcome == "rotated" and again.previous_token_id == result.token_id and again.generation == 2


def test_a_reference_token_is_adopted_through_tokens_me(make_engine, store, target, users):
    old = a_token(users, include_reference_token=True)
    put_by_hand(store, target.path, json.dumps({"token": old["reference_token"]}))
    result = make_engine(store).rotate(target)
    if not holds_metadata_apart(store):
        assert result.outcome == "failed"
        return
    assert result.outcome == "rotated" and result.previous_token_id == old["token_id"], result.error


@pytest.mark.parametrize("case", ["dead", "no-token", "adopt-off"])
def test_a_value_that_cannot_be_adopted_is_refused_and_left_untouched(make_engine, store, target, users, admin,
                                                                      case):
    token = a_token(users)
    if case == "dead":
        admin.revoke_token(token["token_id"])
    text = json.dumps({"password": token["access_token"]} if case != "no-token" else {"user": "ci", "note": "x"})
    put_by_hand(store, target.path, text)
    before = users.mint_count
    result = make_engine(store).rotate(replace(target, adopt=False) if case == "adopt-off" else target)
    assert result.outcome == "failed" and result.step == "read"
    expected = {"dead": "whose token does not work", "no-token": "holds no JFrog token",
                "adopt-off": "adopt is false"}[case]
    assert expected in result.error and "left untouched" in result.error and target.path in result.error
    assert token["access_token"] not in result.error
    assert same_value(store.read(target.path).text, text)
    assert users.mint_count == before


@pytest.mark.parametrize("fmt", ["token", "dockerconfigjson", "username-password", "env", "template"])
def test_each_format_is_written_read_back_by_its_consumer_and_rotated_again(make_engine, store, target, users, fmt):
    target = replace(target, format=fmt, template="url={url} user={username} token={access_token}"
                     if fmt == "template" else None)
    engine = make_engine(store)
    first = engine.rotate(target)
    if not holds_metadata_apart(store):
        assert first.outcome == "failed" and f"format {fmt} needs metadata beside the value" in first.error
        assert store.read(target.path).text is None and users.mint_count == 0
        return
    assert first.outcome == "rotated", first.error
    second = engine.rotate(target)
    assert second.outcome == "rotated" and second.previous_token_id == first.token_id, second.error
    text = store.read(target.path).text
    token = consumer_reads(fmt, text, users.url)
    assert users.authenticates(token) and (fmt == "template" or token == find_token(text).token)
    status = target_status(_Stores({"store": store}), target)
    assert status.token_id == second.token_id and status.generation == 2 and status.next_due is not None


def consumer_reads(fmt: str, text: str, url: str) -> str:
    """The token as the consumer of each format gets it."""
    if fmt == "token":
        return text
    if fmt == "dockerconfigjson":  # as Docker does: base64-decode auth, split at the first colon
        (entry,) = json.loads(text)["auths"].values()
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        assert user == entry["username"] == "ci" and password == entry["password"]
        return password
    if fmt == "username-password":
        data = json.loads(text)
        assert data["username"] == "ci"
        return data["password"]
    if fmt == "env":
        env = dict(line.split("=", 1) for line in shlex.split(text, comments=True))
        assert env["JFROG_URL"] == url and env["JFROG_USER"] == "ci"
        return env["JFROG_ACCESS_TOKEN"]
    assert text.startswith(f"url={url} user=ci token=")
    return text.rsplit("token=", 1)[1]


def test_vault_consumers_read_a_bare_token_with_hvac_as_the_value_field(make_engine, openbao, target, users,
                                                                       make_store):
    store = make_store("vault-kv2")
    target = replace(target, format="token", path=f"jfrog/bare-{uuid.uuid4().hex[:8]}")
    result = make_engine(store).rotate(target)
    assert result.outcome == "rotated", result.error
    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    value = client.secrets.kv.v2.read_secret_version(target.path, mount_point="secret",
                                                     raise_on_deleted_version=True)["data"]["data"]["value"]
    assert users.authenticates(value) and value.count(".") == 2


def test_24_retired_tokens_are_listed_and_a_25th_is_refused_before_minting_until_a_sweep_makes_room(
        make_engine, make_store, target, users, clock):
    """A document's bookkeeping is its metadata (AWS tags of 256 characters): a live token cut from
    the retired list would look like an orphan to the sweep, so the rotation that would overflow it
    is refused before it mints, and the list never loses one (docs/architecture.md)."""
    store = make_store("aws")
    target = replace(target, format="token", overlap=3 * 3600, orphan_grace=0)  # 3 h, under the 4 h tokens
    engine = make_engine(store)
    minted = []
    for _ in range(25):
        result = engine.rotate(target)
        assert result.outcome == "rotated", result.error
        minted.append(result.token_id)
        clock.advance(60)
    meta = store.read_metadata(target.path)
    assert meta["retired_count"] == "24" and retired_ids(meta) == minted[:-1]
    assert all(len(meta[key]) <= 250 for key in ("retired", "retired_2", "retired_3", "retired_4"))
    value, mints = store.read(target.path).text, users.mint_count

    refused = engine.rotate(target)
    assert refused.outcome == "failed" and refused.step == "mint"
    assert (f"{store.name}:{target.path} keeps the bookkeeping of format token in its metadata, and the metadata "
            "can list 24 retired tokens (4 keys of 250 characters) and the list would hold 25; nothing was minted"
            ) in refused.error
    assert users.mint_count == mints and store.read(target.path).text == value
    after = store.read_metadata(target.path)
    assert retired_ids(after) == minted[:-1] and after["token_id"] == minted[-1] and after["last_error"]

    swept = engine.sweep(target)  # nothing is due yet: no token is revoked before its overlap, none as an orphan
    assert swept.retired_revoked == [] and swept.orphans_revoked == []
    assert all(users.is_token_active(token_id) for token_id in minted)
    clock.advance(target.overlap - 25 * 60 + 150)  # the first two (retired 60 s and 120 s in) are due
    swept = engine.sweep(target)
    assert swept.retired_revoked == minted[:2] and swept.orphans_revoked == []
    again = engine.rotate(target)
    assert again.outcome == "rotated", again.error
    assert retired_ids(store.read_metadata(target.path)) == minted[2:]
    assert all(users.is_token_active(token_id) for token_id in minted[2:])


def test_a_record_keeps_every_retired_token_whatever_the_metadata_can_list(make_engine, make_store, target, clock):
    store = make_store("aws")
    target = replace(target, overlap=3 * 3600, orphan_grace=0)
    engine = make_engine(store)
    for _ in range(27):
        assert engine.rotate(target).outcome == "rotated"
        clock.advance(60)
    meta = store.read_metadata(target.path)
    assert meta["retired_count"] == "26" and len(retired_ids(meta)) == 24
    assert len(SecretRecord.loads(store.read(target.path).text).retired) == 26
    assert engine.sweep(target).orphans_revoked == []


def test_a_document_on_a_secret_whose_tags_are_nearly_all_taken_is_refused_before_minting(make_engine, make_store,
                                                                                        target, users):
    store = make_store("aws")
    theirs = [{"Key": f"team:{i}", "Value": "x"} for i in range(45)]
    old = a_token(users)
    store.client.create_secret(Name=target.path, SecretString=json.dumps({"username": "ci",
                                                                         "password": old["access_token"]}), Tags=theirs)
    mints = users.mint_count
    result = make_engine(store).rotate(target)
    assert result.outcome == "failed" and result.step == "mint"
    assert "more than the 50 AWS allows: 45 of other tools or people" in result.error
    assert "the bookkeeping of the shape found (JSON with 'password' and 'username') lives in those tags, so nothing " \
           "was minted" in result.error
    assert users.mint_count == mints and json.loads(store.read(target.path).text)["password"] == old["access_token"]
    described = {t["Key"] for t in store.client.describe_secret(SecretId=target.path)["Tags"]}
    assert len(described) <= 50 and "jfrog-rotator:token_id" not in described  # only the failure was recorded
    assert users.is_token_active(old["token_id"])
