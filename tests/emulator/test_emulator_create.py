"""POST /access/api/v1/tokens (create): bodies, defaults, validation, authorisation (https://jfrog.com/help/r/jfrog-rest-apis/create-token)."""

from __future__ import annotations

import base64
import re
import uuid

import pytest

from rotator.emulator import AccessPolicy
from tests.fixtures.emulator_http import TOKENS, bearer, jwt_payload

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_json_body_creates_token_with_documented_fields(api):
    api.emu.create_user("alice")
    response = api.create(username="alice", refreshable=True, include_reference_token=True, expires_in=7200)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert list(response.json()) == [
        "token_id", "access_token", "refresh_token", "expires_in", "scope", "token_type", "reference_token",
    ]


def test_form_body_is_accepted_and_string_values_are_converted(api):
    api.emu.create_user("alice")
    form = {"username": "alice", "expires_in": "7200", "refreshable": "true", "include_reference_token": "false"}
    response = api.session.post(api.url(TOKENS), headers=bearer(api.emu.admin_token), data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 7200
    assert "refresh_token" in body
    assert "reference_token" not in body


def test_form_body_with_invalid_boolean_is_400(api):
    response = api.session.post(
        api.url(TOKENS), headers=bearer(api.emu.admin_token), data={"refreshable": "yes"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BAD_REQUEST"


def test_defaults_user_scope_default_expiry_bearer_and_no_optional_tokens(api):
    api.emu.create_user("alice")
    body = api.create(username="alice").json()
    assert body["scope"] == "applied-permissions/user"
    assert body["expires_in"] == 31536000
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    assert "reference_token" not in body


def test_empty_body_creates_identity_token_for_the_caller(api):
    response = api.session.post(api.url(TOKENS), headers=bearer(api.emu.admin_token))
    assert response.status_code == 200
    assert jwt_payload(response.json()["access_token"])["sub"].endswith("/users/admin")


def test_scope_is_echoed_verbatim(api):
    scope = 'applied-permissions/groups:"group_1","group 2" applied-permissions/admin'
    assert api.create(username="svc", scope=scope).json()["scope"] == scope


def test_token_id_is_a_uuid_equal_to_the_jwt_jti(api):
    body = api.create(username="svc", scope="applied-permissions/admin").json()
    assert UUID_RE.match(body["token_id"])
    assert jwt_payload(body["access_token"])["jti"] == body["token_id"]


def test_non_expiring_token_omits_expires_in_and_exp(api):
    body = api.create(username="svc", scope="applied-permissions/admin", expires_in=0).json()
    assert "expires_in" not in body
    assert "exp" not in jwt_payload(body["access_token"])


def test_refresh_token_is_a_uuid_when_refreshable(api):
    body = api.user_token(refreshable=True)
    assert str(uuid.UUID(body["refresh_token"])) == body["refresh_token"]


def test_refreshable_is_ignored_when_policy_disallows_it(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(allow_refreshable=False)))
    body = api.user_token(refreshable=True)
    assert "refresh_token" not in body
    assert api.get(f"{TOKENS}/{body['token_id']}").json()["refreshable"] is False


def test_non_admin_may_create_identity_token_for_self(api):
    alice = api.user_token("alice")
    response = api.create(alice["access_token"], expires_in=3600)
    assert response.status_code == 200, response.text
    assert jwt_payload(response.json()["access_token"])["sub"].endswith("/users/alice")


def test_non_admin_naming_another_user_is_403(api):
    alice = api.user_token("alice")
    api.emu.create_user("bob")
    response = api.create(alice["access_token"], username="bob")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("scope", ["applied-permissions/groups:readers", "applied-permissions/admin"])
def test_non_admin_group_or_admin_scope_is_403(api, scope):
    alice = api.user_token("alice")
    assert api.create(alice["access_token"], scope=scope).status_code == 403


def test_non_admin_expiry_above_default_is_403(api):
    alice = api.user_token("alice")
    assert api.create(alice["access_token"], expires_in=31536001).status_code == 403


def test_non_admin_non_expiring_token_is_403(api):
    alice = api.user_token("alice")
    assert api.create(alice["access_token"], expires_in=0).status_code == 403


def test_admin_may_exceed_default_expiry(api):
    response = api.create(username="svc", scope="applied-permissions/admin", expires_in=10 * 31536000)
    assert response.status_code == 200
    assert response.json()["expires_in"] == 10 * 31536000


def test_default_expiry_policy_applies_when_expires_in_is_omitted(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(default_expiry=7200)))
    assert api.user_token()["expires_in"] == 7200


def test_max_expiry_caps_non_admins(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(default_expiry=3600, max_expiry=7200)))
    alice = api.user_token("alice")
    assert api.create(alice["access_token"], expires_in=7200).status_code == 200
    assert api.create(alice["access_token"], expires_in=7201).status_code == 403


@pytest.mark.parametrize(
    ("field", "limit", "scope"),
    [
        ("username", 255, "applied-permissions/admin"),
        ("scope", 500, None),
        ("description", 1024, "applied-permissions/admin"),
        ("audience", 255, "applied-permissions/admin"),
    ],
)
def test_field_longer_than_its_limit_is_400(api, field, limit, scope):
    value = "jfrt@" + "x" * (limit - 4) if field == "audience" else "x" * (limit + 1)
    assert len(value) == limit + 1
    fields = {field: value, **({"scope": scope} if scope else {})}
    response = api.create(**fields)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("field", "limit"), [("username", 255), ("description", 1024), ("audience", 255)]
)
def test_field_at_its_limit_is_accepted(api, field, limit):
    value = "jfrt@" + "x" * (limit - 5) if field == "audience" else "x" * limit
    response = api.create(scope="applied-permissions/admin", **{field: value})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("expires_in", [-1, 1.5, "soon", True])
def test_negative_or_non_integer_expires_in_is_400(api, expires_in):
    response = api.create(username="svc", scope="applied-permissions/admin", expires_in=expires_in)
    assert response.status_code == 400


def test_unknown_grant_type_is_400(api):
    assert api.create(grant_type="password").status_code == 400


def test_invalid_audience_is_400(api):
    assert api.create(scope="applied-permissions/admin", audience="artifactory").status_code == 400


def test_malformed_json_is_400(api):
    response = api.session.post(
        api.url(TOKENS),
        headers={**bearer(api.emu.admin_token), "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert response.status_code == 400


def test_identity_token_for_unknown_user_is_400(api):
    assert api.create(username="ghost").status_code == 400


def test_admin_scope_token_for_unknown_user_is_allowed(api):
    assert api.create(username="ghost", scope="applied-permissions/admin").status_code == 200


def test_create_without_authentication_is_401(api):
    response = api.session.post(api.url(TOKENS), json={})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_unknown_bearer_token_is_401(api):
    assert api.create("not-a-token").status_code == 401


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_token_creation_is_403_unless_enabled(api):
    api.emu.create_user("alice", password="s3cret")
    response = api.session.post(api.url(TOKENS), headers=_basic("alice", "s3cret"), json={})
    assert response.status_code == 403


def test_basic_auth_token_creation_works_when_policy_enables_it(make_emulator, api_for):
    api = api_for(make_emulator(policy=AccessPolicy(allow_basic_token_creation=True)))
    api.emu.create_user("alice", password="s3cret")
    response = api.session.post(api.url(TOKENS), headers=_basic("alice", "s3cret"), json={})
    assert response.status_code == 200
    assert jwt_payload(response.json()["access_token"])["sub"].endswith("/users/alice")


def test_basic_auth_with_wrong_password_is_401(api):
    api.emu.create_user("alice", password="s3cret")
    response = api.session.get(api.url(TOKENS), headers=_basic("alice", "wrong"))
    assert response.status_code == 401


def test_basic_auth_with_password_may_list_tokens(api):
    api.emu.create_user("alice", password="s3cret")
    response = api.session.get(api.url(TOKENS), headers=_basic("alice", "s3cret"))
    assert response.status_code == 200
    assert response.json() == {"tokens": []}
