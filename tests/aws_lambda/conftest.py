"""Fixtures of the rotation Lambda tests; the helpers are in tests/fixtures/lambda_harness.py.

(``lambda`` is a Python keyword: nothing can ``import tests.aws_lambda.*``, so helpers live elsewhere.)
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config

from rotator import aws_lambda
from rotator.jfrog import AccessClient
from tests.fixtures.lambda_harness import REGION, Harness, moto_config, tiny_zip
from tests.fixtures.moto_server import aws_env


@pytest.fixture
def lambda_function(moto_server):
    """A function in moto's no-Docker Lambda backend (its invoke is a no-op unless routed)."""
    moto_config(moto_server.url, use_docker=False)
    try:
        client_args = dict(endpoint_url=moto_server.url, region_name=REGION)
        suffix = uuid.uuid4().hex[:8]
        role = boto3.client("iam", **client_args).create_role(
            RoleName=f"jfrog-rotation-{suffix}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )["Role"]["Arn"]
        function = boto3.client("lambda", **client_args).create_function(
            FunctionName=f"jfrog-token-rotation-{suffix}", Runtime="python3.12", Role=role,
            Handler="rotator.aws_lambda.handler", Code={"ZipFile": tiny_zip()}, Timeout=60,
        )
        yield function["FunctionArn"]
    finally:
        moto_config(moto_server.url, use_docker=True)


@pytest.fixture
def harness(moto_server, lambda_function, emulator, monkeypatch):
    """The Lambda's environment (admin minting, groups scope, 4 h tokens: long enough for JFrog to
    store, list and revoke them, its persistency threshold being 3 h) and helpers."""
    aws_env(monkeypatch)
    emulator.create_user("ci", groups=("deployers", "readers"))
    sm = boto3.client("secretsmanager", endpoint_url=moto_server.url, region_name=REGION,
                      config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    admin_arn = sm.create_secret(Name=f"jfrog/admin-{uuid.uuid4().hex[:8]}",
                                 SecretString=emulator.admin_token)["ARN"]
    for name, value in {"SECRETS_MANAGER_ENDPOINT": moto_server.url, "JFROG_URL": emulator.url,
                        "JFROG_ADMIN_SECRET_ARN": admin_arn, "TOKEN_USERNAME": "ci", "TOKEN_GROUPS": "deployers",
                        "TOKEN_EXPIRY": "14400"}.items():
        monkeypatch.setenv(name, value)
    for name in ("REVOKE_PREVIOUS", "PREVIOUS_TOKEN_GRACE", "ORPHAN_GRACE", "TEST_SECRET_TIMEOUT", "TOKEN_SCOPE"):
        monkeypatch.delenv(name, raising=False)
    sleeps: list[float] = []
    # A container of its own per test (each test's emulator has its own admin token), whose sleep
    # is recorded instead of slept.
    container = aws_lambda.Container(sleep=sleeps.append)
    previous = aws_lambda.install(container)
    admin = AccessClient(emulator.url, access_token=emulator.admin_token)
    try:
        yield Harness(sm=sm, moto_url=moto_server.url, function_arn=lambda_function, emulator=emulator,
                      admin=admin, monkeypatch=monkeypatch, sleeps=sleeps,
                      container=container)
    finally:
        aws_lambda.install(previous)
        admin.close()
        sm.close()


