"""Reference tokens (docs/emulator.md): shape, authentication, and death with their token."""

from __future__ import annotations

import base64
import re

from tests.fixtures.emulator_http import TOKENS, jwt_payload

REFERENCE_RE = re.compile(r"^cmVmd[A-Za-z0-9]{59}$")


def test_reference_token_has_the_documented_shape(api):
    body = api.user_token(include_reference_token=True, expires_in=7200)
    reference = body["reference_token"]
    assert REFERENCE_RE.match(reference)
    assert reference.startswith("cmVmdGtu")
    decoded = base64.b64decode(reference).decode("ascii")
    match = re.fullmatch(r"reftkn:01:(\d{10}):([A-Za-z0-9]{27})", decoded)
    assert match
    assert int(match.group(1)) == jwt_payload(body["access_token"])["exp"]


def test_reference_token_of_non_expiring_token_has_zero_expiry(api):
    body = api.create(username="svc", scope="applied-permissions/admin", expires_in=0, include_reference_token=True)
    decoded = base64.b64decode(body.json()["reference_token"]).decode("ascii")
    assert decoded.startswith("reftkn:01:0000000000:")


def test_reference_tokens_are_unique(api):
    first = api.user_token(include_reference_token=True)["reference_token"]
    second = api.user_token(include_reference_token=True)["reference_token"]
    assert first != second


def test_reference_token_authenticates_as_its_token(api):
    body = api.user_token(include_reference_token=True)
    response = api.get(f"{TOKENS}/me", body["reference_token"])
    assert response.status_code == 200
    assert response.json()["token_id"] == body["token_id"]


def test_reference_token_works_as_basic_password_and_api_key_header(api):
    body = api.user_token("alice", include_reference_token=True)
    basic = api.session.get(api.url(f"{TOKENS}/me"), auth=("alice", body["reference_token"]))
    header = api.session.get(api.url(f"{TOKENS}/me"), headers={"X-JFrog-Art-Api": body["reference_token"]})
    assert basic.status_code == 200
    assert header.status_code == 200


def test_revoking_by_id_kills_the_reference_token(api):
    body = api.user_token(include_reference_token=True)
    assert api.delete(f"{TOKENS}/{body['token_id']}").status_code == 200
    assert api.get(f"{TOKENS}/me", body["reference_token"]).status_code == 401
