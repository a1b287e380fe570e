"""JWT format and signature (docs/emulator.md) and GET /access/api/v1/cert/root."""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.fixtures.emulator_http import jwt_payload


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _root_cert(api) -> x509.Certificate:
    response = api.session.get(api.url("/access/api/v1/cert/root"))
    assert response.status_code == 200
    return x509.load_der_x509_certificate(base64.b64decode(response.text, validate=True))


def _verify(cert: x509.Certificate, jwt: str) -> None:
    header, payload, signature = jwt.split(".")
    cert.public_key().verify(
        _b64url_decode(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_header_is_ver_typ_alg_kid(api):
    header = json.loads(_b64url_decode(api.user_token()["access_token"].split(".")[0]))
    assert list(header) == ["ver", "typ", "alg", "kid"]
    assert header["ver"] == "2" and header["typ"] == "JWT" and header["alg"] == "RS256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", header["kid"])


def test_root_certificate_verifies_a_minted_token(api):
    _verify(_root_cert(api), api.user_token()["access_token"])


def test_root_certificate_rejects_a_tampered_token(api):
    header, payload, signature = api.user_token()["access_token"].split(".")
    claims = jwt_payload(f"{header}.{payload}.{signature}")
    claims["scp"] = "applied-permissions/admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        _verify(_root_cert(api), f"{header}.{forged}.{signature}")


def test_claims_are_ext_sub_scp_aud_iss_exp_iat_jti(api):
    body = api.user_token("alice", expires_in=31536000)
    claims = jwt_payload(body["access_token"])
    assert list(claims) == ["ext", "sub", "scp", "aud", "iss", "exp", "iat", "jti"]
    assert re.fullmatch(r"jfac@[0-9a-z]{26}", claims["iss"])
    assert claims["sub"] == f"{claims['iss']}/users/alice"
    assert claims["scp"] == "applied-permissions/user"
    assert claims["aud"] == "*@*"
    assert claims["exp"] - claims["iat"] == 31536000
    assert claims["jti"] == body["token_id"]


def test_ext_is_a_json_string_marking_revocable_tokens(api):
    claims = jwt_payload(api.user_token(expires_in=21600)["access_token"])
    assert claims["ext"] == '{"revocable":"true"}'


def test_short_token_has_no_revocable_ext(api):
    assert "ext" not in jwt_payload(api.user_token(expires_in=3600)["access_token"])


def test_force_revocable_short_token_has_revocable_ext(api):
    claims = jwt_payload(api.user_token(expires_in=3600, force_revocable=True)["access_token"])
    assert json.loads(claims["ext"]) == {"revocable": "true"}


def test_payload_escapes_slashes_like_jackson(api):
    raw = _b64url_decode(api.user_token()["access_token"].split(".")[1]).decode()
    assert '"scp":"applied-permissions\\/user"' in raw


@pytest.mark.parametrize(
    "scope",
    ["applied-permissions/groups:readers", "artifact:repo/a?b>c~d?e>f~g:r applied-permissions/groups:é,ß,\u00ff"],
)
def test_payload_segment_has_no_url_safe_characters(api, scope):
    # The second scope is full of bytes ('?', '>', '~', non-ASCII) that produce '-'/'_' in base64url.
    for _ in range(5):
        token = api.create(username="svc", scope=f"{scope} applied-permissions/admin").json()["access_token"]
        segment = token.split(".")[1]
        assert "-" not in segment and "_" not in segment
        assert jwt_payload(token)["scp"] == f"{scope} applied-permissions/admin"


def test_issuer_id_is_configurable(make_emulator, api_for):
    api = api_for(make_emulator(issuer_id="01abcdefghjkmnpqrstvwxyz00"))
    assert jwt_payload(api.user_token()["access_token"])["iss"] == "jfac@01abcdefghjkmnpqrstvwxyz00"


def test_each_emulator_generates_its_own_key_by_default():
    from rotator.emulator import Emulator

    first, second = Emulator(), Emulator()
    assert first.model.signer.kid != second.model.signer.kid
