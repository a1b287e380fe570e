"""POST /access/api/v1/oidc/token with ID tokens a test issuer signed: signature, issuer, expiry and
identity mappings (https://jfrog.com/help/r/jfrog-rest-apis/oidc-token-exchange)."""

from __future__ import annotations

import pytest

from rotator.emulator import IdentityMapping, OidcIssuer
from tests.fixtures.emulator_http import TOKENS, bearer

OIDC = "/access/api/v1/oidc/token"
SUBJECT = "system:serviceaccount:jfrog:rotator"


@pytest.fixture
def issuer(signing_key) -> OidcIssuer:
    return OidcIssuer("https://kubernetes.default.svc", key=signing_key)


@pytest.fixture
def k8s_api(api, issuer):
    api.emu.add_oidc_provider("k8s", issuer=issuer, identity_mappings=[
        IdentityMapping("readers", {"sub": "system:serviceaccount:jfrog:reader"}, "reader"),
        IdentityMapping("rotator", {"sub": SUBJECT}, "rotator-admin"),
    ])
    return api


def _exchange(api, subject_token, **extra):
    return api.session.post(api.url(OIDC), json={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "subject_token": subject_token, "provider_name": "k8s", **extra})


def test_a_signed_id_token_maps_to_the_user_of_the_matching_mapping(k8s_api, issuer):
    response = _exchange(k8s_api, issuer.id_token(SUBJECT))
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "rotator-admin"
    me = k8s_api.session.get(k8s_api.url(f"{TOKENS}/me"), headers=bearer(response.json()["access_token"]))
    assert me.json()["subject"].endswith("/users/rotator-admin")


def test_an_expired_id_token_is_401(k8s_api, issuer):
    response = _exchange(k8s_api, issuer.id_token(SUBJECT, expires_in=-60))
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


def test_an_id_token_signed_by_another_key_is_401(k8s_api):
    impostor = OidcIssuer("https://kubernetes.default.svc")  # same issuer URL, its own key
    assert _exchange(k8s_api, impostor.id_token(SUBJECT)).status_code == 401


def test_an_id_token_no_mapping_matches_is_401(k8s_api, issuer):
    assert _exchange(k8s_api, issuer.id_token("system:serviceaccount:other:app")).status_code == 401


def test_identity_mapping_name_restricts_the_mappings_tried(k8s_api, issuer):
    assert _exchange(k8s_api, issuer.id_token(SUBJECT), identity_mapping_name="rotator").status_code == 200
    assert _exchange(k8s_api, issuer.id_token(SUBJECT), identity_mapping_name="readers").status_code == 401
    unknown = _exchange(k8s_api, issuer.id_token(SUBJECT), identity_mapping_name="nope")
    assert unknown.status_code == 400 and "nope" in unknown.json()["errors"][0]["message"]
