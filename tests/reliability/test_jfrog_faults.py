"""Faults at every JFrog call (issue 13, the JFrog half of "Faults at every remote call").

Every call the product makes to JFrog (``POST /access/api/v1/tokens`` to create and to refresh,
``GET /tokens/me`` to verify, ``GET /tokens?description=`` to list for the sweep, ``DELETE
/tokens/{id}`` to revoke; rotator/jfrog/client.py) meets every fault the emulator injects
(tests/reliability/jfrog_faults_cases.py: 500, 503, 429 with ``Retry-After``, a reset connection,
an answer stalled past ``jfrog.timeout``, a malformed 200, a 200 without a token, a 200 with a
token that does not work, an answer lost or garbled after JFrog acted), for each strategy whose
rotation makes that call, through the CLI's ``rotate`` and ``sweep``, the daemon's job and sweep,
and the Lambda's steps. While the fault lasts the stored token is untouched (invariants 1-2), the
error names the call (exit code 1, no traceback), and the run ends within the bound the
configured timeouts and retries give; once it clears, the rotation completes and a sweep leaves
no orphan (invariant 3); no secret shows anywhere (invariant 4).

A refresh that JFrog acted on but whose answer the rotator never read (lost, garbled, or a token
that fails VERIFY) kills the stored token: refresh tokens are single-use and the old access token
dies at once (https://jfrog.com/help/r/jfrog-rest-apis/refresh-token). The product now asks JFrog
(``GET /tokens/me`` with the stored token) after such a refresh; when the stored token is dead it
recreates it in the same run if ``fallback_to_recreate`` and an admin credential allow, else it
fails saying the stored token no longer works. One case cannot be fixed in the product: a refresh
whose answer is only *slow* (stalled past the timeout, then served). When the rotator gives up,
JFrog has not acted yet, so the stored token still works when it is checked, and it dies when
JFrog finally serves the request, after the run. No client can know whether a request it gave up
on will still be served. There the stored token stays dead until the next run, which finds the
refresh token consumed (401/404) and falls back to recreate; the operator sees the failed run
(``refresh failed (POST /access/api/v1/tokens): ... timed out after 1s``; in the daemon also
``jfrog_rotator_rotations_total{result="failed"}``, and its retry's error ends ``the stored token <id>
no longer works``). The ``refresh-refresh-stall`` cases of the CLI and the daemon check exactly
that, and count it as ``dead_after_slow_refresh``.

The fast, seeded subset runs in ``make test``; ``-m slow`` adds the rest of the matrix.
"""

from __future__ import annotations

import random
import time

import pytest

from rotator.aws_lambda.container import _JFROG_RETRY as LAMBDA_RETRY
from rotator.aws_lambda.errors import RotationFailed
from rotator.cli import run
from rotator.core.record import SecretRecord
from tests.fixtures.daemon import wait_until
from tests.fixtures.lambda_harness import STEPS
from tests.minting.conftest import make_oidc  # noqa: F401 - the minting suite's fixture
from tests.reliability.harness import check_config
from tests.reliability.jfrog_faults_cases import CALLS, FAULTS, TIMEOUT, TOKENS, bound, settled, write_config
from tests.reliability.jfrog_faults_lambda import (  # noqa: F401 - fixtures
    harness,
    lambda_faults,
    lambda_function,
    lambda_invariants,
)

SUITE = "jfrog-faults"
SEED = 13


# -- the matrix ----------------------------------------------------------------------------------
def _rotate_cases() -> list[tuple[str, str, str]]:
    """(call, strategy, fault) for ``rotate``. Revocation, like the sweep's list, uses the admin
    credential whatever the strategy, and VERIFY is one code path for recreate and self: those run
    with one strategy (refresh's VERIFY has a path of its own, the dead-token check)."""
    cases = []
    for name, strategies in (("create", ("recreate", "self")), ("refresh", ("refresh",)),
                             ("me", ("recreate", "refresh")), ("revoke", ("recreate",))):
        for strategy in strategies:
            cases += [(name, strategy, fault) for fault in CALLS[name].faults
                      if not (fault == "500" and (name, strategy) in THREE_STATUSES_ELSEWHERE)]
    return cases


#: 500, 503 and 429 take the same path in the client; these pairs take 503 and 429 only (time).
THREE_STATUSES_ELSEWHERE = {("create", "self"), ("me", "recreate"), ("me", "refresh")}


def _sweep_cases() -> list[tuple[str, str]]:
    return [(name, fault) for name in ("list", "revoke") for fault in CALLS[name].faults]


SLOW_FAULTS = {"500", "503", "429", "fake-jwt", "revoked"}  # the client's back-off or VERIFY's: about 3 s each


def _params(cases: list[tuple], *, fast: int) -> list:
    """Every case; a seeded sample of ``fast`` cheap ones stays unmarked (``make test``)."""
    cheap = [c for c in cases if c[-1] not in SLOW_FAULTS and not (c[0] == "me" and c[-1] in ("stall", "reset"))]
    chosen = set(random.Random(SEED).sample(cheap, fast))
    return [pytest.param(*c, id="-".join(c), marks=() if c in chosen else pytest.mark.slow) for c in cases]


# -- helpers -------------------------------------------------------------------------------------
@pytest.fixture
def fleet(tmp_path, emulator, monkeypatch, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.chdir(tmp_path)
    emulator.create_user("ci")
    return tmp_path


def stored(tmp_path) -> SecretRecord:
    return SecretRecord.loads((tmp_path / "secrets" / "ci.json").read_text())


def cli(argv, capsys, ledger) -> tuple[int, str, float]:
    """Run the CLI; its exit code, everything it wrote (stdout, stderr, log lines) and its wall time."""
    capsys.readouterr()
    started = time.monotonic()
    code = run(argv)
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    ledger.text("stdout", out)
    ledger.text("stderr", err)
    return code, f"{out}\n{err}\n{product_logs(ledger)}", elapsed


def product_logs(ledger) -> str:
    """The log lines of the product (the emulator's own debug lines, a broken pipe's traceback
    among them, are the test's, not the product's)."""
    return "\n".join(text for where, text in ledger.texts
                     if where.startswith("log ") and not where.startswith("log rotator.emulator"))


def loose(text: str) -> str:
    return " ".join(text.split())


def expectation(call: str, strategy: str, fault: str) -> str:
    """What a run under the fault does: ``fails`` (store untouched), ``rotates`` (the fault is
    survived: a revocation left to the sweep, a verify retried), ``recovers`` (a refresh JFrog
    acted on: recreated in the same run) or ``dies-later`` (the slow refresh: see the docstring)."""
    f = FAULTS[fault]
    if call == "revoke" or (call == "me" and (f.once or strategy == "refresh")):
        return "rotates"  # a refreshed token is stored unverified: the refresh ended the previous one
    if call == "refresh" and f.acts:
        return "dies-later" if not f.once else "recovers"
    return "fails"


def named_call(call: str, fault: str) -> str:
    """The call the error names: a token answer that parses but does not work fails at VERIFY."""
    if call in ("create", "refresh") and fault in ("fake-jwt", "revoked"):
        return CALLS["me"].label
    return CALLS[call].label


# -- rotate --------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, strategy, fault", _params(_rotate_cases(), fast=6))
def test_rotate_under_a_fault_keeps_the_stored_token_then_completes(fleet, emulator, tally, ledger, capsys,
                                                                     call, strategy, fault):
    config = write_config(fleet / "rotator.yaml", emulator, strategy=strategy)
    assert run(["rotate", "-c", str(config), "--all"]) == 0  # the token the fault must not lose
    before = stored(fleet)
    c, f = CALLS[call], FAULTS[fault]
    since, taken = len(emulator.requests), emulator.faults_taken
    f.inject(emulator, c.method, c.path)
    code, text, elapsed = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    faults = settled(emulator, c, since, taken)
    tally.add(faults=faults)
    assert faults >= 1, "the fault was never met: the call is not where the table says"
    assert elapsed <= bound(faults), f"{elapsed:.1f}s for {faults} faulted request(s)"
    assert "Traceback" not in text
    expected = expectation(call, strategy, fault)
    after = stored(fleet)
    if expected == "fails":
        assert code == 1
        assert loose(named_call(call, fault)) in loose(text) and f.message in text
        assert (after.token_id, after.generation) == (before.token_id, before.generation)
        check_config(config, emulator, tally, swept=False)
    elif expected == "rotates":
        assert code == 0 and after.generation == before.generation + 1
        if call == "revoke":  # left listed as retired: the sweep revokes it
            assert f"revoke {before.token_id}: DELETE /access/api/v1/tokens/{before.token_id}" in text
        if call == "me" and strategy == "refresh" and not f.once:
            assert "stored the refreshed token unverified" in text and loose(CALLS["me"].label) in loose(text)
        check_config(config, emulator, tally, swept=False)
    elif expected == "recovers":
        assert code == 0 and after.generation == before.generation + 1
        assert f"the stored token {before.token_id} no longer works" in text and "recreating it" in text
        check_config(config, emulator, tally, swept=False)
    else:
        _dead_after_a_slow_refresh(emulator, tally, before, since, code, text)
    emulator.clear_faults()
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    assert code == 0, text
    assert run(["sweep", "-c", str(config)]) == 0
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


def _dead_after_a_slow_refresh(emulator, tally, before, since, code, text):
    """The one case the product cannot fix (module docstring): the run failed while the stored
    token still worked; JFrog serves the refresh later, and the stored token dies with it."""
    assert code == 1 and "refresh failed (POST /access/api/v1/tokens)" in text and "timed out after" in text
    deadline = time.monotonic() + 10
    while emulator.authenticates(before.access_token) and time.monotonic() < deadline:
        time.sleep(0.05)
    served = [r for r in emulator.requests[since:] if r.method == "POST" and r.status == 200]
    assert served, "the stalled refresh was never served"
    assert not emulator.authenticates(before.access_token)
    tally.add(dead_after_slow_refresh=1)


# -- sweep ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, fault", _params(_sweep_cases(), fast=2))
def test_sweep_under_a_fault_names_the_call_then_revokes_the_orphan(fleet, emulator, tally, ledger, capsys,
                                                                   call, fault):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="recreate")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    orphan = emulator.create_token("ci", description="jfrog-rotator:ci:r-crashed", expires_in=7 * 86400)
    c, f = CALLS[call], FAULTS[fault]
    since, taken = len(emulator.requests), emulator.faults_taken
    f.inject(emulator, c.method, c.path)
    code, text, elapsed = cli(["sweep", "-c", str(config)], capsys, ledger)
    faults = settled(emulator, c, since, taken)
    tally.add(faults=faults)
    assert faults >= 1 and elapsed <= bound(faults, verify=False), f"{elapsed:.1f}s for {faults}"
    assert code == 1 and "Traceback" not in text
    assert loose(c.label) in loose(text) and f.message in text
    check_config(config, emulator, tally, swept=False)
    emulator.clear_faults()
    assert run(["sweep", "-c", str(config)]) == 0
    assert not emulator.is_token_active(orphan["token_id"])
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


# -- regressions of the bugs this suite found (tests/reliability/bugs/jfrog_faults.py) -----------
def test_a_lost_refresh_answer_no_longer_leaves_a_dead_token_stored(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="refresh")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    before = stored(fleet)
    FAULTS["lost"].inject(emulator, "POST", TOKENS)
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=1)
    assert code == 0 and f"the stored token {before.token_id} no longer works" in text
    assert stored(fleet).generation == before.generation + 1
    check_config(config, emulator, tally, swept=False)
    assert run(["sweep", "-c", str(config)]) == 0  # the refreshed token JFrog kept is tagged: an orphan
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


def test_a_lost_refresh_without_fallback_says_the_stored_token_is_dead(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="refresh")
    config.write_text(config.read_text().replace("strategy: refresh,", "strategy: refresh, fallback_to_recreate: false,"))
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    before = stored(fleet)
    FAULTS["lost"].inject(emulator, "POST", TOKENS)
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=1)
    assert code == 1 and "refresh failed (POST /access/api/v1/tokens)" in text
    assert f"the stored token {before.token_id} no longer works" in text and "store a new token" in text
    ledger.emulator(emulator)
    ledger.check(tally)


def test_a_garbled_token_answer_never_echoes_its_body(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="refresh")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    FAULTS["garbled"].inject(emulator, "POST", TOKENS)
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=1)
    assert code == 0 and "answer is not JSON: " in text and "bytes of application/json" in text
    ledger.emulator(emulator)  # the refresh token of the garbled answer is a bare UUID no pattern masks
    ledger.check(tally)
    check_config(config, emulator, tally, swept=False)


def test_a_stalled_answer_says_timed_out_not_cannot_reach(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="recreate")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    FAULTS["stall"].inject(emulator, "POST", TOKENS)
    code, text, elapsed = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=1)
    assert code == 1 and "POST /access/api/v1/tokens: timed out after 1s" in text and "cannot reach" not in text
    assert elapsed <= bound(1)
    emulator.clear_faults()
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    assert run(["sweep", "-c", str(config)]) == 0  # the token JFrog minted after the client gave up
    check_config(config, emulator, tally)


def test_a_200_without_a_token_is_not_taken_for_one(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="recreate")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    since = len(emulator.requests)
    FAULTS["no-token"].inject(emulator, "POST", TOKENS)
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=1)
    assert code == 1 and "server response: 200 (answer has no access_token and token_id)" in text
    assert [r for r in emulator.requests[since:] if r.path.startswith(f"{TOKENS}/")] == [], \
        "nothing to verify or revoke: the answer named no token"
    check_config(config, emulator, tally, swept=False)


@pytest.mark.parametrize("fault", [pytest.param("500", marks=pytest.mark.slow), "reset"])
def test_the_fleet_sweeps_list_error_names_the_call(fleet, emulator, tally, ledger, capsys, fault):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="recreate")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    taken = emulator.faults_taken
    FAULTS[fault].inject(emulator, "GET", TOKENS)
    code, text, _ = cli(["sweep", "-c", str(config)], capsys, ledger)
    tally.add(faults=emulator.faults_taken - taken)
    assert code == 1 and "ci: list tokens: GET /access/api/v1/tokens" in text


# -- the daemon's job and sweep -----------------------------------------------------------------
DAEMON_CASES = [  # (call, strategy, fault): one of each outcome, each call once
    ("create", "recreate", "no-token"),
    ("create", "self", "malformed"),
    ("refresh", "refresh", "lost"),
    ("refresh", "refresh", "stall"),
    ("me", "recreate", "reset"),
    ("revoke", "recreate", "reset"),
]


def _metric(daemon, name: str, **labels: str) -> float:
    """A sample of the daemon's /metrics, 0 when absent."""
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def quick_retries(monkeypatch):
    """The daemon retries a failed rotation after 0.5 s (then 1 s, 2 s ...) instead of 15 s."""
    monkeypatch.setattr("rotator.daemon.target_job.RETRY_BASE", 0.5)


@pytest.mark.parametrize("call, strategy, fault",
                         [pytest.param(*c, id="-".join(c), marks=() if c[2] == "lost" else pytest.mark.slow)
                          for c in DAEMON_CASES])
def test_the_daemons_job_under_a_fault_keeps_the_stored_token_then_rotates(
        fleet, emulator, tally, ledger, start_daemon, quick_retries, call, strategy, fault):
    config = write_config(fleet / "rotator.yaml", emulator, strategy=strategy)
    config.write_text(config.read_text().replace("schedule: {every: 1h}", "schedule: {every: 2s}"))
    daemon = start_daemon(config)
    wait_until(lambda: (fleet / "secrets" / "ci.json").exists() and stored(fleet).generation >= 1, 10,
               what="the first rotation")
    c, f = CALLS[call], FAULTS[fault]
    since, taken = len(emulator.requests), emulator.faults_taken
    before = stored(fleet)
    runs = daemon.runs_done("ci")
    f.inject(emulator, c.method, c.path)
    expected = expectation(call, strategy, fault)
    if expected in ("fails", "dies-later"):
        wait_until(lambda: daemon.targets["ci"].failures >= 1, 30, what="a failed run")
        error = daemon.targets["ci"].last_error or ""
        assert loose(c.label) in loose(error) and f.message in error and "Traceback" not in error
        assert _metric(daemon, "jfrog_rotator_rotations_total", target="ci", result="failed") >= 1
        assert stored(fleet).token_id == before.token_id
        if expected == "fails":
            check_config(config, emulator, tally, swept=False)
        else:  # the slow refresh (module docstring): JFrog serves it later; the daemon's retry says so
            wait_until(lambda: not emulator.authenticates(before.access_token), 10, what="the late refresh")
            wait_until(lambda: "no longer works" in (daemon.targets["ci"].last_error or ""), 30,
                       what="a retry that names the dead stored token")
            tally.add(dead_after_slow_refresh=1)
        emulator.clear_faults()
    wait_until(lambda: stored(fleet).generation > before.generation, 30, what="a rotation once the fault clears")
    wait_until(lambda: daemon.runs_done("ci") > runs, 10, what="the run finished")
    daemon.stop()
    faults = settled(emulator, c, since, taken)
    tally.add(faults=faults)
    assert faults >= 1
    spent = _metric(daemon, "jfrog_rotator_rotation_duration_seconds_sum")
    count = _metric(daemon, "jfrog_rotator_rotation_duration_seconds_count")
    assert spent <= bound(faults) + count * bound(0), f"{spent:.1f}s in {count:.0f} runs for {faults} faults"
    text = product_logs(ledger)
    assert "Traceback" not in text
    if expected == "rotates" and call == "revoke":
        assert f"DELETE /access/api/v1/tokens/{before.token_id}" in text
    if expected == "recovers":
        assert f"the stored token {before.token_id} no longer works" in text
    emulator.clear_faults()
    assert run(["sweep", "-c", str(config)]) == 0
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


@pytest.mark.parametrize("call, fault", [("list", "reset"), pytest.param("list", "503", marks=pytest.mark.slow),
                                         pytest.param("revoke", "stall", marks=pytest.mark.slow),
                                         pytest.param("revoke", "lost", marks=pytest.mark.slow)])
def test_the_daemons_sweep_under_a_fault_logs_the_call_then_revokes_the_orphan(
        fleet, emulator, tally, ledger, start_daemon, call, fault, monkeypatch):
    # The daemon sweeps with an orphan grace of at least ORPHAN_GRACE_FLOOR (60 s: its own jobs may be
    # between MINT and STORE); this case is about the faults, so its orphan is due at once.
    monkeypatch.setattr("rotator.daemon.service.ORPHAN_GRACE_FLOOR", 0)
    config = write_config(fleet / "rotator.yaml", emulator, strategy="recreate", daemon="sweep_interval: 1s")
    daemon = start_daemon(config)
    wait_until(lambda: (fleet / "secrets" / "ci.json").exists(), 10, what="the first rotation")
    c, f = CALLS[call], FAULTS[fault]
    since, taken = len(emulator.requests), emulator.faults_taken
    f.inject(emulator, c.method, c.path)
    orphan = emulator.create_token("ci", description="jfrog-rotator:ci:r-crashed", expires_in=7 * 86400)

    def logged():
        return [t for where, t in ledger.texts if where.startswith("log ") and "sweep: ci: " in t]

    wait_until(logged, 30, what="the sweep's error in the log")
    error = logged()[0]
    assert loose(c.label) in loose(error) and f.message in error
    check_config(config, emulator, tally, swept=False)
    if not f.acts:
        assert emulator.is_token_active(orphan["token_id"])
    emulator.clear_faults()
    wait_until(lambda: not emulator.is_token_active(orphan["token_id"]), 15, what="the orphan revoked")
    daemon.stop()
    tally.add(faults=settled(emulator, c, since, taken))
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


# -- the Lambda's steps ---------------------------------------------------------------------------
LAMBDA_CASES = (  # (step, call, minting, faults)
    [("createSecret", "create", m, f) for m in ("admin", "self")
     for f in ("503", "reset", "stall", "malformed", "no-token", "lost", "garbled")]
    + [("testSecret", "me", "admin", f) for f in ("503", "reset", "stall", "malformed")]
    + [("finishSecret", call, m, f) for call in ("list", "revoke") for m in ("admin", "self")
       for f in ("503", "reset", "stall")]
)
LAMBDA_FAST = {("createSecret", "create", "self", "garbled"), ("testSecret", "me", "admin", "malformed"),
               ("finishSecret", "list", "self", "reset")}


@pytest.mark.parametrize("step, call, minting, fault",
                         [pytest.param(*c, id="-".join(c), marks=() if c in LAMBDA_FAST else pytest.mark.slow)
                          for c in LAMBDA_CASES])
def test_a_lambda_step_under_a_fault_keeps_awscurrent_then_the_retry_completes(
        request, tally, ledger, monkeypatch, step, call, minting, fault):
    h = request.getfixturevalue("lambda_faults")
    if minting == "self":
        monkeypatch.delenv("JFROG_ADMIN_SECRET_ARN")
    arn, seed = h.seeded_secret(scope="applied-permissions/user" if minting == "self" else
                                      "applied-permissions/groups:deployers")
    h.rotate(arn)  # a rotation first, so a previous token is listed
    before = h.current(arn)
    orphan = h.emulator.create_token(before.username, scope=before.scope, expires_in=14400,
                                           force_revocable=True, description=f"jfrog-rotator:{before.target}:r-lost")
    token = h.begin(arn)
    steps = list(STEPS)
    h.run_steps(arn, token, steps[:steps.index(step)])
    c, f = CALLS[call], FAULTS[fault]
    since, taken = len(h.emulator.requests), h.emulator.faults_taken
    f.inject(h.emulator, c.method, c.path)
    started = time.monotonic()
    failed = None
    try:
        h.step(arn, token, step)
    except RotationFailed as exc:
        failed = str(exc)
    elapsed = time.monotonic() - started
    faults = settled(h.emulator, c, since, taken)
    tally.add(faults=faults)
    assert faults >= 1
    assert elapsed <= bound(faults, retry=LAMBDA_RETRY), f"{elapsed:.1f}s for {faults} faulted request(s)"
    text = product_logs(ledger) + (failed or "")
    assert "Traceback" not in text
    if step == "finishSecret":  # promoted all the same; the sweep's failure is a warning, the next one retries
        assert failed is None and h.holder(arn, "AWSCURRENT") == token
        assert loose(c.label).replace("/", "") in loose(text).replace("/", "") and f.message in text
        lambda_invariants(h, arn, tally, swept=False)
    else:
        assert failed is not None and loose(named_call(call, fault)) in loose(failed) and f.message in failed
        assert h.current(arn).token_id == before.token_id and h.holder(arn, "AWSCURRENT") != token
        lambda_invariants(h, arn, tally, swept=False)
        h.emulator.clear_faults()
        h.run_steps(arn, token, steps[steps.index(step):])  # Secrets Manager retries the step
        assert h.holder(arn, "AWSCURRENT") == token
    h.emulator.clear_faults()
    h.rotate(arn)  # the next rotation's finishSecret sweeps what the fault left
    assert not h.emulator.is_token_active(orphan["token_id"])
    lambda_invariants(h, arn, tally, swept=True)
    ledger.emulator(h.emulator)
    ledger.check(tally)


def test_a_refreshed_token_jfrog_gives_no_answer_on_is_stored_not_revoked(fleet, emulator, tally, ledger, capsys):
    config = write_config(fleet / "rotator.yaml", emulator, strategy="refresh")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    before = stored(fleet)
    taken = emulator.faults_taken
    FAULTS["malformed"].inject(emulator, "GET", f"{TOKENS}/me")
    code, text, _ = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    tally.add(faults=emulator.faults_taken - taken)
    assert code == 0 and "stored the refreshed token unverified" in text
    assert stored(fleet).generation == before.generation + 1
    check_config(config, emulator, tally, swept=False)
    emulator.clear_faults()
    assert run(["sweep", "-c", str(config)]) == 0
    check_config(config, emulator, tally)


# -- the minting credential's own call: the OIDC token exchange ------------------------------------
OIDC = "/access/api/v1/oidc/token"


@pytest.mark.parametrize("fault", [pytest.param("503", marks=pytest.mark.slow), "reset",
                                   pytest.param("stall", marks=pytest.mark.slow), "malformed"])
def test_an_oidc_exchange_under_a_fault_mints_nothing_then_the_rotation_completes(
        request, emulator, tally, ledger, capsys, monkeypatch, fault):
    setup = request.getfixturevalue("make_oidc")()
    monkeypatch.chdir(setup.tmp_path)
    config = setup.config("- {name: ci, backend: local, path: ci, overlap: 0s, orphan_grace: 0s, "
                          "token: {username: ci, expiry: 7d}}")
    config.write_text(config.read_text().replace("  oidc:", f"  timeout: {TIMEOUT:g}s\n  oidc:", 1))
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    before, minted = stored(setup.tmp_path), emulator.mint_count
    taken = emulator.faults_taken
    FAULTS[fault].inject(emulator, "POST", OIDC)
    code, text, elapsed = cli(["rotate", "-c", str(config), "--all"], capsys, ledger)
    faults = emulator.faults_taken - taken
    tally.add(faults=faults)
    assert faults >= 1 and elapsed <= bound(faults, verify=False), f"{elapsed:.1f}s for {faults}"
    assert code == 1 and "Traceback" not in text and "POST /access/api/v1/oidc/token" in text
    assert FAULTS[fault].message in text
    assert emulator.mint_count == minted and stored(setup.tmp_path).token_id == before.token_id
    check_config(config, emulator, tally, swept=False)
    emulator.clear_faults()
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    assert run(["sweep", "-c", str(config)]) == 0
    check_config(config, emulator, tally)
    ledger.emulator(emulator)
    ledger.secret(setup.id_token_file.read_text().strip())
    ledger.check(tally)
