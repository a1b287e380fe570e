"""VaultBackend against a real OpenBao dev server: KV v2/v1, CAS, metadata, namespaces, auth, errors.

No mocks: every test talks to the session's ``bao server -dev`` on 127.0.0.1. Each test uses its
own path (or mount) so tests do not depend on each other's order.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import socket
import ssl
import threading
import urllib.parse
import uuid

import pytest
import requests
import trustme

from backends.base import (
    BackendError,
    CASConflict,
    EventStream,
    LocalStore,
    RenewableAuth,
    RotationRequests,
    SecretBackend,
    StagingBackend,
    StoredValue,
    WriteOutcomeUnknown,
    create_backend,
)
from backends.vault import VaultBackend, VaultPermissionDenied
from rotator.core.options import ConfigError, Options
from rotator.core.record import MANAGED_BY

NAME = "vault-main"
WHERE = f"backends.{NAME}"
TOKEN_SHAPE = re.compile(r"\b(?:hv[sbr]|s|b)\.[A-Za-z0-9]{20,}")
RECORD = {"access_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "token_id": "tid-1",
          "rotator": {"schema": 1, "target": "ci"}}

# Every credential a test creates, so the log check below can look for each of them.
SECRETS: set[str] = set()

KV2_RW_POLICY = """
path "secret/data/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read", "patch", "list"] }
"""


# -- helpers ----------------------------------------------------------------------------------
def secret(value: str) -> str:
    SECRETS.add(value)
    return value


def unique(prefix: str = "jfrog") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def config(openbao, **overrides) -> dict:
    cfg = {"type": "vault", "url": openbao.addr, "auth": {"method": "token", "token_env": "TEST_BAO_TOKEN"}}
    cfg.update(overrides)
    return cfg


def build(cfg: dict) -> VaultBackend:
    """Through the registry, as the real config loader does (it calls options.finish())."""
    return create_backend(NAME, Options(cfg, WHERE, "rotator.yaml"))


def record_text(**changes) -> str:
    return json.dumps({**RECORD, **changes})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog, openbao):
    """After each test: no log record (at DEBUG, unfiltered) shows a token or credential."""
    caplog.set_level(logging.DEBUG)
    yield
    known = SECRETS | {openbao.root_token}
    # In teardown caplog.records holds only this phase: look at setup and call explicitly.
    for rec in caplog.get_records("setup") + caplog.get_records("call"):
        text = rec.getMessage() + (rec.exc_text or "")
        assert not TOKEN_SHAPE.search(text), f"token-shaped text logged by {rec.name}: {text!r}"
        assert not [s for s in known if s in text], f"a credential was logged by {rec.name}"


@pytest.fixture
def backends():
    """Builds backends and closes them after the test."""
    made: list[VaultBackend] = []

    def make(cfg: dict) -> VaultBackend:
        backend = build(cfg)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        SECRETS.add(backend.client.token or "")
        backend.close()
    SECRETS.discard("")


@pytest.fixture
def root_env(monkeypatch, openbao):
    monkeypatch.setenv("TEST_BAO_TOKEN", openbao.root_token)


@pytest.fixture
def kv2(backends, openbao, root_env) -> VaultBackend:
    return backends(config(openbao))


@pytest.fixture
def approle(openbao):
    """A role whose tokens may read and write secret/ (role_id, secret_id registered as secrets)."""
    openbao.write_policy("rotator-rw", KV2_RW_POLICY)
    role_id, secret_id = openbao.make_approle("rotator", ["rotator-rw"])
    return secret(role_id), secret(secret_id)


@pytest.fixture
def approle_backend(backends, openbao, approle, monkeypatch) -> VaultBackend:
    monkeypatch.setenv("TEST_SECRET_ID", approle[1])
    return backends(config(openbao, kv_version=2, auth={"method": "approle", "role_id": approle[0],
                                                        "secret_id_env": "TEST_SECRET_ID"}))


# -- KV v2 data -----------------------------------------------------------------------------
def test_kv2_read_of_missing_path_has_no_value_and_no_version(kv2):
    assert kv2.read(unique()) == StoredValue(None, None)


def test_create_only_write_reads_back_version_1_with_custom_metadata(kv2):
    path = unique()
    version = kv2.write(path, record_text(), expected_version=None,
                        metadata={"managed_by": MANAGED_BY, "token_id": "tid-1"}, rotation_id="r1")
    stored = kv2.read(path)
    assert version == 1 and stored.version == 1
    assert json.loads(stored.text) == RECORD
    assert stored.metadata == {"managed_by": MANAGED_BY, "token_id": "tid-1", "rotator_version": "1"}


def test_cas_write_with_current_version_creates_next_version(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    assert kv2.write(path, record_text(token_id="tid-2"), expected_version=1, metadata={}, rotation_id="r2") == 2
    assert json.loads(kv2.read(path).text)["token_id"] == "tid-2"


def test_cas_write_with_stale_version_conflicts_and_keeps_value(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    kv2.write(path, record_text(token_id="tid-2"), expected_version=1, metadata={}, rotation_id="r2")
    with pytest.raises(CASConflict):
        kv2.write(path, record_text(token_id="tid-stale"), expected_version=1, metadata={}, rotation_id="r3")
    stored = kv2.read(path)
    assert stored.version == 2 and json.loads(stored.text)["token_id"] == "tid-2"


def test_create_only_write_conflicts_when_value_exists(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    with pytest.raises(CASConflict):
        kv2.write(path, record_text(token_id="other"), expected_version=None, metadata={}, rotation_id="r2")


def test_plain_text_is_kept_under_value_and_read_back_as_the_text(kv2, openbao):
    """Vault KV holds JSON objects: a value in another format (a bare token, env text) is stored as
    ``{"value": <text>}`` (``bao kv get -field=value``) and read back as the text."""
    path = unique()
    kv2.write(path, "JFROG_ACCESS_TOKEN=abc\n", expected_version=None, metadata={}, rotation_id="r1")
    assert kv2.read(path).text == "JFROG_ACCESS_TOKEN=abc\n"
    assert openbao.api("GET", f"secret/data/{path}")["data"]["data"] == {"value": "JFROG_ACCESS_TOKEN=abc\n"}


def test_write_rejects_an_object_that_is_not_valid_json(kv2):
    with pytest.raises(BackendError, match="not valid JSON"):
        kv2.write(unique(), "{not json", expected_version=None, metadata={}, rotation_id="r1")


def test_deleted_current_version_reads_as_none_and_cas_write_replaces_it(kv2, openbao):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    kv2.write(path, record_text(token_id="tid-2"), expected_version=1, metadata={}, rotation_id="r2")
    openbao.api("DELETE", f"secret/data/{path}")  # soft-delete the current version 2
    stored = kv2.read(path)
    assert stored.text is None and stored.version == 2
    assert kv2.write(path, record_text(token_id="tid-3"), expected_version=stored.version,
                     metadata={}, rotation_id="r3") == 3


def test_destroyed_current_version_reads_as_none_with_its_version(kv2, openbao):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    openbao.api("PUT", f"secret/destroy/{path}", json={"versions": [1]})
    assert kv2.read(path) == StoredValue(None, 1, {})


# -- KV v2 metadata ---------------------------------------------------------------------------
def test_patch_metadata_merges_and_keeps_other_keys(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY, "token_id": "t1"},
              rotation_id="r1")
    kv2.patch_metadata(path, {"rotate_requested": "true"})
    meta = kv2.read_metadata(path)
    assert {k: meta[k] for k in ("managed_by", "token_id", "rotate_requested")} == {
        "managed_by": MANAGED_BY, "token_id": "t1", "rotate_requested": "true"}


def test_patch_metadata_with_none_removes_that_key(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={"a": "1", "b": "2"}, rotation_id="r1")
    kv2.patch_metadata(path, {"a": None})
    assert kv2.read(path).metadata == {"b": "2", "rotator_version": "1"}


def test_write_merges_metadata_into_existing_custom_metadata(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={"a": "1", "b": "1"}, rotation_id="r1")
    kv2.write(path, record_text(), expected_version=1, metadata={"b": "2"}, rotation_id="r2")
    assert kv2.read(path).metadata == {"a": "1", "b": "2", "rotator_version": "2"}


def test_read_metadata_of_missing_path_is_none(kv2):
    assert kv2.read_metadata(unique()) is None


def test_read_metadata_does_not_read_the_secret(backends, openbao, kv2, monkeypatch):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY}, rotation_id="r1")
    openbao.write_policy("metadata-only", 'path "secret/metadata/*" { capabilities = ["read"] }')
    monkeypatch.setenv("TEST_META_TOKEN", secret(openbao.create_token(["metadata-only"])))
    reader = backends(config(openbao, kv_version=2, auth={"token_env": "TEST_META_TOKEN"}))
    meta = reader.read_metadata(path)
    assert meta["managed_by"] == MANAGED_BY and meta["current_version"] == "1" and meta["vault_updated_time"]
    with pytest.raises(VaultPermissionDenied):  # proves the policy really forbids the data
        reader.read(path)


def test_metadata_without_secret_is_true_on_kv2(kv2):
    assert kv2.metadata_without_secret is True and kv2.kv_version == 2


# -- KV v1 ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kv1_mount(openbao) -> str:
    mount = f"kv1-{uuid.uuid4().hex[:6]}"
    openbao.enable_kv1(mount)
    return mount


@pytest.fixture
def kv1(backends, openbao, root_env, kv1_mount) -> VaultBackend:
    return backends(config(openbao, mount=kv1_mount))


def test_kv1_mount_is_detected_and_keeps_metadata_in_the_record(kv1):
    assert kv1.kv_version == 1 and kv1.metadata_without_secret is False
    path = unique()
    assert kv1.write(path, record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY},
                     rotation_id="r1") == 1
    stored = kv1.read(path)
    assert stored.version == 1 and stored.metadata == {"managed_by": MANAGED_BY}
    assert json.loads(stored.text)["rotator"]["revision"] == 1


def test_kv1_revision_counter_cas_succeeds_and_stale_revision_conflicts(kv1):
    path = unique()
    kv1.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    assert kv1.write(path, record_text(token_id="tid-2"), expected_version=1, metadata={}, rotation_id="r2") == 2
    with pytest.raises(CASConflict):
        kv1.write(path, record_text(token_id="stale"), expected_version=1, metadata={}, rotation_id="r3")
    stored = kv1.read(path)
    assert stored.version == 2 and json.loads(stored.text)["token_id"] == "tid-2"


def test_kv1_value_without_rotator_revision_reads_as_revision_0(kv1, openbao, kv1_mount):
    path = unique()
    openbao.api("POST", f"{kv1_mount}/{path}", json={"access_token": "x", "rotator": "not an object"})
    stored = kv1.read(path)
    assert stored.version == 0 and stored.text is not None
    assert kv1.write(path, record_text(), expected_version=0, metadata={}, rotation_id="r1") == 1


def test_kv1_patch_metadata_bumps_revision_and_keeps_value(kv1):
    path = unique()
    kv1.write(path, record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY}, rotation_id="r1")
    kv1.patch_metadata(path, {"rotate_requested": "true"})
    stored = kv1.read(path)
    assert stored.version == 2 and json.loads(stored.text)["token_id"] == RECORD["token_id"]
    assert stored.metadata == {"managed_by": MANAGED_BY, "rotate_requested": "true"}


# -- listing ----------------------------------------------------------------------------------
def test_list_managed_finds_only_managed_paths(backends, openbao, root_env):
    mount = f"kv2-{uuid.uuid4().hex[:6]}"
    openbao.enable_kv2(mount)
    backend = backends(config(openbao, mount=mount))
    for path, meta in (("a", {"managed_by": MANAGED_BY}), ("b", {"managed_by": "someone-else"}),
                       ("team/x/y", {"managed_by": MANAGED_BY}), ("team/plain", {})):
        backend.write(path, record_text(), expected_version=None, metadata=meta, rotation_id="r")
    assert backend.list_managed() == ["a", "team/x/y"]


def test_list_managed_on_kv1_reads_rotator_metadata(kv1, openbao, kv1_mount):
    prefix = unique("lm")
    kv1.write(f"{prefix}/managed", record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY},
              rotation_id="r")
    openbao.api("POST", f"{kv1_mount}/{prefix}/manual", json={"password": "x"})
    assert f"{prefix}/managed" in kv1.list_managed()
    assert f"{prefix}/manual" not in kv1.list_managed()


# -- rotation requests ----------------------------------------------------------------------
def test_request_objects_are_listed_read_and_deleted_on_kv2(backends, openbao, root_env):
    backend = backends(config(openbao, request_prefix=unique("requests")))
    where = backend.write_request("alpha", "req-1", {"requested_by": "ci", "reason": "CHG-1"}, token=openbao.root_token)
    openbao.api("POST", f"secret/data/{backend.request_prefix}/alpha/nested/req-2", json={"data": {"x": "1"}})
    assert where == f"secret/{backend.request_prefix}/alpha/req-1"
    assert backend.pending_requests() == {"alpha": ["req-1"]}, "a sub-folder of a target is not a request"
    assert backend.read_request("alpha", "req-1") == {"requested_by": "ci", "reason": "CHG-1"}
    backend.delete_request("alpha", "req-1")
    assert backend.requests_for("alpha") == [] and backend.read_request("alpha", "req-1") == {}


def test_requests_on_a_kv1_mount_are_refused_instead_of_listed_from_kv1(kv1, openbao, kv1_mount):
    # Request objects are KV v2 secrets. Before the split, the request LIST was a second
    # definition of VaultBackend._list, silently replaced by the walk's version-aware one: on
    # KV v1 it listed this secret as a request that no read could find.
    openbao.api("POST", f"{kv1_mount}/{kv1.request_prefix}/alpha/req-1", json={"requested_by": "x"})
    assert kv1.accepts_requests() is False
    with pytest.raises(BackendError, match="KV v1; rotation requests need a KV v2 mount"):
        kv1.pending_requests()
    with pytest.raises(BackendError, match="KV v2"):
        kv1.requests_for("alpha")


# -- capabilities (backends.base protocols) ------------------------------------------------------
def test_kv2_store_has_the_vault_capabilities_and_accepts_requests(kv2):
    for protocol in (SecretBackend, RenewableAuth, RotationRequests, EventStream):
        assert isinstance(kv2, protocol), protocol.__name__
    assert not isinstance(kv2, StagingBackend) and not isinstance(kv2, LocalStore)
    assert kv2.accepts_requests() is True and kv2.flag_location("/jfrog/ci/") == "secret/metadata/jfrog/ci"


def test_kv1_store_has_the_same_capabilities_but_accepts_no_requests(kv1):
    for protocol in (SecretBackend, RenewableAuth, RotationRequests, EventStream):
        assert isinstance(kv1, protocol), protocol.__name__
    assert kv1.accepts_requests() is False


def test_loading_and_validating_credentials_make_no_remote_call(root_env):
    with socket.socket() as silent:  # a call would connect here (then wait for an answer that never comes)
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.setblocking(False)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        backend = build({"type": "vault", "url": url, "timeout": 1, "auth": {"token_env": "TEST_BAO_TOKEN"}})
        backend.validate_credentials()
        assert isinstance(backend, RenewableAuth) and backend.flag_location("ci") == "secret/metadata/ci"
        # capability checks read no property that asks Vault (isinstance does read them before 3.12)
        assert isinstance(backend, RotationRequests) and isinstance(backend, EventStream)
        assert (backend.name, backend.url, backend.mount, backend.request_prefix) == (
            NAME, url, "secret", "jfrog-rotator-requests")
        backend.close()
        with pytest.raises(BlockingIOError):  # the kernel queues any connection made before this line
            silent.accept()


# -- namespaces -------------------------------------------------------------------------------
def test_namespace_write_is_invisible_from_root(backends, openbao, root_env):
    ns = f"team-a-{uuid.uuid4().hex[:6]}"
    openbao.create_namespace(ns)
    openbao.enable_kv2("secret", namespace=ns)
    in_ns = backends(config(openbao, namespace=ns))
    at_root = backends(config(openbao))
    path = unique()
    in_ns.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    assert in_ns.read(path).version == 1
    assert at_root.read(path) == StoredValue(None, None)


# -- auth -------------------------------------------------------------------------------------
def test_approle_login_works(approle_backend):
    path = unique()
    approle_backend.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    assert approle_backend.read(path).version == 1


def test_approle_relogs_in_transparently_after_token_revoked(approle_backend, openbao):
    path = unique()
    approle_backend.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    old = secret(approle_backend.client.token)
    openbao.revoke_token(old)
    assert approle_backend.read(path).version == 1
    assert approle_backend.client.token != old


def test_refresh_auth_renews_short_ttl_renewable_token(backends, openbao, monkeypatch):
    monkeypatch.setenv("TEST_SHORT_TOKEN", secret(openbao.create_token(["default"], ttl="30s")))
    backend = backends(config(openbao, kv_version=2, auth={"token_env": "TEST_SHORT_TOKEN"}))
    assert backend.token_ttl() <= 30
    assert backend.refresh_auth(min_ttl=120) == "renewed"
    assert backend.token_ttl() > 100


def test_refresh_auth_leaves_a_fresh_token_alone(backends, openbao, monkeypatch):
    monkeypatch.setenv("TEST_LONG_TOKEN", secret(openbao.create_token(["default"], ttl="1h")))
    backend = backends(config(openbao, kv_version=2, auth={"token_env": "TEST_LONG_TOKEN"}))
    assert backend.refresh_auth(min_ttl=60) == "ok"


def test_refresh_auth_relogs_in_with_approle_when_token_invalid(approle_backend, openbao):
    approle_backend.login()
    old = secret(approle_backend.client.token)
    openbao.revoke_token(old)
    assert approle_backend.refresh_auth() == "relogin"
    assert approle_backend.client.token != old and approle_backend.token_ttl() > 0


def test_refresh_auth_relogs_in_when_renewal_is_capped_by_max_ttl(backends, openbao, monkeypatch):
    role_id, secret_id = openbao.make_approle("short-lived", ["default"], token_ttl="5s", token_max_ttl="10s")
    monkeypatch.setenv("TEST_SHORT_SECRET_ID", secret(secret_id))
    backend = backends(config(openbao, kv_version=2, auth={
        "method": "approle", "role_id": secret(role_id), "secret_id_env": "TEST_SHORT_SECRET_ID"}))
    backend.login()
    old = secret(backend.client.token)
    assert backend.refresh_auth(min_ttl=60) == "relogin"
    assert backend.client.token != old


def test_refresh_auth_with_revoked_fixed_token_raises(backends, openbao, monkeypatch):
    token = secret(openbao.create_token(["default"]))
    monkeypatch.setenv("TEST_DOOMED_TOKEN", token)
    backend = backends(config(openbao, kv_version=2, auth={"token_env": "TEST_DOOMED_TOKEN"}))
    openbao.revoke_token(token)
    with pytest.raises(VaultPermissionDenied) as info:
        backend.refresh_auth()
    assert token not in str(info.value)


def test_token_method_reads_token_env(backends, openbao, monkeypatch):
    monkeypatch.setenv("MY_TOKEN_VAR", openbao.root_token)
    backend = backends(config(openbao, auth={"method": "token", "token_env": "MY_TOKEN_VAR"}))
    assert backend.read(unique()) == StoredValue(None, None)


def test_token_method_falls_back_to_vault_token_before_bao_token(backends, openbao, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.setenv("BAO_TOKEN", "not-a-valid-token")
    backend = backends(config(openbao, auth=None))
    assert backend.read(unique()) == StoredValue(None, None)


def test_token_method_falls_back_to_bao_token(backends, openbao, monkeypatch):
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    backend = backends(config(openbao, auth={"method": "token"}))
    assert backend.read(unique()) == StoredValue(None, None)


def test_validate_credentials_names_the_key_of_a_missing_env_var(openbao, monkeypatch):
    monkeypatch.delenv("UNSET_TOKEN_VAR", raising=False)
    backend = build(config(openbao, auth={"token_env": "UNSET_TOKEN_VAR"}))  # lazy: no error yet
    with pytest.raises(ConfigError) as info:
        backend.validate_credentials()
    assert info.value.key == f"{WHERE}.auth.token_env" and "UNSET_TOKEN_VAR" in str(info.value)


# -- config errors ----------------------------------------------------------------------------
def config_error(cfg: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(cfg)
    return info.value


def test_unknown_auth_method_names_the_key(openbao):
    assert config_error(config(openbao, auth={"method": "ldap"})).key == f"{WHERE}.auth.method"


def test_missing_url_without_env_names_the_key(openbao, monkeypatch):
    for name in ("VAULT_ADDR", "BAO_ADDR"):
        monkeypatch.delenv(name, raising=False)
    cfg = config(openbao)
    del cfg["url"]
    assert config_error(cfg).key == f"{WHERE}.url"


def test_url_falls_back_to_bao_addr(openbao, monkeypatch, root_env):
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv("BAO_ADDR", openbao.addr)
    cfg = config(openbao)
    del cfg["url"]
    backend = build(cfg)
    assert backend.url == openbao.addr and backend.read(unique()) == StoredValue(None, None)
    backend.close()


def test_two_token_sources_name_the_second_key(openbao):
    err = config_error(config(openbao, auth={"token_env": "A", "token_file": "/tmp/x"}))
    assert err.key == f"{WHERE}.auth.token_file"


def test_unknown_key_inside_auth_is_rejected(openbao):
    assert config_error(config(openbao, auth={"method": "token", "role": "x"})).key == f"{WHERE}.auth.role"


def test_kubernetes_auth_requires_role(openbao):
    assert config_error(config(openbao, auth={"method": "kubernetes"})).key == f"{WHERE}.auth.role"


def test_unknown_backend_key_is_rejected_and_known_keys_are_consumed(openbao):
    backend = build(config(openbao, mount="kv/", kv_version=1, namespace="ns1", tls_verify=True, timeout="5s",
                           reconcile_interval="2m", request_prefix="/reqs/"))
    assert (backend.mount, backend.kv_version, backend.namespace, backend.timeout, backend.reconcile_interval,
            backend.request_prefix) == ("kv", 1, "ns1", 5, 120, "reqs")
    assert config_error(config(openbao, mountt="x")).key == f"{WHERE}.mountt"


# -- errors -----------------------------------------------------------------------------------
def test_permission_denied_names_path_and_hides_token(backends, openbao, monkeypatch):
    token = secret(openbao.create_token(["default"]))
    monkeypatch.setenv("TEST_WEAK_TOKEN", token)
    backend = backends(config(openbao, kv_version=2, auth={"token_env": "TEST_WEAK_TOKEN"}))
    with pytest.raises(BackendError) as info:
        backend.write("jfrog/denied", record_text(), expected_version=None, metadata={}, rotation_id="r1")
    assert str(info.value).startswith(f"{NAME}:jfrog/denied: write: permission denied")
    assert token not in str(info.value) and not isinstance(info.value, WriteOutcomeUnknown)


def test_connection_refused_names_the_url(backends, root_env):
    url = f"http://127.0.0.1:{free_port()}"
    backend = backends({"type": "vault", "url": url, "kv_version": 2, "timeout": 2,
                        "auth": {"token_env": "TEST_BAO_TOKEN"}})
    with pytest.raises(BackendError, match="connection refused") as info:
        backend.read("jfrog/x")
    assert url in str(info.value)


def test_write_timeout_is_outcome_unknown(backends, root_env):
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        backend = backends({"type": "vault", "url": url, "kv_version": 2, "timeout": 1,
                            "auth": {"token_env": "TEST_BAO_TOKEN"}})
        with pytest.raises(WriteOutcomeUnknown, match="no answer within 1s"):
            backend.write("jfrog/x", record_text(), expected_version=None, metadata={}, rotation_id="r1")


def test_check_summary_names_mount_and_contains_no_token(kv2, openbao):
    summary = kv2.check()
    assert "KV v2" in summary and openbao.addr in summary and "root" in summary
    assert openbao.root_token not in summary and not TOKEN_SHAPE.search(summary)


def test_check_with_approle_contains_no_token(approle_backend):
    summary = approle_backend.check()
    assert "approle" in summary and approle_backend.client.token not in summary


# -- the lean request path of the hot calls -------------------------------------------------
class _Relay(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server in front of OpenBao: ``mode`` "redirect" answers 307 to OpenBao (a
    standby node pointing at the active one); "proxy" is a forward proxy (absolute request URIs);
    "tls" terminates TLS in front of it (a reverse proxy)."""

    upstream = ""
    mode = "redirect"
    seen: list[str] = []

    def _relay(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.mode == "redirect":
            self.send_response(307)
            self.send_header("Location", self.upstream + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urllib.parse.urlsplit(self.path)
        assert (target.scheme == "http") == (self.mode == "proxy"), "only a forward proxy gets absolute URIs"
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")}
        with requests.Session() as upstream:
            upstream.trust_env = False  # not through the proxy (ourselves) again
            answer = upstream.request(self.command, self.upstream + target.path
                                      + (f"?{target.query}" if target.query else ""), headers=headers, data=body,
                                      timeout=10)
        self.send_response(answer.status_code)
        for key in ("Content-Type",):
            if key in answer.headers:
                self.send_header(key, answer.headers[key])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_LIST = _relay

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def relay(openbao, ca):
    def start(mode: str):
        handler = type("Relay", (_Relay,), {"upstream": openbao.addr, "mode": mode, "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        scheme = "http"
        if mode == "tls":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert("127.0.0.1").configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return handler, f"{scheme}://127.0.0.1:{server.server_address[1]}"

    servers: list[http.server.ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _round_trip(backend: VaultBackend, path: str) -> None:
    version = backend.write(path, record_text(), expected_version=None, metadata={"managed_by": MANAGED_BY},
                            rotation_id="r1")
    backend.patch_metadata(path, {"note": "kept"})
    stored = backend.read(path)
    assert json.loads(stored.text or "")["token_id"] == "tid-1" and stored.version == version
    meta = backend.read_metadata(path) or {}
    assert meta["note"] == "kept" and meta["current_version"] == str(version)


def test_hot_calls_follow_a_standby_nodes_redirect(backends, relay, root_env):
    handler, url = relay("redirect")
    backend = backends({"type": "vault", "url": url, "kv_version": 2, "auth": {"token_env": "TEST_BAO_TOKEN"}})
    path = unique()
    _round_trip(backend, path)
    assert {line.split()[0] for line in handler.seen} >= {"POST", "PATCH", "GET"}


def test_hot_calls_go_through_the_environments_http_proxy(backends, relay, openbao, root_env, monkeypatch):
    handler, proxy = relay("proxy")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    backend = backends(config(openbao, kv_version=2))
    path = unique()
    _round_trip(backend, path)
    assert f"GET {openbao.addr}/v1/secret/data/{path}" in handler.seen
    assert f"GET {openbao.addr}/v1/secret/metadata/{path}" in handler.seen
    assert f"POST {openbao.addr}/v1/secret/data/{path}" in handler.seen


def test_hot_calls_verify_tls_with_the_configured_ca(backends, relay, ca, root_env, tmp_path):
    handler, url = relay("tls")
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    backend = backends({"type": "vault", "url": url, "kv_version": 2, "ca_cert": str(bundle),
                        "auth": {"token_env": "TEST_BAO_TOKEN"}})
    _round_trip(backend, unique())
    assert any(line.startswith("GET /v1/secret/metadata/") for line in handler.seen)
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    stranger = backends({"type": "vault", "url": url, "kv_version": 2, "ca_cert": str(other),
                         "auth": {"token_env": "TEST_BAO_TOKEN"}})
    with pytest.raises(BackendError, match="TLS error") as info:
        stranger.read_metadata(unique())
    assert not isinstance(info.value, WriteOutcomeUnknown)


def test_a_closed_store_opens_new_connections_when_used_again(kv2):
    path = unique()
    kv2.write(path, record_text(), expected_version=None, metadata={}, rotation_id="r1")
    kv2.close()
    assert kv2.read_metadata(path)["current_version"] == "1"
