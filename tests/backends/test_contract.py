"""The store contract of ``backends.base.SecretBackend``: one test per rule, run against every store.

Each test runs once per store kind (the ``store`` fixture of tests/fixtures/plugin.py): the file store
in a fresh directory, Vault KV v2 (OpenBao's ``secret/``), Vault KV v1 (a ``kv1/`` mount) and AWS
Secrets Manager (moto's server). Every test uses paths of its own, so the session's servers need no
reset and the tests do not depend on each other's order.

Values are compared as records, not as bytes: Vault stores the JSON object and serialises it again,
and the stores without a metadata endpoint (the file store, KV v1) keep a revision counter and the
metadata inside the record, in its ``rotator`` section (see :func:`payload`).
"""

from __future__ import annotations

import json
import os
import uuid
from types import SimpleNamespace

import pytest

from backends.base import BackendError, CASConflict, SecretBackend, StagingBackend, StoredValue
from rotator.core.record import MANAGED_BY
from rotator.core.redact import scrub
from tests.fixtures.stores import write_raw

# A policy that may read a KV v2 target's metadata and nothing else: not its value.
# https://openbao.org/docs/concepts/policies/ , https://openbao.org/api-docs/secret/kv/kv-v2/
METADATA_ONLY_POLICY = 'path "secret/metadata/*" { capabilities = ["read"] }'


# -- helpers ----------------------------------------------------------------------------------
def new_path() -> str:
    return f"contract/{uuid.uuid4().hex[:12]}"


def rid() -> str:
    """A rotation id as the engine makes them (uuid4, 36 characters: a valid AWS ClientRequestToken)."""
    return str(uuid.uuid4())


def record(**fields) -> str:
    """A record's JSON text with an access token of its own (not token-shaped: only care keeps it hidden)."""
    return json.dumps({"access_token": f"contract-secret-{uuid.uuid4().hex}", "token_id": f"tid-{uuid.uuid4().hex[:8]}",
                       "rotator": {"schema": 1, "target": "ci"}, **fields})


def payload(text: str | None) -> dict:
    """The record as written: without the revision and metadata a store may keep in its ``rotator`` section."""
    assert text is not None, "the target holds no value"
    data = json.loads(text)
    rotator = {k: v for k, v in (data.get("rotator") or {}).items() if k not in ("revision", "metadata")}
    return {**data, "rotator": rotator}


def create(store: SecretBackend, path: str, text: str, metadata: dict[str, str | None] | None = None):
    """Write the first value of ``path``; returns its version."""
    return store.write(path, text, expected_version=None, metadata=metadata or {}, rotation_id=rid())


def only(metadata, *keys: str) -> dict[str, str]:
    """The entries of ``keys`` in ``metadata``: stores add their own keys (versions, times, flags)."""
    return {k: v for k, v in (metadata or {}).items() if k in keys}


def credentials(store_kind: str, request) -> set[str]:
    """What the ``store`` fixture logs the store in with (tests/fixtures/plugin.py)."""
    if store_kind.startswith("vault"):
        return {request.getfixturevalue("openbao").root_token}
    if store_kind == "aws":
        return {os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]}
    return set()


def value_blind_reader(store_kind: str, make_store, request) -> SecretBackend:
    """A store on the same targets whose identity may read metadata but not values."""
    if store_kind == "vault-kv2":
        openbao = request.getfixturevalue("openbao")
        openbao.write_policy("contract-metadata-only", METADATA_ONLY_POLICY)
        token = openbao.create_token(["contract-metadata-only"], ttl="10m")
        request.addfinalizer(lambda: openbao.revoke_token(token))
        return make_store(store_kind, auth={"method": "token", "token_insecure_inline": token})
    if store_kind == "aws":
        # moto's server does not enforce IAM policies, so the denial of secretsmanager:GetSecretValue
        # is made on the client, by a before-call hook answering as AWS does:
        # https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html
        reader = make_store(store_kind)
        reader.client.meta.events.register("before-call.secrets-manager.GetSecretValue", _deny)
        return reader
    raise AssertionError(f"no value-blind identity for the {store_kind} store")


def _deny(**_kwargs):
    answer = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform "
                                                                    "secretsmanager:GetSecretValue"},
              "ResponseMetadata": {"HTTPStatusCode": 400}}
    return SimpleNamespace(status_code=400, headers={}), answer


# -- read and write ---------------------------------------------------------------------------
def test_a_new_target_reads_no_value_and_no_version(store):
    assert store.read(new_path()) == StoredValue(None, None)


def test_write_then_read_returns_the_text_and_a_new_version(store):
    path, first, second = new_path(), record(), record(generation=2)
    created = create(store, path, first)
    stored = store.read(path)
    assert created is not None and stored.version == created
    assert payload(stored.text) == payload(first)
    updated = store.write(path, second, expected_version=created, metadata={}, rotation_id=rid())
    stored = store.read(path)
    assert updated != created and stored.version == updated
    assert payload(stored.text) == payload(second)


def test_a_write_naming_a_stale_version_raises_cas_conflict_and_changes_nothing(store):
    path, current = new_path(), record(generation=2)
    stale = create(store, path, record(), {"generation": "1"})
    latest = store.write(path, current, expected_version=stale, metadata={"generation": "2"}, rotation_id=rid())
    metadata = store.read_metadata(path)
    with pytest.raises(CASConflict):
        store.write(path, record(generation=3), expected_version=stale, metadata={"generation": "3"},
                    rotation_id=rid())
    stored = store.read(path)
    assert stored.version == latest and payload(stored.text) == payload(current)
    assert store.read_metadata(path) == metadata
    if isinstance(store, StagingBackend):  # nor is the refused value left staged
        assert store.staging(path).pending is None


def test_creating_a_target_someone_else_just_created_raises_cas_conflict(store, store_kind, make_store):
    path, theirs = new_path(), record()
    assert store.read(path).version is None
    create(make_store(store_kind), path, theirs)  # another writer, on the same targets
    with pytest.raises(CASConflict):
        create(store, path, record())
    assert payload(store.read(path).text) == payload(theirs)


def test_a_value_with_unicode_survives(store):
    path, text = new_path(), record(note="Grüße aus Zürich — 東京 ✓ 🔑", username="jörg")
    create(store, path, text)
    assert payload(store.read(path).text) == payload(text)


# -- metadata ---------------------------------------------------------------------------------
def test_write_merges_metadata_and_a_none_value_removes_a_key(store):
    path = new_path()
    version = create(store, path, record(), {"alpha": "1", "beta": "2"})
    store.write(path, record(), expected_version=version, metadata={"beta": None, "gamma": "3"}, rotation_id=rid())
    assert only(store.read_metadata(path), "alpha", "beta", "gamma") == {"alpha": "1", "gamma": "3"}


def test_patch_metadata_merges_and_a_none_value_removes_a_key(store):
    path = new_path()
    create(store, path, record(), {"alpha": "1", "beta": "2"})
    store.patch_metadata(path, {"beta": None, "gamma": "3"})
    assert only(store.read_metadata(path), "alpha", "beta", "gamma") == {"alpha": "1", "gamma": "3"}


def test_patch_metadata_never_changes_the_value(store):
    path, text = new_path(), record()
    create(store, path, text, {"generation": "1"})
    store.patch_metadata(path, {"rotate_requested": "true", "generation": None})
    assert only(store.read_metadata(path), "rotate_requested", "generation") == {"rotate_requested": "true"}
    assert payload(store.read(path).text) == payload(text)


def test_read_metadata_of_a_missing_target_is_none(store):
    assert store.read_metadata(new_path()) is None


def test_metadata_without_secret_is_honest(store, store_kind, make_store, request):
    path = new_path()
    create(store, path, record(), {"generation": "7"})
    if not store.metadata_without_secret:
        # The store says reading metadata reads the secret: the metadata is kept inside the value.
        assert json.loads(store.read(path).text)["rotator"]["metadata"]["generation"] == "7"
        return
    reader = value_blind_reader(store_kind, make_store, request)
    with pytest.raises(BackendError):  # the reader's identity really may not read the value
        reader.read(path)
    assert only(reader.read_metadata(path), "generation") == {"generation": "7"}


# -- listing and checking ---------------------------------------------------------------------
def test_list_managed_lists_exactly_the_managed_paths(store):
    prefix = new_path()
    managed = [f"{prefix}/a", f"{prefix}/team/b"]
    for path in managed:
        create(store, path, record(), {"managed_by": MANAGED_BY})
    write_raw(store, f"{prefix}/by-hand", record())  # a value a person put there: no managed_by
    # The servers are shared by the whole session: look only at this test's paths.
    assert sorted(path for path in store.list_managed() if path.startswith(f"{prefix}/")) == managed


def test_check_returns_a_one_line_summary_without_secrets(store, store_kind, request):
    text = record()
    create(store, new_path(), text)
    summary = store.check()
    assert isinstance(summary, str) and summary.strip() and "\n" not in summary
    secrets = {json.loads(text)["access_token"], *credentials(store_kind, request)}
    assert not [secret for secret in secrets if secret in summary]
    assert scrub(summary) == summary, "the summary holds something token-shaped"
