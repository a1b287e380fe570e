"""POST /access/api/v1/aws/token: the signed STS GetCallerIdentity headers of an AWS identity the
emulator was told about buy a token for the JFrog user its role is mapped to (docs/emulator.md).

Requests are signed here with botocore's SigV4Auth, as jfrog/jfrog-secret-rotator-lambda does, with
keys made up for the test: nothing reaches AWS.
"""

from __future__ import annotations

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fixtures.aws_keys import made_up_key_id
from tests.fixtures.emulator_http import TOKENS, bearer

AWS_TOKEN = "/access/api/v1/aws/token"
KEY_ID, SECRET_KEY = made_up_key_id("EMULAT"), "made-up-secret-access-key-for-the-emulator"
ROLE = "arn:aws:iam::123456789012:role/jfrog-minter"


def signed_headers(key_id=KEY_ID, secret=SECRET_KEY, token=None, region="us-east-1") -> dict[str, str]:
    request = AWSRequest(method="GET", url=f"https://sts.{region}.amazonaws.com/",
                         params={"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    SigV4Auth(Credentials(key_id, secret, token), "sts", region).add_auth(request)
    return dict(request.headers.items())


@pytest.fixture
def aws_api(api):
    api.emu.create_user("minter", admin=True)
    api.emu.add_aws_identity(KEY_ID, SECRET_KEY, ROLE, "minter")
    return api


def exchange(api, headers, *, body=None, region="us-east-1"):
    return api.session.post(api.url(AWS_TOKEN), params={"region": region} if region else None,
                            headers={**headers, "Content-Type": "application/json"}, json=body or {})


def test_a_good_signature_buys_a_token_with_the_documented_fields(aws_api):
    response = exchange(aws_api, signed_headers(), body={"expires_in": 7200})
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["access_token", "username", "token_id", "expires_in", "scope", "token_type"]
    assert body["username"] == "minter" and body["expires_in"] == 7200 and body["token_type"] == "Bearer"


def test_the_token_authenticates_as_the_mapped_user_and_can_be_listed_and_revoked(aws_api):
    body = exchange(aws_api, signed_headers(), body={"expires_in": 4 * 3600}).json()  # above JFrog's 3 h persistency
    me = aws_api.get(f"{TOKENS}/me", token=body["access_token"]).json()
    assert me["token_id"] == body["token_id"] and me["subject"].endswith("/users/minter")
    listed = aws_api.get(TOKENS, params={"username": "minter"}).json()["tokens"]
    assert body["token_id"] in [t["token_id"] for t in listed]
    assert aws_api.delete(f"{TOKENS}/{body['token_id']}").status_code == 200
    assert not aws_api.emu.authenticates(body["access_token"])


def test_expires_in_may_be_a_string_as_jfrogs_own_lambda_sends_it(aws_api):
    assert exchange(aws_api, signed_headers(), body={"expires_in": "3600"}).json()["expires_in"] == 3600


def test_a_session_token_must_be_the_identitys_and_signed(aws_api):
    aws_api.emu.add_aws_identity("ASIAEMULATORTEST0002", SECRET_KEY, ROLE, "minter",
                                 session_token="made-up-session-token-" + "s" * 40)
    good = signed_headers("ASIAEMULATORTEST0002", token="made-up-session-token-" + "s" * 40)
    assert exchange(aws_api, good).status_code == 200
    other = signed_headers("ASIAEMULATORTEST0002", token="another-session-token-" + "t" * 40)
    assert exchange(aws_api, other).status_code == 401
    assert exchange(aws_api, signed_headers("ASIAEMULATORTEST0002")).status_code == 401


@pytest.mark.parametrize("case, headers, status, code", [
    ("wrong secret key", lambda: signed_headers(secret="not-the-secret-key-of-this-identity"), 401, "UNAUTHORIZED"),
    ("unknown access key", lambda: signed_headers(made_up_key_id("UNKNOW")), 401, "UNAUTHORIZED"),
    ("tampered time", lambda: _shift_time(signed_headers()), 401, "UNAUTHORIZED"),
    ("date outside the credential scope", lambda: {**signed_headers(), "X-Amz-Date": "20200101T000000Z"}, 401,
     "UNAUTHORIZED"),
    ("tampered signature", lambda: _flip_signature(signed_headers()), 401, "UNAUTHORIZED"),
    ("signed for another region", lambda: signed_headers(region="eu-west-1"), 401, "UNAUTHORIZED"),
    ("not SigV4", lambda: bearer("eyJhbGciOi.not.aws"), 401, "UNAUTHORIZED"),
    ("no credential at all", lambda: {}, 401, "UNAUTHORIZED"),
])
def test_a_rejected_request_mints_nothing(aws_api, case, headers, status, code):
    before = aws_api.emu.live_token_count()
    response = exchange(aws_api, headers())
    assert response.status_code == status, (case, response.text)
    assert response.json()["errors"][0]["code"] == code
    assert aws_api.emu.live_token_count() == before
    assert SECRET_KEY not in response.text


def test_a_role_that_is_not_mapped_is_forbidden(aws_api):
    aws_api.emu.add_aws_identity(made_up_key_id("NOTMAP"), SECRET_KEY, "arn:aws:iam::123456789012:role/other", None)
    before = aws_api.emu.live_token_count()
    response = exchange(aws_api, signed_headers(made_up_key_id("NOTMAP")))
    assert response.status_code == 403
    assert response.json()["errors"][0] == {"code": "FORBIDDEN", "message": "AWS role "
                                            "'arn:aws:iam::123456789012:role/other' is not mapped to a JFrog user"}
    assert aws_api.emu.live_token_count() == before


def test_the_signature_is_checked_before_the_body(aws_api):
    response = aws_api.session.post(aws_api.url(AWS_TOKEN), headers={"Content-Type": "application/json"},
                                    data=b"{not json")
    assert response.status_code == 401
    bad_body = aws_api.session.post(aws_api.url(AWS_TOKEN), data=b"{not json",
                                    headers={**signed_headers(), "Content-Type": "application/json"})
    assert bad_body.status_code == 400


def _flip_signature(headers: dict[str, str]) -> dict[str, str]:
    authorization = headers["Authorization"]
    last = authorization[-1]
    return {**headers, "Authorization": authorization[:-1] + ("0" if last != "0" else "1")}


def _shift_time(headers: dict[str, str]) -> dict[str, str]:
    """Another time of the same day: the shape is fine, the signature no longer matches."""
    date = headers["X-Amz-Date"]
    other = "000000" if date[9:15] != "000000" else "000001"
    return {**headers, "X-Amz-Date": f"{date[:9]}{other}Z"}
