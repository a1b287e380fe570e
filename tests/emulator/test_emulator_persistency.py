"""The persistency threshold: a token shorter than it is never stored by Access, so it cannot be
listed, read by id or revoked, and simply expires
(https://jfrog.com/help/r/jfrog-platform-administration-documentation/persistency-threshold)."""

from __future__ import annotations

from rotator.emulator import AccessPolicy
from tests.fixtures.emulator_http import TOKENS, bearer


def _listed(api, **filters) -> list[str]:
    response = api.get(TOKENS, params=filters)
    assert response.status_code == 200, response.text
    return [t["token_id"] for t in response.json()["tokens"]]


def test_the_default_threshold_is_three_hours():
    policy = AccessPolicy()
    assert policy.persistency_threshold == 10_800
    assert not policy.persists(10_799) and policy.persists(10_800) and policy.persists(0)


def test_a_short_token_authenticates_but_is_neither_listed_nor_found(api):
    token = api.user_token(expires_in=3600, description="short")
    assert api.get(f"{TOKENS}/me", token["access_token"]).json()["token_id"] == token["token_id"]
    assert _listed(api, description="short") == []
    missing = api.get(f"{TOKENS}/{token['token_id']}")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


def test_revoking_a_short_token_answers_as_for_an_unknown_id_and_it_lives_on(api):
    token = api.user_token(expires_in=3600, force_revocable=True)
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 204
    assert api.delete(f"{TOKENS}/me", token["access_token"]).status_code == 204
    by_value = api.session.delete(api.url(f"{TOKENS}/revoke"), headers=bearer(api.emu.admin_token),
                                  json={"token": token["access_token"]})
    assert by_value.status_code == 204
    assert api.emu.authenticates(token["access_token"]) and api.emu.is_token_active(token["token_id"])


def test_a_token_at_the_threshold_is_stored(api):
    token = api.user_token(expires_in=10_800, force_revocable=True, description="stored")
    assert _listed(api, description="stored") == [token["token_id"]]
    assert api.get(f"{TOKENS}/{token['token_id']}").status_code == 200
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 200
    assert not api.emu.authenticates(token["access_token"])


def test_a_short_token_expires_on_its_own(clocked_emulator, clock):
    token = clocked_emulator.create_token("alice", expires_in=60)
    assert clocked_emulator.authenticates(token["access_token"])
    clock.advance(60)
    assert not clocked_emulator.authenticates(token["access_token"])


def test_threshold_zero_stores_every_token(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(persistency_threshold=0)))
    token = api.user_token(expires_in=60, force_revocable=True, description="tiny")
    assert _listed(api, description="tiny") == [token["token_id"]]
    assert api.delete(f"{TOKENS}/{token['token_id']}").status_code == 200


def test_threshold_above_the_revocable_one_is_lowered_to_it_as_access_does():
    policy = AccessPolicy(revocable_expiry_threshold=3600, persistency_threshold=10_800)
    assert policy.persistency_threshold == 3600
