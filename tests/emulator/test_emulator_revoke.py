"""Revocation by id, ``me`` and by value (https://jfrog.com/help/r/jfrog-rest-apis/revoke-token-by-id)."""

from __future__ import annotations

import json

from tests.fixtures.emulator_http import TOKENS, bearer


def test_revoke_by_id_is_200_then_204(api):
    token = api.user_token()
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 200
    second = api.delete(f"{TOKENS}/{token['token_id']}")
    assert second.status_code == 204
    assert second.content == b""


def test_revoke_of_unknown_id_is_204(api):
    assert api.delete(f"{TOKENS}/00000000-0000-4000-8000-000000000000").status_code == 204


def test_revoked_token_fails_authentication(api):
    token = api.user_token()
    api.delete(f"{TOKENS}/{token['token_id']}")
    response = api.get(f"{TOKENS}/me", token["access_token"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_revoke_me_revokes_the_calling_token(api):
    token = api.user_token()
    assert api.delete(f"{TOKENS}/me", token["access_token"]).status_code == 200
    assert not api.emu.is_token_active(token["token_id"])


def test_non_admin_may_revoke_own_token_by_id(api):
    first, second = api.user_token("alice"), api.user_token("alice")
    assert api.delete(f"{TOKENS}/{second['token_id']}", first["access_token"]).status_code == 200


def test_non_admin_revoking_another_users_token_is_403(api):
    alice, bob = api.user_token("alice"), api.user_token("bob")
    response = api.delete(f"{TOKENS}/{bob['token_id']}", alice["access_token"])
    assert response.status_code == 403
    assert api.emu.is_token_active(bob["token_id"])


def test_revoke_by_value_returns_the_revoked_token_id(api):
    token = api.user_token()
    response = api.delete(f"{TOKENS}/revoke", json={"token": token["access_token"]})
    assert response.status_code == 200
    assert response.json() == {"revoked-token-id": token["token_id"]}
    assert not api.emu.authenticates(token["access_token"])


def test_revoke_by_value_accepts_a_reference_token(api):
    token = api.user_token(include_reference_token=True)
    response = api.delete(f"{TOKENS}/revoke", json={"token": token["reference_token"]})
    assert response.json() == {"revoked-token-id": token["token_id"]}


def test_revoke_by_value_is_admin_only(api):
    alice = api.user_token("alice")
    response = api.delete(f"{TOKENS}/revoke", alice["access_token"], json={"token": alice["access_token"]})
    assert response.status_code == 403
    assert api.emu.authenticates(alice["access_token"])


def test_revoke_by_value_of_unknown_token_is_204(api):
    assert api.delete(f"{TOKENS}/revoke", json={"token": "eyJunknown"}).status_code == 204


def test_revoke_by_value_without_token_is_400(api):
    response = api.session.delete(
        api.url(f"{TOKENS}/revoke"),
        headers={**bearer(api.emu.admin_token), "Content-Type": "application/json"},
        data=json.dumps({}),
    )
    assert response.status_code == 400


def test_short_token_without_force_revocable_cannot_be_revoked(api):
    token = api.user_token(expires_in=14400)  # stored (over 3 h), under the revocable threshold (6 h)
    response = api.delete(f"{TOKENS}/{token['token_id']}")
    assert response.status_code == 400
    assert "not revocable" in response.json()["errors"][0]["message"]
    assert api.emu.is_token_active(token["token_id"])


def test_short_token_with_force_revocable_can_be_revoked(api):
    token = api.user_token(expires_in=14400, force_revocable=True)
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 200


def test_token_at_the_revocable_threshold_can_be_revoked(api):
    token = api.user_token(expires_in=21600)
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 200


def test_revoke_without_authentication_is_401(api):
    token = api.user_token()
    assert api.session.delete(api.url(f"{TOKENS}/{token['token_id']}")).status_code == 401
