"""The Python test API: fault injection, request recording, counters and direct token minting."""

from __future__ import annotations

import time

import pytest
import requests

from rotator.emulator import AccessError
from tests.fixtures.emulator_http import TOKENS, bearer

PING = "/access/api/v1/system/ping"


def test_fault_answers_500_once_then_serves_normally(api):
    api.emu.inject_fault(PING)
    first = api.session.get(api.url(PING))
    second = api.session.get(api.url(PING))
    assert first.status_code == 500
    assert first.json()["errors"][0]["code"] == "INTERNAL_SERVER_ERROR"
    assert (second.status_code, second.text) == (200, "OK")


def test_fault_429_carries_retry_after(api):
    api.emu.inject_fault(TOKENS, status=429, retry_after=3)
    response = api.create(username="svc", scope="applied-permissions/admin")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_fault_count_applies_to_that_many_requests(api):
    api.emu.inject_fault(PING, status=503, count=2)
    statuses = [api.session.get(api.url(PING)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_fault_matches_by_path_prefix_and_method(api):
    api.emu.inject_fault(TOKENS, method="POST", status=502)
    assert api.get(TOKENS).status_code == 200
    assert api.create(scope="applied-permissions/admin").status_code == 502


def test_faulted_create_mints_nothing(api):
    api.emu.inject_fault(TOKENS, method="POST")
    api.create(username="svc", scope="applied-permissions/admin", description="faulted")
    assert api.emu.mint_count == 0
    assert api.emu.live_token_count(description_prefix="faulted") == 0


def test_fault_with_custom_body(api):
    api.emu.inject_fault(PING, status=502, body="<html>bad gateway</html>")
    response = api.session.get(api.url(PING))
    assert (response.status_code, response.text) == (502, "<html>bad gateway</html>")


def test_stall_without_status_delays_then_serves_normally(api):
    api.emu.inject_fault(PING, status=None, stall=0.2)
    started = time.monotonic()
    response = api.session.get(api.url(PING))
    assert time.monotonic() - started >= 0.2
    assert response.text == "OK"


def test_stall_with_status_delays_then_fails(api):
    api.emu.inject_fault(PING, status=504, stall=0.1)
    started = time.monotonic()
    assert api.session.get(api.url(PING)).status_code == 504
    assert time.monotonic() - started >= 0.1


def test_clear_faults_removes_pending_faults(api):
    api.emu.inject_fault(PING, count=5)
    api.emu.clear_faults()
    assert api.session.get(api.url(PING)).status_code == 200


def test_requests_are_recorded_with_body_query_headers_and_status(api):
    api.create(username="svc", scope="applied-permissions/admin")
    api.session.post(api.url(TOKENS), headers=bearer(api.emu.admin_token), data={"scope": "x"})
    api.get(TOKENS, params={"username": "svc"})
    posted_json, posted_form, listed = api.emu.requests
    assert (posted_json.method, posted_json.path, posted_json.status) == ("POST", TOKENS, 200)
    assert posted_json.json == {"username": "svc", "scope": "applied-permissions/admin"}
    assert posted_json.form is None
    assert posted_form.form == {"scope": "x"}
    assert posted_form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert listed.query == {"username": ["svc"]}
    assert listed.body == b""


def test_faulted_requests_are_recorded_with_the_fault_status(api):
    api.emu.inject_fault(PING, status=429)
    api.session.get(api.url(PING))
    assert [r.status for r in api.emu.requests] == [429]


def test_clear_requests_empties_the_record(api):
    api.session.get(api.url(PING))
    api.emu.clear_requests()
    assert api.emu.requests == []


def test_mint_count_counts_http_creates_and_refreshes_only(api):
    api.emu.create_token("alice")  # the Python API does not count
    token = api.user_token(refreshable=True)
    api.refresh(token["access_token"], token["refresh_token"])
    assert api.emu.mint_count == 2


def test_live_token_count_excludes_admin_revoked_and_filters(api):
    assert api.emu.live_token_count() == 0
    keep = api.user_token("alice", description="rot:a")
    gone = api.user_token("alice", description="rot:b")
    api.user_token("bob", description="other")
    api.delete(f"{TOKENS}/{gone['token_id']}")
    assert api.emu.live_token_count() == 2
    assert api.emu.live_token_count(description_prefix="rot:") == 1
    assert api.emu.live_token_count(username="alice") == 1
    assert api.emu.is_token_active(keep["token_id"])


def test_create_token_python_api_returns_the_http_shape_and_authenticates(emulator):
    body = emulator.create_token("alice", refreshable=True, include_reference_token=True, expires_in=0)
    assert list(body) == ["token_id", "access_token", "refresh_token", "scope", "token_type", "reference_token"]
    assert emulator.authenticates(body["access_token"])
    assert emulator.authenticates(body["reference_token"])


def test_create_token_python_api_still_validates_fields(emulator):
    with pytest.raises(AccessError) as raised:
        emulator.create_token("alice", description="x" * 1025)
    assert raised.value.status == 400


def test_admin_token_is_a_non_expiring_admin_token(api):
    info = api.get(f"{TOKENS}/me").json()
    assert info["subject"].endswith("/users/admin")
    assert "expiry" not in info


def test_admin_credential_string_can_be_injected(make_emulator, api_for):
    api = api_for(make_emulator(admin_token="my-admin-credential", admin_username="root"))
    assert api.emu.admin_token == "my-admin-credential"
    response = api.create("my-admin-credential", scope="applied-permissions/admin", username="svc")
    assert response.status_code == 200
    assert api.get(f"{TOKENS}/me", "my-admin-credential").json()["subject"].endswith("/users/root")


def test_authenticates_is_false_for_unknown_values(emulator):
    assert not emulator.authenticates("eyJnope")


def test_reset_closes_the_connection_without_an_answer_and_serves_nothing(api):
    api.emu.inject_fault(TOKENS, method="POST", kind="reset")
    with pytest.raises(requests.ConnectionError):
        api.create(username="svc", scope="applied-permissions/admin")
    assert api.emu.mint_count == 0 and [r.status for r in api.emu.requests] == [0]
    assert api.create(username="svc", scope="applied-permissions/admin").status_code == 200


def test_lost_serves_the_request_then_drops_its_answer(api):
    api.emu.inject_fault(TOKENS, method="POST", kind="lost", stall=0.1)
    with pytest.raises(requests.ConnectionError):
        api.create(username="svc", scope="applied-permissions/admin", description="lost")
    assert api.emu.mint_count == 1 and api.emu.live_token_count(description_prefix="lost") == 1


def test_revoked_answers_a_token_that_no_longer_works(api):
    api.emu.inject_fault(TOKENS, method="POST", kind="revoked")
    answer = api.create(username="svc", scope="applied-permissions/admin", description="dead")
    assert answer.status_code == 200 and answer.json()["token_id"]
    assert not api.emu.authenticates(answer.json()["access_token"])
    assert api.emu.live_token_count(description_prefix="dead") == 0


def test_fake_jwt_answers_200_with_a_token_never_issued(api):
    api.emu.inject_fault(TOKENS, method="POST", kind="fake-jwt")
    answer = api.create(username="svc", scope="applied-permissions/admin")
    token = answer.json()["access_token"]
    assert answer.status_code == 200 and token.count(".") == 2 and token.startswith("eyJ")
    assert not api.emu.authenticates(token) and api.emu.mint_count == 0


def test_an_unknown_fault_kind_is_refused(api):
    with pytest.raises(ValueError, match="kind must be one of"):
        api.emu.inject_fault(TOKENS, kind="explode")


def test_garbled_serves_the_request_and_answers_its_body_cut_short(api):
    api.emu.inject_fault(TOKENS, method="POST", kind="garbled")
    answer = api.create(username="svc", scope="applied-permissions/admin", description="garbled")
    assert answer.status_code == 200 and api.emu.mint_count == 1
    with pytest.raises(ValueError):
        answer.json()
    assert api.emu.live_token_count(description_prefix="garbled") == 1
