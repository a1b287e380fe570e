"""Refresh grant (https://jfrog.com/help/r/jfrog-rest-apis/refresh-token): everything rotates, the old values die at once."""

from __future__ import annotations

from tests.fixtures.emulator_http import TOKENS, bearer

REFRESH_404_BODY = (
    '{"errors":[{"code":"NOT_FOUND","message":"Token matching the provided refresh token was not found."}]}'
)


def test_refresh_rotates_token_id_access_token_and_refresh_token(api):
    old = api.user_token(refreshable=True, expires_in=7200)
    response = api.refresh(old["access_token"], old["refresh_token"])
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["token_id"] != old["token_id"]
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["expires_in"] == old["expires_in"]
    assert new["scope"] == old["scope"]


def test_refresh_response_carries_grant_type(api):
    old = api.user_token(refreshable=True)
    assert api.refresh(old["access_token"], old["refresh_token"]).json()["grant_type"] == "refresh_token"


def test_old_access_token_is_401_right_after_refresh(api):
    old = api.user_token(refreshable=True)
    new = api.refresh(old["access_token"], old["refresh_token"]).json()
    assert api.get(f"{TOKENS}/me", old["access_token"]).status_code == 401
    assert api.get(f"{TOKENS}/me", new["access_token"]).status_code == 200


def test_reusing_old_refresh_token_is_404_with_the_exact_jfrog_body(api):
    old = api.user_token(refreshable=True)
    new = api.refresh(old["access_token"], old["refresh_token"]).json()
    response = api.refresh(new["access_token"], old["refresh_token"])
    assert response.status_code == 404
    assert response.text == REFRESH_404_BODY


def test_refresh_with_form_body(api):
    old = api.user_token(refreshable=True)
    response = api.session.post(
        api.url(TOKENS),
        headers=bearer(old["access_token"]),
        data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
    )
    assert response.status_code == 200, response.text


def test_refresh_body_as_sent_by_the_jfrog_cli(api):
    old = api.user_token(refreshable=True)
    body = {
        "access_token": old["access_token"],
        "refreshable": True,
        "refresh_token": old["refresh_token"],
        "grant_type": "refresh_token",
    }
    response = api.session.post(api.url(TOKENS), headers=bearer(old["access_token"]), json=body)
    assert response.status_code == 200


def test_refresh_by_a_different_user_is_403(api):
    old = api.user_token("alice", refreshable=True)
    bob = api.user_token("bob")
    assert api.refresh(bob["access_token"], old["refresh_token"]).status_code == 403


def test_refresh_without_refresh_token_is_400(api):
    old = api.user_token(refreshable=True)
    response = api.session.post(
        api.url(TOKENS), headers=bearer(old["access_token"]), json={"grant_type": "refresh_token"}
    )
    assert response.status_code == 400


def test_refresh_of_a_revoked_token_is_404(api):
    old = api.user_token(refreshable=True)
    alice2 = api.user_token()
    assert api.delete(f"{TOKENS}/{old['token_id']}").status_code == 200
    assert api.refresh(alice2["access_token"], old["refresh_token"]).status_code == 404


def test_refresh_kills_the_old_reference_token(api):
    old = api.user_token(refreshable=True, include_reference_token=True)
    api.refresh(old["access_token"], old["refresh_token"])
    assert not api.emu.authenticates(old["reference_token"])


def test_refresh_issues_a_reference_token_only_when_asked(api):
    old = api.user_token(refreshable=True)
    new = api.refresh(old["access_token"], old["refresh_token"], include_reference_token=True).json()
    assert new["reference_token"].startswith("cmVmdGtu")


def test_expired_token_can_authenticate_its_refresh_within_the_grace_period(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    old = api.user_token(refreshable=True, expires_in=600)
    clock.advance(601)
    assert api.get(f"{TOKENS}/me", old["access_token"]).status_code == 401
    response = api.refresh(old["access_token"], old["refresh_token"])
    assert response.status_code == 200, response.text


def test_refresh_after_the_grace_period_is_404(clocked_emulator, clock, api_for):
    api = api_for(clocked_emulator)
    old = api.user_token(refreshable=True, expires_in=600)
    other = api.user_token(expires_in=31536000)
    clock.advance(600 + 86400)
    assert api.refresh(other["access_token"], old["refresh_token"]).status_code == 404


def test_refresh_counts_as_one_mint(api):
    old = api.user_token(refreshable=True)
    before = api.emu.mint_count
    api.refresh(old["access_token"], old["refresh_token"])
    assert api.emu.mint_count == before + 1
