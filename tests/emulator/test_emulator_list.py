"""GET /tokens with filters, GET /tokens/{id} and /tokens/me (https://jfrog.com/help/r/jfrog-rest-apis/get-tokens)."""

from __future__ import annotations

import pytest

from rotator.emulator import AccessPolicy
from tests.fixtures.emulator_http import TOKENS


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["token_id"] for t in response.json()["tokens"]]


def test_get_by_id_has_all_fields_in_documented_order(api):
    token = api.create(
        username="svc", scope="applied-permissions/admin", description="ci bot", project_key="proj1", expires_in=14400
    ).json()
    info = api.get(f"{TOKENS}/{token['token_id']}").json()
    assert list(info) == [
        "token_id", "subject", "expiry", "issued_at", "issuer", "description", "refreshable", "project",
    ]
    assert info["subject"] == f"{info['issuer']}/users/svc"
    assert info["expiry"] - info["issued_at"] == 14400
    assert info["description"] == "ci bot"
    assert info["project"] == "proj1"
    assert info["refreshable"] is False


def test_get_by_id_omits_absent_optional_fields(api):
    token = api.create(username="svc", scope="applied-permissions/admin", expires_in=0).json()
    info = api.get(f"{TOKENS}/{token['token_id']}").json()
    assert list(info) == ["token_id", "subject", "issued_at", "issuer", "refreshable"]


def test_get_me_returns_the_calling_token(api):
    token = api.user_token()
    assert api.get(f"{TOKENS}/me", token["access_token"]).json()["token_id"] == token["token_id"]


def test_get_unknown_id_is_404(api):
    response = api.get(f"{TOKENS}/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_get_revoked_token_is_404(api):
    token = api.user_token()
    api.delete(f"{TOKENS}/{token['token_id']}")
    assert api.get(f"{TOKENS}/{token['token_id']}").status_code == 404


def test_non_admin_get_of_another_users_token_is_403(api):
    alice, bob = api.user_token("alice"), api.user_token("bob")
    assert api.get(f"{TOKENS}/{bob['token_id']}", alice["access_token"]).status_code == 403


def test_list_elements_use_the_documented_field_order(api):
    api.user_token(description="listed", refreshable=True)
    (info,) = api.get(TOKENS, params={"description": "listed"}).json()["tokens"]
    assert list(info) == ["token_id", "subject", "expiry", "issued_at", "issuer", "description", "refreshable"]
    assert info["refreshable"] is True


def test_list_with_no_match_is_an_empty_list(api):
    response = api.get(TOKENS, params={"description": "nothing-like-this"})
    assert response.status_code == 200
    assert response.json() == {"tokens": []}


def test_description_filter_matches_exactly_without_wildcard(api):
    exact = api.user_token(description="rotator")["token_id"]
    api.user_token(description="rotator-2")
    assert _ids(api.get(TOKENS, params={"description": "rotator"})) == [exact]


def test_description_filter_trailing_star_is_a_prefix_match(api):
    first = api.user_token(description="rotator:a")["token_id"]
    second = api.user_token(description="rotator:b")["token_id"]
    api.user_token(description="other")
    assert _ids(api.get(TOKENS, params={"description": "rotator:*"})) == [first, second]


def test_description_filter_star_elsewhere_is_literal(api):
    api.user_token(description="rotator:a")
    assert _ids(api.get(TOKENS, params={"description": "rot*:a"})) == []


def test_username_filter(api):
    alice = api.user_token("alice")["token_id"]
    api.user_token("bob")
    assert _ids(api.get(TOKENS, params={"username": "alice"})) == [alice]


@pytest.mark.parametrize("flag", ["true", "false"])
def test_refreshable_filter(api, flag):
    refreshable = api.user_token(description="r", refreshable=True)["token_id"]
    plain = api.user_token(description="r")["token_id"]
    expected = [refreshable] if flag == "true" else [plain]
    assert _ids(api.get(TOKENS, params={"description": "r", "refreshable": flag})) == expected


def test_token_id_filter(api):
    wanted = api.user_token()["token_id"]
    api.user_token()
    assert _ids(api.get(TOKENS, params={"token_id": wanted})) == [wanted]


def test_default_order_is_creation_order(api):
    created = [api.user_token(description="o")["token_id"] for _ in range(3)]
    assert _ids(api.get(TOKENS, params={"description": "o"})) == created


def test_descending_order_reverses_creation_order(api):
    created = [api.user_token(description="o")["token_id"] for _ in range(3)]
    response = api.get(TOKENS, params={"description": "o", "order_by": "created", "descending_order": "true"})
    assert _ids(response) == created[::-1]


def test_order_by_expiry(api):
    long = api.user_token(description="e", expires_in=90000)["token_id"]
    short = api.user_token(description="e", expires_in=30000)["token_id"]
    assert _ids(api.get(TOKENS, params={"description": "e", "order_by": "expiry"})) == [short, long]


def test_order_by_token_id(api):
    created = [api.user_token(description="t")["token_id"] for _ in range(4)]
    assert _ids(api.get(TOKENS, params={"description": "t", "order_by": "token_id"})) == sorted(created)


def test_order_by_owner(api):
    bob = api.user_token("bob", description="w")["token_id"]
    alice = api.user_token("alice", description="w")["token_id"]
    assert _ids(api.get(TOKENS, params={"description": "w", "order_by": "owner"})) == [alice, bob]


def test_invalid_order_by_is_400(api):
    assert api.get(TOKENS, params={"order_by": "colour"}).status_code == 400


def test_non_admin_sees_only_own_tokens(api):
    alice = api.user_token("alice")
    api.user_token("bob")
    listed = api.get(TOKENS, alice["access_token"]).json()["tokens"]
    assert [t["token_id"] for t in listed] == [alice["token_id"]]


def test_admin_sees_every_users_tokens(api):
    ids = {api.user_token("alice")["token_id"], api.user_token("bob")["token_id"]}
    assert ids <= set(_ids(api.get(TOKENS)))


def test_list_excludes_revoked_tokens(api):
    token = api.user_token(description="gone")
    api.delete(f"{TOKENS}/{token['token_id']}")
    assert _ids(api.get(TOKENS, params={"description": "gone"})) == []


def test_list_excludes_expired_tokens(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    api.user_token(description="short", expires_in=60)
    clock.advance(61)
    assert _ids(api.get(TOKENS, params={"description": "short"})) == []


def test_list_without_authentication_is_401(api):
    assert api.session.get(api.url(TOKENS)).status_code == 401


def test_last_used_is_reported_when_tracking_is_enabled(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(track_last_used=True)))
    token = api.user_token()
    api.get(f"{TOKENS}/me", token["access_token"])
    info = api.get(f"{TOKENS}/{token['token_id']}").json()
    assert list(info)[-2:] == ["refreshable", "last_used"]
    assert info["last_used"] >= info["issued_at"]


def test_last_used_is_absent_by_default(api):
    token = api.user_token()
    api.get(f"{TOKENS}/me", token["access_token"])
    assert "last_used" not in api.get(f"{TOKENS}/{token['token_id']}").json()
