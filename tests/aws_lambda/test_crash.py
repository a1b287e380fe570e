"""Crash suite for the Lambda: the process running the four steps is killed (SIGKILL) at each of
its remote calls; Secrets Manager's retry runs the step again, the next rotation runs, and the
invariants of docs/architecture.md hold: the current token works, its tags name it, and every
token the Lambda minted is current, listed as retired or revoked (no live orphan, no early revoke).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from backends.aws_secretsmanager import SecretsManagerBackend
from tests.fixtures.imports import ROOT
from tests.fixtures.lambda_harness import STEPS

KILL_AT = textwrap.dedent("""\
    import os, signal, sys
    from rotator import aws_lambda
    from rotator.aws_lambda.settings import LambdaSettings

    arn, token, step, kind, call, when = sys.argv[1:7]
    container = aws_lambda.Container()
    aws_lambda.install(container)
    settings = LambdaSettings.from_env()
    container.backend(settings, arn)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    current_step = [None]
    if kind == "aws":
        hook = "before-call" if when == "before" else "after-call"
        def on_call(*args, **kwargs):
            if current_step[0] == step:
                die()
        container.secrets_manager.meta.events.register(f"{hook}.secrets-manager.{call}", on_call)
    elif kind == "jfrog":
        method, path = call.split(" ", 1)
        def on_response(response, *args, **kwargs):
            request = response.request
            if current_step[0] == step and request.method == method and request.path_url.startswith(path):
                die()
        container.jfrog(settings).session.hooks["response"].append(on_response)
    for name in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        current_step[0] = name
        if kind == "start" and name == step:
            die()
        aws_lambda.handler({"SecretId": arn, "ClientRequestToken": token, "Step": name}, None)
    sys.exit(3)
    """)

#: (step, what the killed process was doing, the call, before/after it)
KILL_POINTS = [
    ("createSecret", "start", "-", "-"),
    ("createSecret", "jfrog", "POST /access/api/v1/tokens", "after"),  # minted, nothing stored
    ("createSecret", "aws", "PutSecretValue", "after"),  # the pending record stored
    ("setSecret", "start", "-", "-"),
    ("testSecret", "jfrog", "GET /access/api/v1/tokens/me", "after"),
    ("finishSecret", "aws", "UpdateSecretVersionStage", "before"),
    ("finishSecret", "aws", "UpdateSecretVersionStage", "after"),  # promoted, tags not written yet
    ("finishSecret", "aws", "TagResource", "after"),  # tagged, nothing revoked yet
    ("finishSecret", "jfrog", "DELETE /access/api/v1/tokens/", "after"),  # revoking, orphans not swept
]


def check_invariants(harness, backend, arn):
    record = harness.current(arn)
    assert harness.emulator.authenticates(record.access_token), "the current token must work"
    tags = backend.read_metadata(arn)
    assert tags["token_id"] == record.token_id and tags["generation"] == str(record.generation)
    live = {t["token_id"] for t in harness.tagged(record.target)}
    known = {record.token_id} | {r.token_id for r in record.retired}
    assert live <= known, f"live tokens neither current nor retired: {live - known}"
    now = datetime.now(timezone.utc)
    early = [r.token_id for r in record.retired if r.revoke_after > now and r.token_id not in live]
    assert early == [], f"revoked before their time: {early}"
    return record


@pytest.mark.parametrize("step, kind, call, when", KILL_POINTS,
                         ids=[f"{s}-{k}-{c.split(' ')[-1].strip('/')}-{w}" for s, k, c, w in KILL_POINTS])
def test_kill_the_lambda_then_retry_and_rotate_again_converges(harness, moto_server, monkeypatch,
                                                               step, kind, call, when):
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    arn, seed = harness.seeded_secret()
    backend = SecretsManagerBackend("check", endpoint_url=moto_server.url, region="us-east-1", timeout=10)
    try:
        harness.rotate(arn)  # a Lambda rotation first, so a previous token is listed
        token = harness.begin(arn)
        killed = subprocess.run([sys.executable, "-c", KILL_AT, arn, token, step, kind, call, when],
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
        harness.run_steps(arn, token, STEPS[STEPS.index(step):])  # Secrets Manager retries the step
        record = check_invariants(harness, backend, arn)
        assert record.generation == seed.generation + 2
        harness.rotate(arn)  # and the next rotation finds nothing left behind
        check_invariants(harness, backend, arn)
    finally:
        backend.close()
