"""Helpers of the crash matrix (tests/reliability/test_crash_matrix.py): one target on real
servers, seeded, killed at one step through one door, then rerun and swept through that door.

A *kill* is either a real ``SIGKILL`` of a child process (the engine's ``step_hook`` calls
``os.kill(os.getpid(), SIGKILL)``) or, in this process, the hook raising :class:`Killed`, a
``BaseException`` the product does not catch: the run stops where it is, as a killed process
would (the ``finally`` blocks that close connections still run; nothing the product writes does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

import rotator.config.wiring as wiring
from rotator.cli import run
from rotator.config import load_config
from rotator.daemon import RotationDaemon, service
from rotator.engine import RotationStep
from rotator.engine.reading import read_current
from rotator.engine.records import revoked_per_metadata
from tests.fixtures.daemon import ROOT
from tests.fixtures.moto_server import aws_env
from tests.fixtures.stores import write_raw

#: The stores of the matrix, named as the config below names them.
STORES = ("file", "vault-kv2", "vault-kv1", "aws")
STRATEGIES = ("recreate", "refresh", "self", "adopt")
WHEN = ("before", "after")
USER = "ci"


class Killed(BaseException):
    """The process dies here (in-process stand-in for SIGKILL: no product code catches it)."""


@dataclass(frozen=True)
class Case:
    door: str  # cli | daemon
    store: str  # the primary's store, one of STORES
    strategy: str  # one of STRATEGIES
    outputs: int  # 1, or 2: fan-out to a second store
    step: str  # a RotationStep value
    when: str  # before | after
    kill: str = "raise"  # raise (in-process) | sigkill (a child process)

    @property
    def id(self) -> str:
        return f"{self.door}-{self.store}-{self.strategy}-{self.outputs}out-{self.step}-{self.when}-{self.kill}"


def valid(door: str, store: str, strategy: str, outputs: int, step: str) -> bool:
    """The combinations the matrix runs (the module docstring of the test says why the others are not)."""
    if step in INSIDE_STORE and not has_inside_store(step, store, strategy, outputs):
        return False  # one write: nothing between the value and its metadata
    if step == RotationStep.OUTPUTS.value and outputs == 1:
        return False  # a one-output target has no OUTPUTS step
    if strategy == "refresh" and outputs == 2:
        return False  # refused by the config: a refresh ends the previous token at once
    return True


def points(steps=None) -> list[tuple[str, str]]:
    """(step, when): before and after every RotationStep, and the point inside STORE."""
    steps = [s.value for s in RotationStep] if steps is None else steps
    return [(step, w) for step in steps for w in (("mid",) if step in INSIDE_STORE else WHEN)]


def matrix(doors=("cli", "daemon"), stores=STORES, strategies=STRATEGIES, outputs=(1, 2),
           steps=None, kill: str = "raise") -> list[Case]:
    steps = [*(s.value for s in RotationStep), *INSIDE_STORE] if steps is None else steps
    return [Case(d, s, st, n, step, w, kill)
            for d in doors for s in stores for st in strategies for n in outputs for step, w in points(steps)
            if valid(d, s, st, n, step)]


# -- the scene: one target on the real servers ----------------------------------------------------
BACKEND_NAMES = {"file": "files", "vault-kv2": "kv2", "vault-kv1": "kv1", "aws": "aws"}


def backend_blocks(request, kinds) -> dict[str, str]:
    """The ``backends:`` entries of the stores named, started on demand (a file-only case starts no server)."""
    blocks = {}
    for kind in kinds:
        if kind == "file":
            blocks["files"] = "{type: file, directory: ./secrets}"
        elif kind in ("vault-kv2", "vault-kv1"):
            openbao = request.getfixturevalue("openbao")
            mount = request.getfixturevalue("kv1_mount") if kind == "vault-kv1" else "secret"
            blocks[BACKEND_NAMES[kind]] = f"{{type: vault, url: '{openbao.addr}', mount: {mount}}}"
        elif kind == "aws":
            moto = request.getfixturevalue("moto_server")
            blocks["aws"] = f"{{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto.url}', timeout: 10s}}"
    return blocks


def second_output(store: str) -> tuple[str, str]:
    """The other output of a two-output target: another store than the primary, in a consumer's format."""
    return ("file", "env") if store == "aws" else ("aws", "username-password")


def environment(request, monkeypatch, emulator, kinds) -> None:
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    if {"vault-kv2", "vault-kv1"} & set(kinds):
        monkeypatch.setenv("VAULT_TOKEN", request.getfixturevalue("openbao").root_token)
    if "aws" in kinds:
        aws_env(monkeypatch)


class Scene:
    """One target ``ci`` (overlap 0 and orphan grace 0, so a sweep right after the rerun must leave
    nothing but the stored token) in the primary store, optionally fanned out to a second one."""

    def __init__(self, request, tmp_path: Path, emulator, monkeypatch, *, store: str, strategy: str,
                 outputs: int) -> None:
        self.emulator, self.store, self.strategy, self.outputs = emulator, store, strategy, outputs
        emulator.create_user(USER)
        kinds = [store] + ([second_output(store)[0]] if outputs == 2 else [])
        blocks = backend_blocks(request, kinds)  # the session's servers first: they keep their own env
        environment(request, monkeypatch, emulator, kinds)
        suffix = uuid.uuid4().hex[:8]
        self.path = f"jfrog/ci-{suffix}"
        token = f"{{username: {USER}, expiry: 7d{', refreshable: true' if strategy == 'refresh' else ''}}}"
        lines = [f"  - name: {USER}", f"    backend: {BACKEND_NAMES[store]}", f"    path: {self.path}",
                 "    overlap: 0s", "    orphan_grace: 0s", f"    token: {token}", "    schedule: {every: 1s}"]
        if strategy in ("refresh", "self"):
            lines.append(f"    strategy: {strategy}")
        if strategy == "adopt" and store == "vault-kv1":
            lines.append("    format: record")  # a KV v1 mount keeps no metadata beside another shape
        if outputs == 2:
            kind, fmt = second_output(store)
            self.output_path = f"jfrog/ci-out-{suffix}"
            lines.append(f"    outputs: [{{backend: {BACKEND_NAMES[kind]}, path: {self.output_path}, format: {fmt}}}]")
        self.config = tmp_path / "rotator.yaml"
        self.config.write_text(
            f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
            "backends:\n" + "".join(f"  {name}: {block}\n" for name, block in blocks.items())
            + "daemon: {sweep_interval: 1h}\n"
            + "targets:\n" + "\n".join(lines) + "\n")
        self.adopted: str | None = None

    def seed(self) -> None:
        """What the killed run replaces: a first rotation, or (adopt) a secret a person made holding a
        working token of the user, in the shape ``{"username", "password"}``."""
        if self.strategy != "adopt":
            assert run(["rotate", "-c", str(self.config), "--all"]) == 0
            return
        token = self.emulator.create_token(USER, expires_in=14400, force_revocable=True)
        self.adopted = token["token_id"]
        config = load_config(self.config)
        try:
            write_raw(config.backends[BACKEND_NAMES[self.store]], self.path,
                      json.dumps({"username": USER, "password": token["access_token"]}))
        finally:
            config.close()

    def adoption_problems(self) -> list[str]:
        """The adopted token is not tagged, so no list of JFrog finds it: it must stay the stored
        token, listed as retired in the primary's bookkeeping, or be revoked; else the rotator lost it."""
        if self.adopted is None or not self.emulator.is_token_active(self.adopted):
            return []
        config = load_config(self.config)
        client, _ = wiring.jfrog_client(config.jfrog)
        try:
            target = config.targets[0]
            current = read_current(target, config.backends[target.backend], client)
            record = current.record
            done = revoked_per_metadata(record, current.stored.metadata or {}) if record else set()
            known = {record.token_id, *(r.token_id for r in record.retired if r.token_id not in done)} if record else set()
        finally:
            client.close()
            config.close()
        if self.adopted in known:
            return []
        return [f"{USER}: the adopted token {self.adopted} is live, yet neither stored nor listed as retired: "
                "the rotator lost track of it"]


# -- kill points ----------------------------------------------------------------------------------
#: Two kill points inside STORE, whose write is more than one call on some stores:
#: ``store-value``: the value written, the metadata beside it not yet (Vault KV v2's
#: custom_metadata, AWS's tags); ``store-bookkeeping``: a document's retired list written first
#: (KV v2, AWS; the file store's sidecar), the value not yet. A KV v1 mount and the file store's
#: record are one write: no point inside.
#: The same inside the write of the second output (OUTPUTS): ``outputs-value`` on an AWS output
#: (the value, then its tags), ``outputs-bookkeeping`` on a file output (its sidecar, then the value).
MID_STORE = "store-value"
PRE_STORE = "store-bookkeeping"
MID_OUTPUT = "outputs-value"
PRE_OUTPUT = "outputs-bookkeeping"
INSIDE_STORE = (PRE_STORE, MID_STORE, PRE_OUTPUT, MID_OUTPUT)


def has_inside_store(step: str, store: str, strategy: str, outputs: int = 1) -> bool:
    document = strategy == "adopt" and store != "vault-kv1"  # the adopted shape is kept (on KV v1: our record)
    if step in (MID_OUTPUT, PRE_OUTPUT):
        if step == MID_OUTPUT and strategy == "adopt":
            return False  # the adopting rotation creates the AWS output: one CreateSecret with its tags
        return outputs == 2 and second_output(store)[0] == ("aws" if step == MID_OUTPUT else "file")
    if step == MID_STORE:
        return store in ("vault-kv2", "aws")
    return document and store in ("vault-kv2", "aws", "file")


def in_process_die(what: str) -> None:
    raise Killed(what)


def sigkill_die(what: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(patch, step: str, when: str, die=in_process_die):
    """The step hook that kills the run the first time it reaches ``(step, when)``; for a point
    inside STORE, ``patch(cls, name, fn)`` wraps the store calls so that the one at that point dies."""
    armed = [0]  # > 0 while STORE runs: 1 + the store calls seen

    within = RotationStep.OUTPUTS if step in (MID_OUTPUT, PRE_OUTPUT) else RotationStep.STORE

    def hook(s, w, rotation_id):
        if step in INSIDE_STORE:
            if s is within:
                armed[0] = 1 if w == "before" else 0
        elif s.value == step and w == when:
            die(f"{step} {when}")

    if step in INSIDE_STORE:
        from backends.aws_secretsmanager import SecretsManagerBackend
        from backends.aws_secretsmanager.staging import StagingLabels
        from backends.file import FileBackend
        from backends.vault.kv_v2 import KvV2

        def killing(cls, name, applies):
            original = getattr(cls, name)

            def wrapped(self, *args, **kwargs):
                if armed[0] and applies(*args, **kwargs):
                    die(step)
                return original(self, *args, **kwargs)

            patch(cls, name, wrapped)

        def second_file_write(file, text):
            armed[0] += 1
            return armed[0] == 3

        if step in (MID_STORE, MID_OUTPUT):
            killing(KvV2, "patch_metadata", lambda path, meta, op="patch metadata", **kw: op == "write metadata")
            killing(SecretsManagerBackend, "patch_metadata", lambda path, updates: "token_id" in updates)
        else:
            killing(FileBackend, "_replace", second_file_write)
            killing(KvV2, "create_or_update_secret", lambda *a, **kw: True)
            killing(StagingLabels, "write_pending", lambda *a, **kw: True)
    return hook


@contextmanager
def hooked(monkeypatch, step: str, when: str) -> Iterator[object]:
    """Every engine the CLI builds in this block is killed at ``(step, when)``; yields the hook."""
    real = wiring.build_engine
    with monkeypatch.context() as m:
        hook = arm(m.setattr, step, when)
        m.setattr(wiring, "build_engine", lambda config, **kw: real(config, **{"step_hook": hook, **kw}))
        yield hook


def cli_kill(scene: Scene, monkeypatch, step: str, when: str) -> None:
    with hooked(monkeypatch, step, when), pytest.raises(Killed):
        run(["rotate", "-c", str(scene.config), "--all"])


def daemon_kill(scene: Scene, monkeypatch, step: str, when: str) -> None:
    """The daemon's job for the target (what its scheduler runs), killed at the step."""
    with monkeypatch.context() as m:
        daemon = RotationDaemon(str(scene.config), step_hook=arm(m.setattr, step, when), listen="127.0.0.1:0")
        try:
            with pytest.raises(Killed):
                daemon._run_target(USER, "schedule")
        finally:
            close_daemon(daemon)


def close_daemon(daemon: RotationDaemon) -> None:
    """A daemon built but never started: close what its constructor opened."""
    daemon.engine.jfrog.close()
    daemon.config.close()


def cli_rerun(scene: Scene) -> None:
    assert run(["rotate", "-c", str(scene.config), "--all"]) == 0, "the rerun must converge"
    assert run(["sweep", "-c", str(scene.config)]) == 0, "the sweep must succeed"


def daemon_rerun(scene: Scene) -> None:
    """The restarted daemon's job, then its sweep. A daemon sweeps with an orphan grace of at least
    ``ORPHAN_GRACE_FLOOR`` (60 s; docs/daemon.md): the sweep of this restarted one stands for its
    sweep a minute on, when the crash's orphan is that old."""
    with mock.patch.object(service, "ORPHAN_GRACE_FLOOR", 0):
        daemon = RotationDaemon(str(scene.config), listen="127.0.0.1:0")
    try:
        daemon._run_target(USER, "schedule")
        state = daemon.targets[USER]
        assert state.runs == 1 and state.failures == 0, f"the daemon's rerun failed: {state.last_error}"
        daemon._sweep_all()
    finally:
        close_daemon(daemon)


RERUN = {"cli": cli_rerun, "daemon": daemon_rerun}


# -- doors, killed for real (a child process) ---------------------------------------------------
CHILD = textwrap.dedent("""\
    import sys
    from tests.reliability.crash_scene import child_main
    child_main(*sys.argv[1:5])
    """)


def child_main(door: str, config_path: str, step: str, when: str) -> None:
    """In a child process: run the door, SIGKILLed at the step (exit 3 if it never got there)."""
    import time

    def patch(cls, name, fn):
        setattr(cls, name, fn)

    hook = arm(patch, step, when, die=sigkill_die)
    if door == "cli":
        real = wiring.build_engine
        wiring.build_engine = lambda config, **kw: real(config, **{"step_hook": hook, **kw})
        run(["rotate", "-c", config_path, "--all"])
    else:  # the daemon, whose job for the target (due at start) is killed at the step
        RotationDaemon(config_path, step_hook=hook, listen="127.0.0.1:0").start()
        time.sleep(60)
    sys.exit(3)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def sigkill(scene: Scene, door: str, step: str, when: str) -> None:
    """Run the door in a child process that SIGKILLs itself at the step."""
    killed = subprocess.run([sys.executable, "-c", CHILD, door, str(scene.config), step, when],
                            env=child_env(), cwd=scene.config.parent, capture_output=True, timeout=90)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]


# -- the Lambda: its four steps as Secrets Manager calls them -----------------------------------
LAMBDA_CHILD = textwrap.dedent("""\
    import sys
    from rotator import aws_lambda
    from tests.reliability.crash_scene import lambda_killed, sigkill_die
    container = aws_lambda.Container()
    aws_lambda.install(container)
    lambda_killed(container, *sys.argv[1:3], tuple(sys.argv[3:7]), sigkill_die)
    sys.exit(3)
    """)


def lambda_killed(container, arn: str, token: str, point, die=in_process_die) -> None:
    """Secrets Manager's four calls of the handler for one rotation, the run dying at ``point``:
    at the start of a step, or before/after one of its AWS calls (a botocore event) or JFrog calls."""
    from rotator import aws_lambda
    from rotator.aws_lambda.settings import LambdaSettings

    step, kind, call, when = point
    settings = LambdaSettings.from_env()
    container.backend(settings, arn)
    current_step = [None]
    undo = []
    if kind == "aws":
        event = f"{'before-call' if when == 'before' else 'after-call'}.secrets-manager.{call}"

        def on_call(*args, **kwargs):
            if current_step[0] == step:
                die(f"{step} {call}")

        container.secrets_manager.meta.events.register(event, on_call)
        undo.append(lambda: container.secrets_manager.meta.events.unregister(event, on_call))
    elif kind == "jfrog":
        method, path = call.split(" ", 1)

        def on_response(response, *args, **kwargs):
            request = response.request
            if current_step[0] == step and request.method == method and request.path_url.startswith(path):
                die(f"{step} {call}")

        hooks = container.jfrog(settings).session.hooks["response"]
        hooks.append(on_response)
        undo.append(lambda: hooks.remove(on_response))
    try:
        for name in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            current_step[0] = name
            if kind == "start" and name == step:
                die(f"{step} start")
            aws_lambda.handler({"SecretId": arn, "ClientRequestToken": token, "Step": name}, None)
    finally:
        for fn in undo:
            fn()


#: (step, what the killed process was doing, the call, before/after it)
LAMBDA_KILLS = [
    ("createSecret", "start", "-", "-"),
    ("createSecret", "jfrog", "POST /access/api/v1/tokens", "after"),  # minted, nothing stored
    ("createSecret", "aws", "TagResource", "after"),  # a document's pending tag written, no pending value
    ("createSecret", "aws", "PutSecretValue", "after"),  # the pending value stored
    ("setSecret", "start", "-", "-"),
    ("testSecret", "start", "-", "-"),
    ("testSecret", "jfrog", "GET /access/api/v1/tokens/me", "after"),
    ("finishSecret", "start", "-", "-"),
    ("finishSecret", "aws", "UpdateSecretVersionStage", "before"),
    ("finishSecret", "aws", "UpdateSecretVersionStage", "after"),  # promoted, tags not written yet
    ("finishSecret", "aws", "TagResource", "after"),  # tagged, nothing revoked yet
    ("finishSecret", "jfrog", "DELETE /access/api/v1/tokens/", "after"),  # revoking, orphans not swept
]

#: The Lambda's strategies: it mints with the admin secret (recreate) or with the token itself
#: (self); adopt: a hand-made secret it takes over. It has no refresh.
LAMBDA_STRATEGIES = ("recreate", "self", "adopt")


def lambda_kill_id(point) -> str:
    step, kind, call, when = point
    return f"{step}-{kind}-{call.split(' ')[-1].strip('/').replace('/', '.')}-{when}"


def lambda_sigkill(arn: str, token: str, point) -> None:
    killed = subprocess.run([sys.executable, "-c", LAMBDA_CHILD, arn, token, *point],
                            env=child_env(), capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]


def lambda_config(tmp_path: Path, emulator, moto_url: str, target: str, arn: str) -> Path:
    """A config naming the Lambda's secret as a target, for :func:`check_config` to read it back."""
    path = tmp_path / "lambda-check.yaml"
    path.write_text(
        f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
        f"backends:\n  aws: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto_url}', timeout: 10s}}\n"
        f"targets:\n  - {{name: {target}, backend: aws, path: '{arn}', token: {{username: {USER}}}}}\n")
    return path


def lambda_points(strategy: str) -> list[tuple[str, str, str, str]]:
    """The kill points that exist for a strategy: only a document (the adopted shape) has a pending
    tag written in createSecret; the first rotation of an adopted secret revokes nothing (the
    adopted token is retired until the next one: REVOKE_PREVIOUS after-next)."""
    out = []
    for point in LAMBDA_KILLS:
        step, kind, call, when = point
        if (step, call) == ("createSecret", "TagResource") and strategy != "adopt":
            continue
        if call.startswith("DELETE") and strategy == "adopt":
            continue
        out.append(point)
    return out


def stored(config_path: Path):
    """The first target's record as READ makes it (our record, or a document rebuilt from its
    metadata) and the store's metadata."""
    config = load_config(config_path)
    client, _ = wiring.jfrog_client(config.jfrog)
    try:
        target = config.targets[0]
        backend = config.backends[target.backend]
        current = read_current(target, backend, client)
        return current.record, backend.read_metadata(target.path) or {}
    finally:
        client.close()
        config.close()


def fanout_problems(scene: Scene) -> list[str]:
    """With two outputs, once converged: both hold the primary's token, and none is listed pending."""
    if scene.outputs == 1:
        return []
    config = load_config(scene.config)
    client, _ = wiring.jfrog_client(config.jfrog)
    try:
        target = config.targets[0]
        held = [read_current(target.at(o), config.backends[o.backend], client).record
                for o in (target.primary, *target.outputs)]
    finally:
        client.close()
        config.close()
    primary, *others = held
    problems = [f"{USER}: output {n} holds token {r.token_id if r else None}, the primary {primary.token_id}"
                for n, r in enumerate(others, 1) if r is None or r.token_id != primary.token_id]
    if primary.outputs_pending:
        problems.append(f"{USER}: the primary still lists {len(primary.outputs_pending)} output(s) as pending")
    return problems
