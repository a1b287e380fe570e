"""POST /access/api/v1/oidc/token (https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange)."""

from __future__ import annotations

import pytest

from tests.fixtures.emulator_http import TOKENS, bearer

OIDC = "/access/api/v1/oidc/token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@pytest.fixture
def oidc_api(api):
    api.emu.add_oidc_provider("github", {"id-token-1": "ci-bot"})
    return api


def _exchange(api, **overrides):
    body = {
        "grant_type": EXCHANGE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "subject_token": "id-token-1",
        "provider_name": "github",
        **overrides,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return api.session.post(api.url(OIDC), json=body)


def test_exchange_returns_documented_fields(oidc_api):
    response = _exchange(oidc_api)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["access_token", "token_type", "expires_in", "scope", "issued_token_type", "username"]
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["username"] == "ci-bot"
    assert body["expires_in"] == 3600


def test_exchanged_token_authenticates_as_the_mapped_user(oidc_api):
    token = _exchange(oidc_api).json()["access_token"]
    response = oidc_api.session.get(oidc_api.url(f"{TOKENS}/me"), headers=bearer(token))
    assert response.json()["subject"].endswith("/users/ci-bot")


def test_missing_provider_name_is_400(oidc_api):
    assert _exchange(oidc_api, provider_name=None).status_code == 400


def test_invalid_grant_type_is_400(oidc_api):
    assert _exchange(oidc_api, grant_type="client_credentials").status_code == 400


def test_unknown_provider_is_400(oidc_api):
    assert _exchange(oidc_api, provider_name="gitlab").status_code == 400


def test_unknown_subject_token_is_401(oidc_api):
    response = _exchange(oidc_api, subject_token="forged")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_exchange_can_include_a_reference_token(oidc_api):
    assert _exchange(oidc_api, include_reference_token=True).json()["reference_token"].startswith("cmVmdGtu")
