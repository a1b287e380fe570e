"""Crash suite: the process is killed (SIGKILL) at every step of a rotation; a rerun and a sweep
converge: the store holds a working token and JFrog keeps no live orphan."""

from __future__ import annotations

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


@pytest.fixture(params=["file", "vault"])
def crash_config(request, tmp_path, emulator, monkeypatch, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci")
    if request.param == "file":
        backend = "{type: file, directory: ./secrets}"
    else:
        openbao = request.getfixturevalue("openbao")
        monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
        backend = f"{{type: vault, url: '{openbao.addr}'}}"
    path = tmp_path / "rotator.yaml"
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends: {{store: {backend}}}
        targets:
          - {{name: ci, backend: store, path: jfrog/ci-{uuid.uuid4().hex[:8]}, overlap: 0s, orphan_grace: 0s,
              token: {{username: ci, expiry: 7d}}}}
        """))
    return path


def current_record(config_path) -> tuple[SecretRecord, set[str]]:
    """The stored record and the token ids the rotator still answers for (:func:`still_known`)."""
    config = load_config(config_path)
    try:
        target = config.targets[0]
        store = config.backends[target.backend]
        return SecretRecord.loads(store.read(target.path).text), still_known(store, target.path)
    finally:
        config.close()


@pytest.mark.parametrize("step", [s.value for s in RotationStep if s is not RotationStep.OUTPUTS])  # see test_crash_fanout
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_at_step_then_rerun_and_sweep_converge(crash_config, emulator, step, when, capsys):
    assert run(["rotate", "-c", str(crash_config), "--all"]) == 0  # a first token to replace
    killed = subprocess.run([sys.executable, "-c", KILL_AT, str(crash_config), step, when],
                            env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert run(["rotate", "-c", str(crash_config), "--all"]) == 0
    assert run(["sweep", "-c", str(crash_config)]) == 0
    record, known = current_record(crash_config)
    assert emulator.authenticates(record.access_token)
    assert emulator.live_token_count(description_prefix="jfrog-rotator:ci:") == len(known)
    for token_id in known:
        assert emulator.is_token_active(token_id)
