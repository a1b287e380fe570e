"""The Lambda rotates one secret: pointed at an output of a fan-out target (written by the daemon
or the CLI with ``outputs:``), its createSecret refuses, naming the target, and mints and writes
nothing (docs/aws-lambda.md, "One secret per function")."""

from __future__ import annotations

import uuid

import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from rotator.aws_lambda import RotationSetupError
from rotator.core.target import Output, Target
from rotator.core.token_spec import TokenSpec
from rotator.engine import Engine


@pytest.fixture
def fanned_out(harness, moto_server):
    """A target whose primary and one output are AWS secrets, rotated once by the engine."""
    backend = SecretsManagerBackend("aws", endpoint_url=moto_server.url, region="us-east-1", timeout=10)
    suffix = uuid.uuid4().hex[:8]
    target = Target(name=f"ci-{suffix}", backend="aws", path=f"jfrog/ci-{suffix}",
                    token=TokenSpec(username="ci", groups="deployers", expiry=14400, force_revocable=True),
                    outputs=(Output("aws", f"jfrog/ci-lambda-{suffix}", "token"),))
    engine = Engine(jfrog=harness.admin, backends={"aws": backend}, has_admin=True, verify_delay=0.01)
    result = engine.rotate(target)
    assert result.outcome == "rotated", result.error
    yield target
    backend.close()


@pytest.mark.parametrize("which, message", [
    ("primary", "is the primary output of fan-out target"),
    ("output", "is an output of fan-out target"),
])
def test_the_lambda_refuses_an_output_of_a_fanout_target(harness, fanned_out, which, message):
    path = fanned_out.path if which == "primary" else fanned_out.outputs[0].path
    arn = harness.sm.describe_secret(SecretId=path)["ARN"]
    before = harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    token = harness.begin(arn)
    minted = harness.emulator.mint_count
    with pytest.raises(RotationSetupError, match=message) as raised:
        harness.step(arn, token, "createSecret")
    assert repr(fanned_out.name) in str(raised.value) and "turn off this secret's rotation" in str(raised.value)
    assert harness.emulator.mint_count == minted
    assert harness.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == before
    with pytest.raises(harness.sm.exceptions.ResourceNotFoundException):  # no pending value was written
        harness.sm.get_secret_value(SecretId=arn, VersionId=token)
