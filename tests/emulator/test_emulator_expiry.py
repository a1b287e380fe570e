"""Expiry and authentication failures, driven by an injected clock (docs/emulator.md)."""

from __future__ import annotations

from tests.fixtures.emulator_http import TOKENS


def test_token_is_accepted_until_its_expiry(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    token = api.user_token(expires_in=600)
    clock.advance(599)
    assert api.get(f"{TOKENS}/me", token["access_token"]).status_code == 200


def test_expired_token_is_401_invalid_token_expired(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    token = api.user_token(expires_in=600)
    clock.advance(600)
    response = api.get(f"{TOKENS}/me", token["access_token"])
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["code"] == "UNAUTHORIZED"
    assert "Invalid token, expired" in error["message"]


def test_expired_reference_token_is_401(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    token = api.user_token(expires_in=600, include_reference_token=True)
    clock.advance(601)
    assert api.get(f"{TOKENS}/me", token["reference_token"]).status_code == 401


def test_non_expiring_token_outlives_any_clock_jump(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    clock.advance(100 * 31536000)
    assert api.get(f"{TOKENS}/me", api.emu.admin_token).status_code == 200


def test_tokens_of_a_disabled_user_are_401(api):
    token = api.user_token("alice")
    api.emu.create_user("alice", enabled=False)
    assert api.get(f"{TOKENS}/me", token["access_token"]).status_code == 401


def test_expired_token_is_not_active_and_not_live(clocked_emulator, clock):
    token = clocked_emulator.create_token("alice", expires_in=60)
    clock.advance(60)
    assert not clocked_emulator.is_token_active(token["token_id"])
    assert clocked_emulator.live_token_count(username="alice") == 0
    assert not clocked_emulator.authenticates(token["access_token"])


def test_expired_token_revoke_by_id_is_204(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    token = api.user_token(expires_in=31536000)
    clock.advance(31536000)
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 204
