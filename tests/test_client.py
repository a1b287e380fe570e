"""AccessClient against the emulator over real HTTP: one test per endpoint and behaviour."""

from __future__ import annotations

import json
import logging
import time

import pytest
import urllib3.util.retry

from rotator.jfrog import AccessClient, JFrogConnectionError, JFrogHTTPError, RetryPolicy
from rotator.jfrog.jwt import decode_claims


@pytest.fixture
def client(emulator):
    with AccessClient(emulator.url, access_token=emulator.admin_token) as c:
        yield c


@pytest.fixture
def sleeps(monkeypatch):
    """Record the waits urllib3's Retry asks for instead of sleeping them."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded


def test_create_token_returns_the_server_answer(client, emulator):
    response = client.create_token({"scope": "applied-permissions/groups:g", "expires_in": 3600,
                                    "refreshable": True, "include_reference_token": True, "username": "ci"})
    assert response.token_id == decode_claims(response.access_token).token_id
    assert response.expires_in == 3600 and response.refresh_token and response.reference_token
    assert emulator.is_token_active(response.token_id)


def test_request_body_is_compact_json_in_given_order(client, emulator):
    client.create_token({"scope": "applied-permissions/user", "refreshable": False, "include_reference_token": False})
    post = [r for r in emulator.requests if r.method == "POST"][-1]
    assert post.body == b'{"scope":"applied-permissions/user","refreshable":false,"include_reference_token":false}'
    assert post.headers.get("Content-Type") == "application/json"


def test_token_response_repr_hides_secrets(client):
    response = client.create_token({"refreshable": True, "include_reference_token": True})
    text = repr(response)
    assert response.access_token not in text and response.refresh_token not in text
    assert response.reference_token not in text and response.token_id in text


def test_revoke_by_id_200_then_204(client):
    token_id = client.create_token({"refreshable": False}).token_id
    assert client.revoke_token(token_id) is True
    assert client.revoke_token(token_id) is False


def test_revoke_unknown_id_is_not_an_error(client):
    assert client.revoke_token("00000000-0000-0000-0000-000000000000") is False


def test_refresh_rotates_all_values_and_consumes_refresh_token(client, emulator):
    first = client.create_token({"username": "ci", "scope": "applied-permissions/groups:g", "refreshable": True})
    second = client.refresh_token(first.refresh_token, access_token=first.access_token)
    assert second.token_id != first.token_id
    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert not emulator.authenticates(first.access_token)
    with pytest.raises(JFrogHTTPError) as err:
        client.refresh_token(first.refresh_token, access_token=second.access_token)
    assert err.value.status == 404
    assert err.value.errors == [{"code": "NOT_FOUND",
                                 "message": "Token matching the provided refresh token was not found."}]


def test_revoke_by_value(client, emulator):
    response = client.create_token({"refreshable": False})
    assert client.revoke_token_by_value(response.access_token) == response.token_id
    assert not emulator.is_token_active(response.token_id)


def test_list_with_description_prefix(client):
    client.create_token({"description": "jfrog-rotator:ci:1"})
    client.create_token({"description": "jfrog-rotator:other:1"})
    listed = client.list_tokens(description="jfrog-rotator:ci:*")
    assert [t["description"] for t in listed] == ["jfrog-rotator:ci:1"]


def test_get_token_and_me(client, emulator):
    response = client.create_token({"username": "ci", "scope": "applied-permissions/groups:g"})
    assert client.get_token(response.token_id)["token_id"] == response.token_id
    me = client.get_me(token=response.access_token)
    assert me["token_id"] == response.token_id and me["subject"].endswith("/users/ci")


def test_get_me_with_dead_token_is_401(client):
    response = client.create_token({"refreshable": False})
    client.revoke_token(response.token_id)
    with pytest.raises(JFrogHTTPError) as err:
        client.get_me(token=response.access_token)
    assert err.value.status == 401


def test_ping_and_version(client):
    assert client.ping() == "OK"
    assert client.artifactory_version()["version"].startswith("7.")


def test_http_error_carries_method_path_status_and_errors(emulator):
    with AccessClient(emulator.url, access_token="not-a-valid-token-value") as bad:
        with pytest.raises(JFrogHTTPError) as err:
            bad.list_tokens()
    assert (err.value.method, err.value.path, err.value.status) == ("GET", "/access/api/v1/tokens", 401)
    assert err.value.errors and err.value.errors[0]["code"] == "UNAUTHORIZED"
    assert str(err.value).startswith("server response: 401")
    assert "not-a-valid-token-value" not in str(err.value) and "not-a-valid-token-value" not in repr(err.value)


def test_retries_429_honouring_retry_after(emulator, client, sleeps):
    emulator.inject_fault("/access/api/v1/system/ping", status=429, count=2, retry_after=3)
    assert client.ping() == "OK"
    assert [r.status for r in emulator.requests if r.path.endswith("/ping")] == [429, 429, 200]
    assert sleeps == [3.0, 3.0]


def test_retry_after_is_capped_by_backoff_max(emulator, sleeps):
    emulator.inject_fault("/access/api/v1/system/ping", status=429, count=1, retry_after=3600)
    with AccessClient(emulator.url, access_token=emulator.admin_token, retry=RetryPolicy(backoff_max=2.0)) as c:
        assert c.ping() == "OK"
    assert sleeps == [2.0]


def test_5xx_retries_are_bounded(emulator, sleeps):
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=500, count=10)
    with AccessClient(emulator.url, access_token=emulator.admin_token,
                      retry=RetryPolicy(retries=3, backoff_factor=0.5, backoff_max=8)) as c:
        with pytest.raises(JFrogHTTPError) as err:
            c.create_token({"refreshable": False})
    assert err.value.status == 500
    assert len([r for r in emulator.requests if r.method == "POST"]) == 4
    assert sleeps == [1.0, 2.0]  # urllib3: the first retry is immediate, then factor * 2**n


def test_500_then_success(emulator, client, sleeps):
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=503, count=1)
    assert client.create_token({"refreshable": False}).token_id


def test_post_is_not_replayed_after_read_timeout(emulator):
    # The stalled POST is answered 500 once the client has given up, so its record tells it apart
    # from a replay (which, not stalled, would be answered at once, before create_token returns).
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=500, stall=1.0, count=1)
    with AccessClient(emulator.url, access_token=emulator.admin_token, timeout=(2, 0.3)) as c:
        with pytest.raises(JFrogConnectionError) as err:
            c.create_token({"refreshable": False})
    assert "timed out" in str(err.value)
    posts = lambda: [r for r in emulator.requests if r.method == "POST"]  # noqa: E731
    deadline = time.monotonic() + 5
    while not any(r.status == 500 for r in posts()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the emulator records a request when it answers: the stalled one, after 1 s
    assert [r.status for r in posts()] == [500], "the POST was sent once, never replayed"


def test_unreachable_server_is_a_connection_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with AccessClient(f"http://127.0.0.1:{port}", access_token="x" * 20, retry=RetryPolicy(retries=0)) as c:
        with pytest.raises(JFrogConnectionError) as err:
            c.ping()
    assert "cannot reach" in str(err.value)


def test_verify_off_logs_a_warning(emulator, caplog):
    with caplog.at_level(logging.WARNING):
        AccessClient(emulator.url, access_token=emulator.admin_token, verify=False).close()
    assert "TLS certificate verification is OFF" in caplog.text


def test_client_repr_hides_token(emulator):
    c = AccessClient(emulator.url, access_token=emulator.admin_token)
    assert emulator.admin_token not in repr(c)
    c.close()


def test_one_session_reuses_connections(emulator, client):
    for _ in range(5):
        client.ping()
    assert emulator.connection_count() == 1


def test_netrc_credentials_are_never_sent(emulator, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login admin password netrc-password-123\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    with AccessClient(emulator.url) as anonymous:
        assert anonymous.ping() == "OK"
    ping = [r for r in emulator.requests if r.path.endswith("/ping")][-1]
    assert "Authorization" not in ping.headers


def test_oidc_token_exchange(emulator):
    emulator.add_oidc_provider("github-ci", {"id-token-from-github-0123456789": "ci"})
    with AccessClient(emulator.url) as anonymous:
        answer = anonymous.oidc_token_exchange(provider_name="github-ci",
                                               subject_token="id-token-from-github-0123456789",
                                               provider_type="GitHub")
        assert answer["username"] == "ci" and emulator.authenticates(answer["access_token"])
        body = json.loads([r for r in emulator.requests if r.path.endswith("/oidc/token")][-1].body)
        assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
        assert body["subject_token_type"] == "urn:ietf:params:oauth:token-type:id_token"
        with pytest.raises(JFrogHTTPError) as err:
            anonymous.oidc_token_exchange(provider_name="github-ci", subject_token="not-a-known-id-token-000")
    assert err.value.status == 401 and "not-a-known-id-token-000" not in str(err.value)
