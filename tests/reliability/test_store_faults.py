"""Faults at every store call (docs/reliability.md): each store (OpenBao KV v2 and v1, moto's AWS
Secrets Manager) sits behind a loopback proxy (tests/fixtures/tcp_proxy.py); the calls of one clean
rotation are counted, then each of them in turn is dropped (FIN, no answer), stalled past the
client's timeout, reset (RST) or answered 503 by the proxy, before it reaches the server or after
it landed there. Through the CLI ``rotate``, the daemon's job (with a leader lease, so the job
claims the target in its store first) and the rotation Lambda's four steps. Then, on a dedicated
OpenBao server of this suite: paused (SIGSTOP) and resumed mid-rotation, sealed and unsealed, the
daemon's Vault token revoked under it. And the bugs found: a document's metadata write failing
after its value landed, claims kept by a failed rotation, a 503 hiding an applied Vault write.

After each fault: the stored token still works (invariants 1-2), a failure names the store call,
the rotation goes through once the fault is gone, a sweep leaves no orphan (invariant 3), no
secret shows in any output (invariant 4), and the faulted run took no longer than the configured
timeouts allow (:meth:`Rig.bound`). The unmarked subset is a seeded sample of the same cases plus
the regressions.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from datetime import datetime, timezone

import pytest

from rotator.cli import run
from rotator.config import load_config
from rotator.config.wiring import build_engine
from rotator.daemon import target_job
from rotator.engine import RotationStep
from tests.aws_lambda.conftest import harness, lambda_function  # noqa: F401 - fixtures reused
from tests.fixtures.daemon import wait_until
from tests.fixtures.lambda_harness import STEPS
from tests.fixtures.moto_server import aws_env
from tests.fixtures.tcp_proxy import Request, TcpProxy
from tests.reliability.harness import check_config
from tests.reliability.store_faults_rig import (
    FAULTS,
    STORES,
    TOKEN_ENV,
    DedicatedOpenBao,
    Rig,
    write_config,
)

SUITE = "store-faults"
SEED = 13  # the fast subset's sample (printed, so a failure can be replayed)

#: What a failure must name: the store call (Vault: the operation and the mount path; AWS: the API call).
CALL_WORDS = {"vault-kv2": ("read", "write", "metadata", "claim", "cannot reach", "check-and-set"),
              "vault-kv1": ("read", "write", "cannot reach"),
              "aws": ("GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage", "DescribeSecret",
                      "TagResource", "CreateSecret")}


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bao():
    """This suite's own OpenBao (never the session's shared one: it is paused, sealed, revoked)."""
    server = DedicatedOpenBao().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store_env(monkeypatch, emulator, cli_env, tmp_path, bao):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.setenv(TOKEN_ENV, bao.root_token)
    monkeypatch.setenv("VAULT_TOKEN", bao.root_token)  # check_config reads the stores as the CLI does
    monkeypatch.chdir(tmp_path)
    emulator.create_user("ci")
    return emulator


@pytest.fixture
def make_rig(request, store_env, tmp_path, bao, capsys, monkeypatch):
    """``make_rig(kind, daemon=False)``: a target on ``kind`` through a fresh proxy, with a first token."""
    proxies: list[TcpProxy] = []
    rigs: list[Rig] = []

    def make(kind: str, *, daemon: bool = False, **options) -> Rig:
        if kind == "aws":
            moto = request.getfixturevalue("moto_server")
            aws_env(monkeypatch)
            upstream, direct = int(moto.url.rsplit(":", 1)[1]), moto.url
        else:
            upstream, direct = bao.port, bao.addr
        proxy = TcpProxy("127.0.0.1", upstream).start()
        proxies.append(proxy)
        config, path = write_config(tmp_path, kind, proxy.url, store_env.url, daemon=daemon, **options)
        plain = {k: v for k, v in options.items() if k != "auth"}  # the truth reads with the root token
        truth, _ = write_config(tmp_path, kind, direct, store_env.url, path=path, name="-truth", **plain)
        rig = Rig(kind, proxy, config, path, capsys, truth)
        rigs.append(rig)
        code, text = rig.rotate()
        assert code == 0 and "rotated" in text, text
        return rig

    yield make
    for rig in rigs:
        rig.close()
    for proxy in proxies:
        proxy.clear_faults()
        proxy.refuse.clear()
        proxy.stop()


# -- what every case checks -------------------------------------------------------------------------
def names_the_call(rig: Rig, text: str) -> bool:
    return "store" in text and any(word in text for word in CALL_WORDS[rig.kind])


def fault_then_converge(rig: Rig, emulator, tally, ledger, *, nth: int, kind: str, land: bool,
                        calls: list[Request], rotate=None) -> str:
    """One case: fault the ``nth`` store call of a rotation (and its retries), check, clear, converge."""
    rotate = rotate or rig.rotate
    count = rig.attempts  # the call and botocore's retry of it: the call fails as a whole
    start_at = len(rig.proxy.requests)
    rig.proxy.fault(kind, nth=nth, count=count, land=land, **_about(rig))
    start = time.monotonic()
    code, text = rotate()
    took = time.monotonic() - start
    fired = rig.proxy.clear_faults()
    tally.add(faults=fired)
    if not fired:  # this run made fewer calls than the one counted (no status read to repeat, say)
        assert code == 0 and len(rig.proxy.requests) - start_at < len(calls) + 4, text
        tally.add(unreached=1)
    check_config(rig.truth_config, emulator, tally, swept=False)
    tally.add(**{"failed_runs" if code else "absorbed_runs": 1})
    print(file=sys.__stderr__, *[f"{rig.kind} call {nth} {calls[nth - 1]} {kind} landed={land}: exit {code}: "
          f"{' | '.join(line for line in text.splitlines() if 'store' in line)[:300]}"])
    if code != 0:
        assert names_the_call(rig, text), f"call {nth} ({calls[nth - 1]}, {kind}, landed={land}): {text}"
    assert took <= rig.bound(len(calls)), f"call {nth} ({kind}): {took:.1f}s > {rig.bound(len(calls))}s"
    code2, text2 = rotate()
    assert code2 == 0 and "rotated" in text2, f"after call {nth} ({calls[nth - 1]}, {kind}, landed={land}): {text2}"
    code3, text3 = rig.sweep()
    assert code3 == 0, text3
    check_config(rig.truth_config, emulator, tally, swept=True)
    ledger.emulator(emulator)
    for out in rig.outputs:
        ledger.text("cli output", out)
    rig.outputs.clear()
    return text


def _about(rig: Rig) -> dict:
    """The fault aims at this target's calls only (the lease's renewals, a probe, do not count)."""
    return {"about": rig.path}


def sample() -> list[tuple[str, int, str, bool]]:
    """The fast subset: per store, two (call, fault, landed) picks, seeded."""
    rng = random.Random(SEED)
    picks = []
    for kind in STORES:
        for _ in range(2):
            picks.append((kind, rng.randint(1, 4), rng.choice(("drop", "reset", "503")), rng.choice((False, True))))
    return picks


# -- the CLI: each call of a rotation -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("land", [False, True], ids=["lost", "landed"])
@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("store", STORES)
def test_a_fault_at_each_store_call_of_a_rotation(make_rig, store, kind, land, store_env, tally, ledger, bao):
    rig = make_rig(store)
    calls = rig.clean_calls()
    assert calls, "a rotation makes store calls"
    tally.add(cases=len(calls) - 1, store_calls=len(calls))
    for nth in range(1, len(calls) + 1):
        fault_then_converge(rig, store_env, tally, ledger, nth=nth, kind=kind, land=land, calls=calls)
    ledger.secret(bao.root_token)
    ledger.check(tally)


def test_a_seeded_sample_of_store_faults(make_rig, store_env, tally, ledger, bao):
    print(f"store-faults sample, seed {SEED}: {sample()}")
    rigs: dict[str, tuple[Rig, list[Request]]] = {}
    for store, nth, kind, land in sample():
        if store not in rigs:
            rig = make_rig(store)
            rigs[store] = (rig, rig.clean_calls())
        rig, calls = rigs[store]
        fault_then_converge(rig, store_env, tally, ledger, nth=min(nth, len(calls)), kind=kind, land=land,
                            calls=calls)
    tally.add(cases=len(sample()) - 1)
    ledger.secret(bao.root_token)
    ledger.check(tally)


# -- the bookkeeping of a document lives in the metadata: its write fails after the value landed ------
METADATA_WRITE = {"vault-kv2": {"method": "PATCH", "path": "/v1/secret/metadata/"}, "aws": {"op": "TagResource"}}


@pytest.mark.parametrize("store", sorted(METADATA_WRITE))
def test_a_document_whose_metadata_write_failed_keeps_its_previous_token_listed(make_rig, store, store_env, tally,
                                                                              ledger, bao):
    """format: token keeps the retired list in the metadata only (docs/architecture.md, "The retired
    list in metadata"): when the rotation's metadata write fails after the value landed, the
    previous token must stay known (retired, revoked after its overlap), never swept as an orphan."""
    rig = make_rig(store, fmt="token", overlap="1h")
    previous = rig.stored_token_id()
    # The retired list goes into the metadata before the value (a kill between them must not lose
    # it, the crash suite's bug), then the rest of the bookkeeping after: the second write is the one
    # that fails after the value landed.
    rig.proxy.fault("drop", nth=2, count=rig.attempts, **METADATA_WRITE[store])
    code, text = rig.rotate()
    tally.add(faults=rig.proxy.clear_faults())
    assert code == 0 and "rotated" in text, text
    current = rig.stored_token_id()
    assert current != previous
    check_config(rig.truth_config, store_env, tally, swept=False)
    code, text = rig.sweep()
    assert code == 0, text
    assert store_env.is_token_active(previous), "the previous token was revoked before its overlap ended"
    check_config(rig.truth_config, store_env, tally, swept=True)  # and it is still listed: not an orphan
    code, text = rig.rotate()  # the next rotation writes the whole bookkeeping again
    assert code == 0 and "rotated" in text, text
    assert rig.sweep()[0] == 0 and store_env.is_token_active(previous)
    check_config(rig.truth_config, store_env, tally, swept=True)
    for out in rig.outputs:
        ledger.text("cli output", out)
    ledger.emulator(store_env)
    ledger.secret(bao.root_token)
    ledger.check(tally)


# -- the daemon's job: status read, the claim (daemon.leader), the rotation --------------------------
def daemon_runner(daemon, rig: Rig, bound: float):
    """A ``rotate`` for :func:`fault_then_converge`: one run of the target's job, as an operator's
    wake-up would start it (any reason but the schedule's rotates), waited for by its count. A run
    that neither failed anew (``failures`` grew) nor rotated was not ours (a retry the back-off
    scheduled, found not due; or the scheduler dropped ours while the last run returned): ask again."""
    def rotate() -> tuple[int, str]:
        state = daemon.targets.setdefault("ci", target_job.TargetState())
        deadline = time.monotonic() + bound
        while True:
            assert time.monotonic() < deadline, "the job did not run"
            if state.retry_at is not None:  # the back-off of the last failure (RETRY_BASE is short here)
                wait_until(lambda: datetime.now(timezone.utc) >= state.retry_at, 5, 0.02, "the retry back-off")
            before, runs, failures = rig.stored_token_id_or_none(), daemon.runs_done("ci"), state.failures
            assert daemon.run_now("ci", "store-faults")
            try:
                wait_until(lambda: daemon.runs_done("ci") > runs, 2, 0.02, "the job's run")
            except AssertionError:
                continue
            if state.failures > failures:
                return 1, state.last_error or ""
            if state.failures == 0 and state.last_error is None and rig.stored_token_id_or_none() != before:
                return 0, "rotated"
    return rotate


@pytest.mark.slow
@pytest.mark.parametrize(("store", "kind"), [("vault-kv2", "drop"), ("vault-kv2", "stall"), ("vault-kv1", "drop"),
                                             ("aws", "drop")])  # AWS stalls and resets: in the CLI cases
def test_a_fault_at_each_store_call_of_the_daemon_job(make_rig, store, kind, store_env, tally, ledger, bao,
                                                      start_daemon, monkeypatch):
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.05)
    rig = make_rig(store, daemon=True)
    daemon = start_daemon(rig.config)
    wait_until(lambda: daemon.leading, 10, what="the daemon leads")
    rotate = daemon_runner(daemon, rig, 60)
    start = len(rig.proxy.requests)
    assert rotate() == (0, "rotated")
    calls = [r for r in rig.proxy.requests[start:] if rig.mine(r)]
    tally.add(cases=len(calls) - 1, store_calls=len(calls))
    for nth in range(1, len(calls) + 1):
        fault_then_converge(rig, store_env, tally, ledger, nth=nth, kind=kind, land=kind != "drop", calls=calls,
                            rotate=rotate)
    ledger.secret(bao.root_token)
    ledger.check(tally)


# -- a failed rotation gives its claim back ------------------------------------------------------------
CLAIMED_THEN_FAILS = {"vault-kv2": {"method": "POST", "path": "/v1/secret/data/jfrog/"},
                      "aws": {"op": "UpdateSecretVersionStage"}}


@pytest.mark.parametrize("store", sorted(CLAIMED_THEN_FAILS))
def test_a_target_whose_rotations_keep_failing_after_the_claim_rotates_once_the_store_is_back(
        make_rig, store, store_env, tally, ledger, bao, start_daemon, monkeypatch):
    """Each job run claims the target from the same version (nothing changed it), then fails at the
    store's compare-and-set; ten of them in a row must not use up the claims of that version."""
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.001)
    rig = make_rig(store, daemon=True)
    daemon = start_daemon(rig.config)
    wait_until(lambda: daemon.leading, 10, what="the daemon leads")
    rotate = daemon_runner(daemon, rig, 60)
    before = rig.stored_token_id()
    rig.proxy.fault("drop", count=1000, **CLAIMED_THEN_FAILS[store], **_about(rig))
    for _ in range(10):
        code, text = rotate()
        assert code == 1 and "store:" in text and "claim" not in text, text
    tally.add(faults=rig.proxy.clear_faults())
    assert rig.stored_token_id() == before
    check_config(rig.truth_config, store_env, tally, swept=False)
    code, text = rotate()
    assert code == 0, text
    assert rig.sweep()[0] == 0
    check_config(rig.truth_config, store_env, tally, swept=True)


@pytest.mark.parametrize("store", sorted(CLAIMED_THEN_FAILS))
def test_another_replica_rotates_at_once_after_a_rotation_that_failed_under_its_claim(
        make_rig, store, store_env, tally, ledger, bao, start_daemon, monkeypatch):
    """The leader claims the target, its rotation fails at the store, then it stops: the next
    leader must find the claim given back, not wait for the claim's TTL (30 s here)."""
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.001)
    rig = make_rig(store, daemon=True)
    first = start_daemon(rig.config)
    wait_until(lambda: first.leading, 10, what="the first daemon leads")
    rig.proxy.fault("drop", count=1000, **CLAIMED_THEN_FAILS[store], **_about(rig))
    code, text = daemon_runner(first, rig, 60)()
    assert code == 1 and "store:" in text, text
    tally.add(faults=rig.proxy.clear_faults())
    first.stop()
    second = start_daemon(rig.config)
    wait_until(lambda: second.leading, 10, what="the second daemon leads")
    start = time.monotonic()
    code, text = daemon_runner(second, rig, 60)()
    assert code == 0, text
    assert time.monotonic() - start < 10
    assert rig.sweep()[0] == 0
    check_config(rig.truth_config, store_env, tally, swept=True)



# -- OpenBao itself: paused, sealed, the daemon's token revoked (this suite's own server) ----------------
@pytest.fixture
def resume(bao):
    """SIGCONT to our OpenBao's PID after the test, whatever happened (it is never left stopped)."""
    yield
    os.kill(bao.pid, signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.parametrize("step", [RotationStep.READ, RotationStep.STORE, RotationStep.RETIRE], ids=lambda s: s.value)
def test_openbao_paused_mid_rotation_then_resumed(make_rig, step, store_env, tally, ledger, bao, resume):
    """SIGSTOP of OpenBao's PID right before a step, SIGCONT 2.5 s later (past the 1 s timeout and a
    re-read): the run fails naming the call or, after STORE, stands; the next one converges."""
    rig = make_rig("vault-kv2")
    calls = rig.clean_calls()
    resumed = threading.Event()

    def hook(at, when, rotation_id):
        if at is step and when == "before" and not resumed.is_set():
            os.kill(bao.pid, signal.SIGSTOP)
            tally.add(faults=1, pauses=1)
            threading.Timer(2.5, lambda: (os.kill(bao.pid, signal.SIGCONT), resumed.set())).start()

    config = load_config(rig.config)
    minted = store_env.mint_count
    start = time.monotonic()
    try:
        result = build_engine(config, step_hook=hook).rotate(config.targets[0])
    finally:
        config.close()
    took = time.monotonic() - start
    assert resumed.wait(10)
    check_config(rig.truth_config, store_env, tally, swept=False)
    if step is RotationStep.READ:
        assert result.outcome == "failed" and result.step == "read" and store_env.mint_count == minted
    if result.outcome == "failed":
        assert "store" in result.error and "cannot reach" in result.error, result.error
    assert took <= rig.bound(len(calls)) + 2.5, took
    code, text = rig.rotate()
    assert code == 0 and "rotated" in text, text
    assert rig.sweep()[0] == 0
    check_config(rig.truth_config, store_env, tally, swept=True)
    for out in rig.outputs:
        ledger.text("cli output", out)
    ledger.text("rotation error", result.error)
    ledger.emulator(store_env)
    ledger.secret(bao.root_token)
    ledger.check(tally)


@pytest.fixture
def unseal(bao):
    yield
    if bao.api("GET", "sys/seal-status").get("sealed"):
        bao.unseal()


def test_openbao_sealed_then_unsealed(make_rig, store_env, tally, ledger, bao, unseal, start_daemon, monkeypatch):
    """A sealed Vault answers 503: the CLI and the daemon's job fail at READ naming the store and the
    call, nothing minted, the stored token untouched; after the unseal both rotate."""
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.05)
    rig = make_rig("vault-kv2", daemon=True)
    daemon = start_daemon(rig.config)
    wait_until(lambda: daemon.leading, 10, what="the daemon leads")
    rotate = daemon_runner(daemon, rig, 30)
    assert rotate() == (0, "rotated")
    before, minted = rig.stored_token_id(), store_env.mint_count
    bao.seal()
    tally.add(faults=1, seals=1)
    code, text = rig.rotate()
    assert code == 1 and "store:" in text and "read" in text and "sealed" in text.lower(), text
    code, error = rotate()
    assert code == 1 and "store:" in error and "sealed" in error.lower(), error
    assert store_env.mint_count == minted
    bao.unseal()
    assert rig.stored_token_id() == before
    check_config(rig.truth_config, store_env, tally, swept=False)
    assert rotate() == (0, "rotated")
    code, text = rig.rotate()
    assert code == 0 and "rotated" in text, text
    assert rig.sweep()[0] == 0
    check_config(rig.truth_config, store_env, tally, swept=True)
    for out in [*rig.outputs, error]:
        ledger.text("output", out)
    ledger.emulator(store_env)
    ledger.secret(bao.root_token)
    ledger.check(tally)


POLICY = """
path "secret/data/jfrog/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/jfrog/*" { capabilities = ["read", "update", "patch"] }
path "secret/data/jfrog-rotator-claims/*" { capabilities = ["create", "update", "read"] }
"""


@pytest.mark.parametrize("method", ["approle", "token"])
def test_the_daemons_vault_token_revoked_under_it(make_rig, method, store_env, tally, ledger, bao, start_daemon,
                                                 monkeypatch, tmp_path):
    """AppRole logs in again by itself and the job rotates; a fixed token (``token_file``) fails
    naming the call and saying permission denied, and recovers once the file holds a working token
    and the daemon reloads."""
    monkeypatch.setattr(target_job, "RETRY_BASE", 0.05)
    bao.write_policy("store-faults", POLICY)
    if method == "approle":
        role_id, secret_id = bao.make_approle("store-faults", ["store-faults"])
        monkeypatch.setenv("STORE_FAULTS_SECRET_ID", secret_id)
        auth = f"{{method: approle, role_id: {role_id}, secret_id_env: STORE_FAULTS_SECRET_ID}}"
        ledger.secret(secret_id)
    else:
        token_file = tmp_path / "vault-token"
        token_file.write_text(bao.create_token(["store-faults"]))
        auth = f"{{method: token, token_file: '{token_file}'}}"
    rig = make_rig("vault-kv2", daemon=True, auth=auth)
    daemon = start_daemon(rig.config)
    wait_until(lambda: daemon.leading, 10, what="the daemon leads")
    rotate = daemon_runner(daemon, rig, 30)
    assert rotate() == (0, "rotated")
    backend = daemon.config.backends["store"]
    revoked = backend.transport.client.token
    ledger.secret(revoked)
    bao.revoke_token(revoked)
    tally.add(faults=1, revoked_tokens=1)
    before, minted = rig.stored_token_id(), store_env.mint_count
    code, error = rotate()
    if method == "approle":
        assert code == 0, error  # logged in again and retried
        assert daemon.config.backends["store"].transport.client.token != revoked
    else:
        assert code == 1 and "store:" in error and "permission denied" in error, error
        assert store_env.mint_count == minted and rig.stored_token_id() == before
        check_config(rig.truth_config, store_env, tally, swept=False)
        fresh = bao.create_token(["store-faults"])
        ledger.secret(fresh)
        token_file.write_text(fresh)
        assert daemon.reload()
        for _ in range(3):  # a retry the back-off scheduled may have started on the old token before the reload
            code, text = rotate()
            if code == 0:
                break
        assert code == 0, text
    assert rig.sweep()[0] == 0
    check_config(rig.truth_config, store_env, tally, swept=True)
    for out in [*rig.outputs, error]:
        ledger.text("output", out)
    ledger.emulator(store_env)
    ledger.secret(bao.root_token)
    ledger.check(tally)


# -- the rotation Lambda: each Secrets Manager call of its four steps ------------------------------------
LAMBDA_ATTEMPTS = 3  # rotator/aws_lambda/container.py: botocore's total attempts
LAMBDA_TIMEOUT = 20  # and its read timeout (s)


def lambda_config(tmp_path, emulator, moto_url: str, arn: str, target: str):
    """A rotator.yaml naming the Lambda's secret, for :func:`check_config` and ``sweep``."""
    path = tmp_path / f"lambda-{target}.yaml"
    path.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                    f"backends: {{store: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto_url}'}}}}\n"
                    f'targets:\n  - {{name: {target}, backend: store, path: "{arn}", overlap: 0s, orphan_grace: 0s, '
                    f"token: {{username: ci, expiry: 4h}}}}\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["drop", "reset"])
def test_a_fault_at_each_store_call_of_the_lambda(harness, kind, moto_server, tmp_path, tally, ledger,  # noqa: F811
                                                  monkeypatch, cli_env, capsys):
    """Each Secrets Manager call of createSecret..finishSecret fails (all its attempts): the step
    fails naming the call; Secrets Manager runs the failed step again (here: the test does) and the
    rotation completes; the current token works and a sweep leaves no orphan."""
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", harness.emulator.admin_token)
    proxy = TcpProxy("127.0.0.1", int(moto_server.url.rsplit(":", 1)[1])).start()
    try:
        monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", proxy.url)
        arn, record = harness.seeded_secret()
        config = lambda_config(tmp_path, harness.emulator, moto_server.url, arn, record.target)
        truth = load_config(config)  # loaded once for the checks
        start = len(proxy.requests)
        harness.rotate(arn)
        calls = [r for r in proxy.requests[start:] if r.secret_id == arn]
        tally.add(cases=len(calls) - 1, store_calls=len(calls))
        for nth in range(1, len(calls) + 1):
            token = harness.begin(arn)
            start = len(proxy.requests)
            proxy.fault(kind, nth=nth, count=LAMBDA_ATTEMPTS, secret_id=arn)
            began, failed = time.monotonic(), None
            for i, step in enumerate(STEPS):
                try:
                    harness.step(arn, token, step)
                except Exception as exc:  # noqa: BLE001 - the step's failure is what is checked
                    failed = (i, step, str(exc))
                    break
            took = time.monotonic() - began
            fired = proxy.clear_faults()
            tally.add(faults=fired, **{"failed_runs" if failed else "absorbed_runs": 1})
            if not fired:  # this rotation made fewer calls than the first one (nothing to retire, say)
                assert failed is None and len(proxy.requests) - start < len(calls) + 4
                tally.add(unreached=1)
            assert took <= (len(calls) + 2) * LAMBDA_ATTEMPTS * LAMBDA_TIMEOUT + 3
            check_config(truth, harness.emulator, tally, swept=False)
            if failed:
                i, step, error = failed
                assert any(word in error for word in CALL_WORDS["aws"]), f"call {nth} ({calls[nth - 1]}): {error}"
                ledger.text("lambda error", error)
                for again in STEPS[i:]:  # Secrets Manager's retry of the failed step, then the rest
                    harness.step(arn, token, again)
            assert harness.holder(arn, "AWSCURRENT") == token and harness.holder(arn, "AWSPENDING") is None
            capsys.readouterr()
            assert run(["sweep", "-c", str(config)]) == 0, capsys.readouterr().err
            ledger.text("sweep", "".join(capsys.readouterr()))
            check_config(truth, harness.emulator, tally, swept=True)
        truth.close()
    finally:
        proxy.stop()
    ledger.emulator(harness.emulator)
    ledger.check(tally)
