"""Minting with the AWS IAM role: ``AccessClient.aws_token_exchange`` signs an STS GetCallerIdentity
request with botocore and trades its headers at the emulator; ``AwsIamCredential`` caches the JFrog
token until near its expiry. Keys are made up for the test; STS is moto's server on loopback."""

from __future__ import annotations

import logging

import pytest
from botocore.credentials import Credentials

from rotator.jfrog import AccessClient, JFrogHTTPError
from rotator.jfrog import client as client_module
from rotator.jfrog.aws_iam import AWS_TOKEN, aws_credentials, signed_identity_headers
from rotator.jfrog.errors import MintingCredentialError
from rotator.jfrog.minting import AwsIamCredential
from tests.fixtures.aws_keys import made_up_key_id
from tests.fixtures.clocks import Clock
from tests.fixtures.moto_server import aws_env

KEY_ID, SECRET_KEY = made_up_key_id("MINTIN"), "made-up-secret-access-key-minting-tests"
SESSION_TOKEN = "made-up-session-token-" + "q" * 48
ROLE = "arn:aws:iam::123456789012:role/jfrog-minter"
REGION = "us-east-1"


@pytest.fixture
def minter(emulator):
    emulator.create_user("minter", admin=True)
    emulator.add_aws_identity(KEY_ID, SECRET_KEY, ROLE, "minter")
    emulator.add_aws_identity("ASIAMINTINGTEST00002", SECRET_KEY, ROLE, "minter", session_token=SESSION_TOKEN)
    with AccessClient(emulator.url) as client:
        yield client


def exchanges(emulator) -> int:
    return sum(1 for r in emulator.requests if r.path.split("?")[0] == AWS_TOKEN)


def test_the_exchange_returns_a_token_that_authenticates_as_the_mapped_user(emulator, minter):
    answer = minter.aws_token_exchange(credentials=Credentials(KEY_ID, SECRET_KEY), region=REGION, expires_in=7200)
    assert answer.raw["username"] == "minter" and answer.expires_in == 7200
    assert minter.get_me(token=answer.access_token)["token_id"] == answer.token_id


def test_temporary_credentials_send_their_session_token(emulator, minter):
    credentials = Credentials("ASIAMINTINGTEST00002", SECRET_KEY, SESSION_TOKEN)
    assert emulator.authenticates(minter.aws_token_exchange(credentials=credentials, region=REGION).access_token)


def test_a_rejected_signature_names_the_call_and_mints_nothing(emulator, minter):
    before = emulator.live_token_count()
    with pytest.raises(JFrogHTTPError) as failure:
        minter.aws_token_exchange(credentials=Credentials(KEY_ID, "not-the-secret-key-of-this-identity"),
                                  region=REGION)
    assert failure.value.status == 401 and failure.value.call == f"POST {AWS_TOKEN}"
    assert emulator.live_token_count() == before


def test_the_credential_exchanges_once_and_again_near_expiry(emulator, minter):
    clock = Clock()
    credential = AwsIamCredential(minter, REGION, expires_in=3600, clock=clock,
                                  credentials=lambda: Credentials(KEY_ID, SECRET_KEY))
    first = credential.token()
    assert [credential.token() for _ in range(3)] == [first] * 3
    assert exchanges(emulator) == 1
    clock.now += 3600 - 361  # more than 10% of the hour left: still cached
    assert credential.token() == first and exchanges(emulator) == 1
    clock.now += 2  # less than 10% left: exchanged again
    second = credential.token()
    assert second != first and exchanges(emulator) == 2
    assert emulator.authenticates(second)


def test_a_short_token_is_exchanged_again_five_minutes_before_it_expires(emulator, minter):
    clock = Clock()
    credential = AwsIamCredential(minter, REGION, expires_in=1200, clock=clock,
                                  credentials=lambda: Credentials(KEY_ID, SECRET_KEY))
    first = credential.token()
    clock.now += 1200 - 301
    assert credential.token() == first
    clock.now += 2
    assert credential.token() != first and exchanges(emulator) == 2


def test_a_failed_exchange_names_the_call_and_keeps_no_secret(emulator, minter, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    credential = AwsIamCredential(minter, REGION, credentials=lambda: Credentials(
        "ASIAMINTINGTEST00002", SECRET_KEY, "a-session-token-jfrog-does-not-know-" + "x" * 30))
    with pytest.raises(MintingCredentialError) as failure:
        credential.token()
    message = str(failure.value)
    assert message.startswith(f"AWS IAM token exchange failed (POST {AWS_TOKEN}?region={REGION}): "
                              "server response: 401")
    for secret in (SECRET_KEY, "x" * 30):
        assert secret not in message and secret not in caplog.text


def test_no_secret_in_any_log_line_of_a_good_exchange(emulator, minter, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")  # botocore.auth logs what it signs at DEBUG
    sent: list[dict[str, str]] = []

    def recording(credentials, region):
        sent.append(signed_identity_headers(credentials, region))
        return sent[-1]

    monkeypatch.setattr(client_module, "signed_identity_headers", recording)
    credential = AwsIamCredential(minter, REGION, credentials=lambda: Credentials(
        "ASIAMINTINGTEST00002", SECRET_KEY, SESSION_TOKEN))
    token = credential.token()
    assert "exchanged the AWS identity for a JFrog token of user minter" in caplog.text
    assert "CanonicalRequest" in caplog.text  # botocore's own lines were captured too
    signature = sent[0]["Authorization"].rpartition("Signature=")[2]
    assert len(signature) == 64
    for secret in (SECRET_KEY, SESSION_TOKEN, token, signature):
        assert secret not in caplog.text


def test_credentials_come_from_boto3s_chain_or_an_assumed_role(monkeypatch, moto_server):
    aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    own = aws_credentials(region=REGION)
    assert (own.access_key, own.secret_key, own.token) == (KEY_ID, SECRET_KEY, None)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server.url)
    assumed = aws_credentials(region=REGION, role_arn=ROLE)
    assert assumed.access_key.startswith("ASIA") and assumed.token and assumed.access_key != KEY_ID


def test_an_assumed_role_signs_the_exchange(emulator, minter, monkeypatch, moto_server):
    aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server.url)
    assumed = aws_credentials(region=REGION, role_arn=ROLE)
    emulator.add_aws_identity(assumed.access_key, assumed.secret_key, ROLE, "minter", session_token=assumed.token)
    credential = AwsIamCredential(minter, REGION, role_arn=ROLE, credentials=lambda: assumed)
    assert emulator.authenticates(credential.token())
