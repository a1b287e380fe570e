"""Reading JWT claims without verification."""

import base64
import json

import pytest

from rotator.jfrog.jwt import InvalidTokenFormat, decode_claims, username_from_subject


def make_jwt(payload: dict) -> str:
    def seg(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': 'RS256', 'typ': 'JWT'})}.{seg(payload)}.c2ln"


def test_claims_of_an_access_token():
    claims = decode_claims(make_jwt({
        "jti": "59e39159", "sub": "jfac@01g5/users/ci-deployer", "scp": "applied-permissions/user",
        "aud": "*@*", "iss": "jfac@01g5", "iat": 100, "exp": 200, "ext": '{"revocable":"true"}',
    }))
    assert (claims.token_id, claims.username, claims.scope, claims.expires_at, claims.issued_at) == (
        "59e39159", "ci-deployer", "applied-permissions/user", 200, 100)
    assert claims.expiring


def test_non_expiring_token_has_no_exp():
    claims = decode_claims(make_jwt({"jti": "x", "sub": "jfac@1/users/a"}))
    assert claims.expires_at is None and not claims.expiring


def test_audience_list_is_joined():
    assert decode_claims(make_jwt({"aud": ["jfrt@*", "jfxr@*"]})).audience == "jfrt@* jfxr@*"


@pytest.mark.parametrize("subject,user", [("jfrt@1/users/bob", "bob"), ("jfac@1/users/a", "a"), ("other", "")])
def test_username_rule_of_the_cli(subject, user):
    assert username_from_subject(subject) == user


@pytest.mark.parametrize("value", ["", "abc", "cmVmdGtuOjAxOj" + "a" * 50, "a.!!!.c", "a.bm90anNvbg.c"])
def test_non_jwt_is_rejected_without_echoing_it(value):
    with pytest.raises(InvalidTokenFormat) as err:
        decode_claims(value)
    assert value not in str(err.value) or value == ""
