"""Connectivity endpoints, Artifactory stubs, routing errors and HTTP framing (docs/emulator.md)."""

from __future__ import annotations

import socket

from tests.fixtures.emulator_http import TOKENS, bearer


def test_access_ping_is_200_text_ok(api):
    response = api.session.get(api.url("/access/api/v1/system/ping"))
    assert response.status_code == 200
    assert response.text == "OK"


def test_artifactory_ping_is_200_text_ok(api):
    response = api.session.get(api.url("/artifactory/api/system/ping"))
    assert (response.status_code, response.text) == (200, "OK")


def test_artifactory_version_reports_a_settable_version(api):
    api.emu.version = "7.50.3"
    body = api.get("/artifactory/api/system/version").json()
    assert list(body) == ["version", "revision", "addons", "license"]
    assert body["version"] == "7.50.3"
    assert body["revision"] == "75003900"


def test_artifactory_version_default_is_a_7x_version(api):
    assert api.get("/artifactory/api/system/version").json()["version"].startswith("7.")


def test_artifactory_version_without_auth_is_401_with_artifactory_body(api):
    response = api.session.get(api.url("/artifactory/api/system/version"))
    assert response.status_code == 401
    assert response.json() == {"errors": [{"status": 401, "message": "Bad credentials"}]}


def test_artifactory_expired_token_message_matches_the_vault_plugin_regex(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    token = api.user_token(expires_in=60)
    clock.advance(60)
    response = api.get("/artifactory/api/system/version", token["access_token"])
    assert response.status_code == 401
    assert "Token failed verification: expired" in response.json()["errors"][0]["message"]


def test_service_id_is_jfrt_with_the_instance_id(api):
    response = api.get("/artifactory/api/system/service_id")
    assert response.status_code == 200
    assert response.text == "jfrt@" + api.emu.model.instance_id


def test_usage_post_is_200(api):
    response = api.session.post(
        api.url("/artifactory/api/system/usage"),
        headers=bearer(api.emu.admin_token),
        json={"productId": "jfrog-token-rotator/0.1.0", "features": [{"featureId": "rotate"}]},
    )
    assert response.status_code == 200


def test_unknown_path_is_404_with_access_error_body(api):
    response = api.get("/access/api/v1/nothing-here")
    assert response.status_code == 404
    errors = response.json()["errors"]
    assert [e["code"] for e in errors] == ["NOT_FOUND"]
    assert errors[0]["message"]


def test_wrong_method_is_405_with_allow_header(api):
    response = api.session.put(api.url(TOKENS), headers=bearer(api.emu.admin_token), json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"


def test_double_and_trailing_slashes_are_tolerated(api):
    assert api.session.get(api.url("//access/api/v1/system/ping/")).text == "OK"


def test_responses_carry_content_length_and_keep_the_connection_alive(emulator):
    host, port = emulator.url.removeprefix("http://").split(":")
    request = f"GET /access/api/v1/system/ping HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        replies = []
        for _ in range(2):  # the second request only succeeds if the first left the connection open
            sock.sendall(request)
            data = b""
            while not data.endswith(b"\r\n\r\nOK"):
                chunk = sock.recv(4096)
                assert chunk, "connection closed early"
                data += chunk
            replies.append(data)
    for reply in replies:
        head = reply.split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.1 200")
        assert "Content-Length: 2" in head.split("\r\n")
        assert "Connection: close" not in head


def test_204_has_no_body_and_the_connection_stays_usable(api):
    first = api.delete(f"{TOKENS}/00000000-0000-4000-8000-000000000000")
    second = api.session.get(api.url("/access/api/v1/system/ping"))
    assert (first.status_code, first.content) == (204, b"")
    assert second.text == "OK"
