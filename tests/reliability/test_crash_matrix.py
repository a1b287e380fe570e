"""Crash matrix: a rotation is killed at every step, through every door, on every store, for every
strategy, with one output and with two; a rerun (the Lambda: Secrets Manager's retry of the step)
and a sweep converge, and the invariants of docs/architecture.md hold (``check_config``: every
stored token works, every value parses, no live tagged token is neither current nor retired).

Axes (``tests/reliability/crash_scene.py``):

- kill points: before and after each ``RotationStep`` (READ, MINT, VERIFY, STORE, OUTPUTS, RETIRE)
  through the engine's ``step_hook``, and two points inside STORE, whose write is several calls on
  some stores: ``store-value`` (the value written, its metadata not: Vault KV v2, AWS) and
  ``store-bookkeeping`` (a document's retired list written first, the value not: KV v2, AWS, the
  file store's sidecar), and the same two inside the second output's write (``outputs-value`` on
  an AWS output, ``outputs-bookkeeping`` on a file output);
- strategy: ``recreate``, ``refresh``, ``self``, and ``adopt`` (a secret a person made,
  ``{"username", "password"}`` holding a working token, which the killed rotation adopts; the
  adopted token carries no tag, so the case also checks that it is stored, listed as retired, or
  revoked: never lost);
- store of the primary: file, Vault KV v2 (OpenBao), Vault KV v1, AWS Secrets Manager (moto's server);
- door: the CLI (``jfrog-rotator rotate``, then ``sweep``), the daemon (its job for the target,
  then the restarted daemon's job and its sweep), the Lambda (createSecret, setSecret, testSecret,
  finishSecret as Secrets Manager calls them, killed at the start of a step and around its AWS and
  JFrog calls; the killed step is retried, the rest follow, then one more rotation);
- outputs: one, or two (``outputs:``: a second store, AWS ``username-password`` or, for an AWS
  primary, a file ``env``).

Left out, by not being generated:

- OUTPUTS with one output: a one-output target has no OUTPUTS step;
- ``refresh`` with two outputs: the config refuses it (a refresh ends the previous token at once);
- ``store-value`` on the file store and a KV v1 mount: their value and metadata are one write
  (a document on the file store is two writes, sidecar first: that is ``store-bookkeeping``);
  ``store-bookkeeping`` for our record: its bookkeeping is in the value, no write comes first;
  ``outputs-value`` when the adopting rotation creates the AWS output (one ``CreateSecret`` with
  its tags), and the two output points where the second output is not of that store;
- ``adopt`` on KV v1 keeps no shape (no metadata beside a value there): the target says
  ``format: record``, and the adopted secret is replaced by our record;
- the Lambda: only AWS, one output (it refuses a fan-out target's secrets), no ``refresh`` (it mints
  with its admin secret or the token itself), and per strategy only the calls that happen (a
  pending tag is written in createSecret for a document only; the first rotation of an adopted
  secret revokes nothing).

Kills: the cross product of the CLI and daemon doors has 666 combinations; each costs a seed, a
killed run, a rerun, a sweep and the checks, ~1-2 s in a child process on this 2-core machine, so
the real SIGKILL of a child process (the step hook calls ``os.kill(getpid(), SIGKILL)``) is kept
for a representative part and the rest is killed in this process (the hook raises ``Killed``, a
``BaseException`` the product does not catch). Counts: 326 in-process engine cases (239 CLI, 87
daemon; ``ENGINE_CASES`` says which are left to the others and why), 42 SIGKILL engine cases
(``SIGKILL_CASES``) and 2 SIGKILLs while an output is synced; the Lambda: 33 in-process cases (every
kill point x recreate, self, adopt) and 13 SIGKILLs (every kill point of recreate, and the two of
adopt inside finishSecret after promoting). Random instants: ``jfrog-rotator rotate --all`` over 30
targets (file, KV v2, AWS) SIGKILLed after a seeded random delay, 50 rounds, rerun + swept +
checked every 5th round and at the end. The whole suite ran in 5 min 10 s (load ~2-5).

Also: a file target whose format changes from a document (value + sidecar) to our record, killed
between the record's write and the removal of the sidecar it replaces (CLI and daemon).

The fast subset (unmarked, in ``make test``): one seeded case per door and store group, the bugs'
regression cases, a few SIGKILLs, a few random kills, the sidecar case.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

from rotator import aws_lambda
from rotator.cli import run
from rotator.engine import RotationStep
from tests.aws_lambda.conftest import harness, lambda_function  # noqa: F401 - the Lambda's fixtures
from tests.fixtures.lambda_harness import STEPS
from tests.reliability import crash_scene as cs
from tests.reliability.harness import check_config

SUITE = "crash"
SEED = 13

# -- the cases --------------------------------------------------------------------------------
#: In-process kills. The CLI: every store x strategy x outputs x kill point, except ``self`` with two
#: outputs (``self`` differs from ``recreate`` in MINT only, which one output covers). The daemon's
#: job runs the same ``Engine.rotate``; what it adds (due or not, an output behind synced without
#: minting) is covered with ``recreate`` and two outputs, and an adopting rotation with one.
#: Two instants are the same as another's and left to the SIGKILL cases: VERIFY before is MINT after
#: (and a ``Killed`` raised inside VERIFY's ``try`` would make the engine revoke the new token, which
#: a real kill never does); with one output, RETIRE before is STORE after.
SAME_INSTANT = {("verify", "before")}
ENGINE_CASES = [c for c in cs.matrix()
                if ((c.door == "cli" and not (c.strategy == "self" and c.outputs == 2))
                    or (c.door == "daemon" and (c.strategy, c.outputs) in (("recreate", 2), ("adopt", 1))))
                and (c.step, c.when) not in SAME_INSTANT and not (c.outputs == 1 and (c.step, c.when) == ("retire",
                                                                                                      "before"))]
#: Real SIGKILLs (a child process): every kill point of the CLI on file and KV v2 (recreate, one
#: output) and of a two-output target (KV v2 + AWS); an adopting rotation on AWS killed inside and
#: right after STORE; the daemon process (AWS, two outputs) after MINT, STORE and RETIRE and before
#: OUTPUTS.
SIGKILL_CASES = (cs.matrix(doors=("cli",), stores=("file", "vault-kv2"), strategies=("recreate",), outputs=(1,),
                           kill="sigkill")
                 + cs.matrix(doors=("cli",), stores=("vault-kv2",), strategies=("recreate",), outputs=(2,),
                             kill="sigkill")
                 + [c for c in cs.matrix(doors=("cli",), stores=("aws",), strategies=("adopt",), outputs=(1,),
                                         kill="sigkill")
                    if c.step in cs.INSIDE_STORE or (c.step, c.when) == ("store", "after")]
                 + [c for c in cs.matrix(doors=("daemon",), stores=("aws",), strategies=("recreate",), outputs=(2,),
                                         steps=[s.value for s in RotationStep], kill="sigkill")
                    if (c.step, c.when) in (("mint", "after"), ("store", "after"), ("outputs", "before"),
                                            ("retire", "after"))])
LAMBDA_CASES = [(strategy, point) for strategy in cs.LAMBDA_STRATEGIES for point in cs.lambda_points(strategy)]


def fast(cases, count: int, key=lambda c: (c.door, c.store)) -> set[str]:
    """One seeded case per ``key`` group (per door and store), ``count`` groups at most."""
    rng = random.Random(SEED)
    groups: dict = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return {rng.choice(group).id for _, group in sorted(groups.items())[:count]}


#: The regression cases of the bugs this suite found (tests/reliability/bugs/crash.py) run in the fast subset too.
REGRESSIONS = {"cli-vault-kv2-adopt-1out-store-value-mid-raise", "cli-aws-adopt-1out-store-value-mid-raise",
               "cli-file-adopt-1out-store-bookkeeping-mid-raise", "adopt-finishSecret-aws-UpdateSecretVersionStage-after",
               "adopt-finishSecret-aws-TagResource-after"}
FAST_ENGINE = fast(ENGINE_CASES, 8) | REGRESSIONS
FAST_SIGKILL = fast(SIGKILL_CASES, 2, key=lambda c: c.door)
FAST_LAMBDA = {f"{s}-{cs.lambda_kill_id(p)}" for s, p in
               random.Random(SEED).sample(LAMBDA_CASES, 2)} | REGRESSIONS


def marked(cases, fast_ids, ident=lambda c: c.id):
    return [pytest.param(c, id=ident(c), marks=() if ident(c) in fast_ids else pytest.mark.slow) for c in cases]


# -- engine doors -------------------------------------------------------------------------------
@pytest.fixture
def scene(request, tmp_path, emulator, monkeypatch, cli_env):
    def make(case: cs.Case) -> cs.Scene:
        made = cs.Scene(request, tmp_path, emulator, monkeypatch, store=case.store, strategy=case.strategy,
                        outputs=case.outputs)
        monkeypatch.chdir(tmp_path)
        made.seed()
        return made

    return make


def converge(scene: cs.Scene, door: str, emulator, tally) -> None:
    cs.RERUN[door](scene)
    check_config(scene.config, emulator, tally)
    tally.add(checks=2)
    tally.violated(scene.adoption_problems() + cs.fanout_problems(scene))


@pytest.mark.parametrize("case", marked(ENGINE_CASES, FAST_ENGINE))
def test_kill_in_process_at_a_step_then_rerun_and_sweep_converge(case, scene, emulator, monkeypatch, tally):
    made = scene(case)
    if case.door == "cli":
        cs.cli_kill(made, monkeypatch, case.step, case.when)
    else:
        cs.daemon_kill(made, monkeypatch, case.step, case.when)
    tally.add(faults=1, kills=1)
    converge(made, case.door, emulator, tally)


@pytest.mark.parametrize("case", marked(SIGKILL_CASES, FAST_SIGKILL))
def test_sigkill_at_a_step_then_rerun_and_sweep_converge(case, scene, emulator, tally):
    made = scene(case)
    cs.sigkill(made, case.door, case.step, case.when)
    tally.add(faults=1, kills=1, sigkills=1)
    converge(made, case.door, emulator, tally)


@pytest.mark.slow
@pytest.mark.parametrize("when", cs.WHEN)
def test_sigkill_while_syncing_an_output_left_behind_then_a_sweep_alone_converges(when, scene, emulator, tally):
    """The previous run died before the AWS output; the next dies while it syncs it; a sweep alone
    finishes the rotation (it syncs the output before it revokes anything)."""
    made = scene(cs.Case("cli", "vault-kv2", "recreate", 2, "outputs", "before", "sigkill"))
    cs.sigkill(made, "cli", "outputs", "before")  # the primary holds a new token, the AWS output the old one
    cs.sigkill(made, "cli", "outputs", when)  # the next run dies while it syncs the AWS output
    tally.add(faults=2, kills=2, sigkills=2)
    assert run(["sweep", "-c", str(made.config)]) == 0
    check_config(made.config, emulator, tally)
    tally.add(checks=1)
    tally.violated(cs.fanout_problems(made))


# -- the Lambda ---------------------------------------------------------------------------------
def lambda_id(case) -> str:
    strategy, point = case
    return f"{strategy}-{cs.lambda_kill_id(point)}"


def lambda_secret(harness, monkeypatch, strategy):  # noqa: F811 - the fixture imported above
    """The secret the killed rotation works on: a record the Lambda rotated once (a previous token
    listed), or a hand-made ``{"username", "password"}`` secret it adopts. Returns the ARN, the
    target name, the generation before the killed rotation, and the adopted token's id."""
    if strategy == "self":
        monkeypatch.delenv("JFROG_ADMIN_SECRET_ARN")
    if strategy == "adopt":
        token = harness.emulator.create_token(cs.USER, scope="applied-permissions/groups:deployers",
                                              expires_in=14400, force_revocable=True)
        name = harness.name()
        arn = harness.secret_with(json.dumps({"username": cs.USER, "password": token["access_token"]}), name=name)
        from rotator.core.target import target_name_for
        return arn, target_name_for(name), 0, token["token_id"]
    scope = "applied-permissions/user" if strategy == "self" else "applied-permissions/groups:deployers"
    arn, seed = harness.seeded_secret(scope=scope)
    harness.rotate(arn)
    return arn, seed.target, seed.generation + 1, None


def lambda_converged(harness, tmp_path, moto_server, tally, arn, target, generation, adopted):  # noqa: F811
    """Invariants 1-3 on the secret (as a config target), plus what the Lambda promises: the tags
    name the current token and generation, no retired token revoked before its time, and the
    adopted token (untagged: no list finds it) current, retired or revoked."""
    config = cs.lambda_config(tmp_path, harness.emulator, moto_server.url, target, arn)
    check_config(config, harness.emulator, tally)
    record, tags = cs.stored(config)
    problems = []
    if tags.get("token_id") != record.token_id or tags.get("generation") != str(record.generation):
        problems.append(f"{target}: the tags name token {tags.get('token_id')} generation {tags.get('generation')}, "
                        f"the secret holds {record.token_id} generation {record.generation}")
    if tags.get("pending"):
        problems.append(f"{target}: the pending tag is left after the rotation finished")
    if record.generation != generation:
        problems.append(f"{target}: generation {record.generation}, expected {generation}")
    # (the metadata's times are whole seconds, revoke_after rounded up: a token revoked as due now
    # may be listed as due a second later)
    early = [r.token_id for r in record.retired
             if r.revoke_after.timestamp() > time.time() + 5 and not harness.emulator.is_token_active(r.token_id)]
    if early:
        problems.append(f"{target}: revoked before their time: {early}")
    if adopted and harness.emulator.is_token_active(adopted) and adopted not in {r.token_id for r in record.retired}:
        problems.append(f"{target}: the adopted token {adopted} is live, yet neither stored nor retired")
    tally.add(checks=4)
    tally.violated(problems)


def run_lambda_case(harness, monkeypatch, tmp_path, moto_server, tally, case, kill):  # noqa: F811
    strategy, point = case
    monkeypatch.setenv("ORPHAN_GRACE", "0s")
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", harness.emulator.admin_token)
    arn, target, generation, adopted = lambda_secret(harness, monkeypatch, strategy)
    token = harness.begin(arn)
    if kill == "sigkill":
        cs.lambda_sigkill(arn, token, point)
        tally.add(sigkills=1)
    else:
        with pytest.raises(cs.Killed):
            cs.lambda_killed(harness.container, arn, token, point)
        aws_lambda.install(aws_lambda.Container(sleep=harness.sleeps.append))  # the killed one is gone
    tally.add(faults=1, kills=1)
    step = point[0]
    harness.run_steps(arn, token, STEPS[STEPS.index(step):])  # Secrets Manager retries the step, then the rest
    lambda_converged(harness, tmp_path, moto_server, tally, arn, target, generation + 1, adopted)
    harness.rotate(arn)  # and the next rotation finds nothing left behind
    lambda_converged(harness, tmp_path, moto_server, tally, arn, target, generation + 2, adopted)


@pytest.mark.parametrize("case", marked(LAMBDA_CASES, FAST_LAMBDA, ident=lambda_id))
def test_kill_the_lambda_at_a_step_then_the_retry_converges(case, harness, monkeypatch, tmp_path,  # noqa: F811
                                                            moto_server, tally):
    run_lambda_case(harness, monkeypatch, tmp_path, moto_server, tally, case, "raise")


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in LAMBDA_CASES if c[0] == "recreate" or (
    c[0] == "adopt" and c[1][0] == "finishSecret" and c[1][1] == "aws" and c[1][3] == "after")], ids=lambda_id)
def test_sigkill_the_lambda_at_a_step_then_the_retry_converges(case, harness, monkeypatch, tmp_path,  # noqa: F811
                                                              moto_server, tally):
    run_lambda_case(harness, monkeypatch, tmp_path, moto_server, tally, case, "sigkill")


# -- random instants -----------------------------------------------------------------------------
def fleet_config(request, tmp_path, emulator, monkeypatch, count: int = 30):
    """``count`` targets spread over the file store, Vault KV v2 and AWS."""
    kinds = ("file", "vault-kv2", "aws")
    blocks = cs.backend_blocks(request, kinds)  # the session's servers first: they keep their own env
    cs.environment(request, monkeypatch, emulator, kinds)
    emulator.create_user(cs.USER)
    run_id = uuid.uuid4().hex[:8]
    targets = "".join(f"  - {{name: t{i}, backend: {cs.BACKEND_NAMES[kinds[i % 3]]}, path: crash/{run_id}/t{i}, "
                      f"overlap: 0s, orphan_grace: 0s, token: {{username: {cs.USER}, expiry: 7d}}}}\n"
                      for i in range(count))
    path = tmp_path / "fleet.yaml"
    path.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                    "backends:\n" + "".join(f"  {n}: {b}\n" for n, b in blocks.items()) + "targets:\n" + targets)
    return path


def random_kills(config, emulator, tally, rounds: int, check_every: int, rng: random.Random) -> None:
    """Each round SIGKILLs ``jfrog-rotator rotate --all`` after a random delay (0 to a whole run's
    time, measured first); every ``check_every`` rounds, a rerun and a sweep, then the invariants."""
    assert run(["rotate", "-c", str(config), "--all"]) == 0  # first tokens
    command = [sys.executable, "-m", "rotator", "rotate", "-c", str(config), "--all"]
    started = time.monotonic()
    whole = subprocess.run(command, env=cs.child_env(), cwd=config.parent, capture_output=True, timeout=120)
    assert whole.returncode == 0, whole.stderr.decode()[-2000:]
    span = time.monotonic() - started
    kills = 0
    for number in range(1, rounds + 1):
        proc = subprocess.Popen(command, env=cs.child_env(), cwd=config.parent, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(rng.uniform(0, span))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            proc.wait(timeout=60)
        if number % check_every == 0 or number == rounds:
            assert run(["rotate", "-c", str(config), "--all"]) == 0
            assert run(["sweep", "-c", str(config)]) == 0
            check_config(config, emulator, tally)
    tally.add(faults=kills, kills=kills, sigkills=kills, rounds=rounds)
    assert kills > 0, "no run was killed: the delays were all longer than a run"


def test_random_sigkills_of_rotate_all_then_rerun_and_sweep_converge_fast(request, tmp_path, emulator, monkeypatch,
                                                                          cli_env, tally):
    config = fleet_config(request, tmp_path, emulator, monkeypatch, count=9)
    monkeypatch.chdir(tmp_path)
    random_kills(config, emulator, tally, rounds=3, check_every=3, rng=random.Random(SEED))


@pytest.mark.slow
def test_random_sigkills_of_rotate_all_then_rerun_and_sweep_converge(request, tmp_path, emulator, monkeypatch,
                                                                     cli_env, tally):
    config = fleet_config(request, tmp_path, emulator, monkeypatch, count=30)
    monkeypatch.chdir(tmp_path)
    random_kills(config, emulator, tally, rounds=50, check_every=5, rng=random.Random(SEED))


# -- a partial write the file store must read past ----------------------------------------------
@pytest.mark.parametrize("door", ["cli", "daemon"])
def test_kill_between_a_record_and_the_removal_of_the_sidecar_it_replaces(door, request, tmp_path, emulator,
                                                                         monkeypatch, cli_env, tally):
    """A file target whose format changes from a document (value + sidecar) to our record: STORE
    writes the record, then removes the sidecar. Killed between the two, the next run must read the
    record's own bookkeeping, not the sidecar left behind, and converge in one run."""
    made = cs.Scene(request, tmp_path, emulator, monkeypatch, store="file", strategy="recreate", outputs=1)
    monkeypatch.chdir(tmp_path)
    text = made.config.read_text()
    made.config.write_text(text.replace("    overlap: 0s\n", "    overlap: 0s\n    format: env\n"))
    made.seed()  # a document and its sidecar
    made.config.write_text(text.replace("    overlap: 0s\n", "    overlap: 0s\n    format: record\n"))
    import backends.file as file_store
    real_unlink = file_store.os.unlink
    armed = []

    def hook(s, w, rotation_id):
        if s is RotationStep.STORE:
            armed[:] = [w == "before"]

    def unlink(path, *args, **kwargs):
        if armed and armed[0] and str(path).endswith(".meta"):
            raise cs.Killed("between the record and the sidecar's removal")
        return real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(file_store.os, "unlink", unlink)
        if door == "cli":
            real = cs.wiring.build_engine
            m.setattr(cs.wiring, "build_engine", lambda config, **kw: real(config, **{"step_hook": hook, **kw}))
            with pytest.raises(cs.Killed):
                run(["rotate", "-c", str(made.config), "--all"])
        else:
            from rotator.daemon import RotationDaemon
            daemon = RotationDaemon(str(made.config), step_hook=hook, listen="127.0.0.1:0")
            try:
                with pytest.raises(cs.Killed):
                    daemon._run_target(cs.USER, "schedule")
            finally:
                cs.close_daemon(daemon)
    assert list((tmp_path / "secrets").rglob("*.meta")), "the kill left the sidecar behind"
    tally.add(faults=1, kills=1)
    converge(made, door, emulator, tally)
    assert not list((tmp_path / "secrets").rglob("*.meta")), "the sidecar left behind was not removed"
