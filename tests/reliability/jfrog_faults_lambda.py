"""The jfrog-faults suite's Lambda part: the Lambda suite's fixtures (tests/aws_lambda/conftest.py),
a JFrog client with the suite's short timeout, and invariants 1-3 for one secret."""

from __future__ import annotations

import pytest

from tests.aws_lambda.conftest import harness, lambda_function  # noqa: F401 - fixtures, reused as they are
from tests.reliability.jfrog_faults_cases import TIMEOUT


@pytest.fixture
def lambda_faults(request, monkeypatch):
    """The Lambda's JFrog client with a 1 s timeout (its own is 20 s), no orphan grace, and a
    testSecret that gives up after 3 s of back-off (its sleeps are recorded, not slept)."""
    sm = request.getfixturevalue("harness")
    monkeypatch.setattr("rotator.aws_lambda.container._JFROG_TIMEOUT", (TIMEOUT, TIMEOUT))
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    monkeypatch.setenv("TEST_SECRET_TIMEOUT", "3s")
    return sm


def lambda_invariants(sm: object, arn: str, tally, *, swept: bool) -> None:
    """Invariants 1-3 for one secret: AWSCURRENT parses and works, its tags name it, and (``swept``)
    every live token tagged for its target is current or retired."""
    problems = []
    try:
        record = sm.current(arn)
    except Exception as exc:  # noqa: BLE001 - a value that does not parse is the finding
        tally.add(checks=2)
        tally.violated([f"{arn}: AWSCURRENT does not parse: {exc}"])
        return
    if not sm.emulator.authenticates(record.access_token):
        problems.append(f"{arn}: the current token {record.token_id} is not accepted by JFrog")
    tags = sm.sm.describe_secret(SecretId=arn).get("Tags") or []
    if {t["Key"]: t["Value"] for t in tags}.get("jfrog-rotator:token_id") != record.token_id:
        problems.append(f"{arn}: the tags do not name the current token {record.token_id}")
    checks = 2
    if swept:
        checks += 1
        live = sm.emulator.live_token_ids(description_prefix=f"jfrog-rotator:{record.target}:")
        orphans = live - {record.token_id} - {r.token_id for r in record.retired}
        if orphans:
            problems.append(f"{arn}: live tagged tokens neither current nor retired: {sorted(orphans)}")
    tally.add(checks=checks)
    tally.violated(problems)
