"""Crash suite for a two-output target: a Vault KV v2 primary and an AWS Secrets Manager output.
The process is killed (SIGKILL) at every step of a rotation, and while it syncs an output an
earlier run left behind; a rerun and a sweep converge: both outputs hold the same working token and
JFrog keeps no live orphan (docs/architecture.md, "Fan-out")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from rotator.cli import run
from rotator.config import load_config
from rotator.core.record import SecretRecord
from rotator.engine import RotationStep
from tests.fixtures.stores import still_known

KILL_AT = textwrap.dedent("""\
    import os, signal, sys
    from rotator.config import load_config
    from rotator.config.wiring import build_engine

    config_path, step, when = sys.argv[1:4]

    def hook(s, w, rotation_id):
        if s.value == step and w == when:
            os.kill(os.getpid(), signal.SIGKILL)

    config = load_config(config_path)
    build_engine(config, step_hook=hook).rotate(config.targets[0])
    sys.exit(3)
    """)


@pytest.fixture
def fanout_config(tmp_path, emulator, monkeypatch, cli_env, openbao, moto_server):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    emulator.create_user("ci")
    suffix = uuid.uuid4().hex[:8]
    path = tmp_path / "rotator.yaml"
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          vault: {{type: vault, url: '{openbao.addr}'}}
          aws: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto_server.url}'}}
        targets:
          - name: ci
            backend: vault
            path: jfrog/ci-{suffix}
            overlap: 0s
            orphan_grace: 0s
            token: {{username: ci, expiry: 7d}}
            outputs:
              - {{backend: aws, path: jfrog/ci-lambda-{suffix}, format: username-password}}
        """))
    return path


def kill_at(config, step: str, when: str) -> None:
    killed = subprocess.run([sys.executable, "-c", KILL_AT, str(config), step, when],
                            env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()


def converged(config, emulator) -> None:
    loaded = load_config(config)
    try:
        target = loaded.targets[0]
        vault = loaded.backends["vault"]
        record = SecretRecord.loads(vault.read(target.path).text)
        known = still_known(vault, target.path)
        [output] = target.outputs
        aws = loaded.backends["aws"].client.get_secret_value(SecretId=output.path, VersionStage="AWSCURRENT")
    finally:
        loaded.close()
    assert record.outputs_pending == ()
    # the AWS output as its consumer reads it (JFrog's own rotator's shape)
    assert json.loads(aws["SecretString"]) == {"username": "ci", "password": record.access_token}
    assert emulator.authenticates(record.access_token)
    # known: the stored token and the retired ones not done yet (a revoked entry may stay in the
    # record until the next write)
    assert emulator.live_token_count(description_prefix="jfrog-rotator:ci:") == len(known)


@pytest.mark.parametrize("step", [s.value for s in RotationStep])
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_at_every_step_of_a_fanout_rotation_then_rerun_and_sweep_converge(fanout_config, emulator, step, when):
    assert run(["rotate", "-c", str(fanout_config), "--all"]) == 0  # a first token in both outputs
    kill_at(fanout_config, step, when)
    assert run(["rotate", "-c", str(fanout_config), "--all"]) == 0
    assert run(["sweep", "-c", str(fanout_config)]) == 0
    converged(fanout_config, emulator)


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_while_syncing_an_output_left_behind_then_sweep_converges(fanout_config, emulator, when):
    assert run(["rotate", "-c", str(fanout_config), "--all"]) == 0
    kill_at(fanout_config, "outputs", "before")  # the primary holds a new token, the AWS output the old one
    kill_at(fanout_config, "outputs", when)  # the next run dies while it syncs the AWS output
    assert run(["sweep", "-c", str(fanout_config)]) == 0  # a sweep alone finishes it
    converged(fanout_config, emulator)
