"""Reliability suite 3, concurrency and leadership (docs/reliability.md): processes racing on the
same targets, daemon replicas handing the lease over, and the daemon and the Lambda taking turns.

* Four rotating processes (tests/reliability/concurrency_worker.py, the CLI's ``rotate`` path)
  decide from the same stored version every round, on Vault KV v2 (OpenBao), AWS (moto) and the
  file store, strategies recreate and refresh: per round and target exactly one promotion, every
  loser's token revoked, no lost update, no refresh token presented twice.
* Three daemons with ``daemon.leader``: the leader killed (SIGKILL), paused past its lease (SIGSTOP,
  SIGCONT) and cut off from OpenBao (tests/fixtures/tcp_proxy.py): one leader at a time by
  ``/metrics``, no target missed, no double mint.
* A daemon and the Lambda taking turns on one AWS secret.

Invariants 1-4 (tests/reliability/harness.py) are checked after every case. A race (one round of
one target) counts as a fault injected, as does each kill, pause, cut and refused call. The
unmarked subset is short and deterministic (the racers meet at READ, so no seed is needed); the
slow cases run the 50-round races, the daemons' hand-overs and 20 daemon-and-Lambda rounds.

Regression cases of the bugs this suite found (tests/reliability/bugs/concurrency.py): a failed
refresh gives its claim back, and so does a leader's failed rotation; a daemon's sweep leaves a
token in flight alone; the daemon re-reads ``jfrog.access_token_file``; a document stored without
its metadata is read as the successor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from rotator.cli import run
from rotator.config import load_config
from rotator.core.record import SecretRecord
from rotator.core.tags import TAG_PREFIX, description_tag
from rotator.engine import RotationStep
from rotator.jfrog import AccessClient
from tests.aws_lambda.conftest import harness, lambda_function  # noqa: F401 - the Lambda on moto
from tests.daemon.conftest import spawn  # noqa: F401 - the daemon subprocess fixture
from tests.fixtures.daemon import ROOT, wait_until
from tests.fixtures.moto_server import aws_env
from tests.fixtures.tcp_proxy import TcpProxy
from tests.reliability.concurrency_rounds import (
    LeaderWatch,
    Racers,
    fleet,
    leader_gauge,
    refresh_answers,
    refresh_uses,
    store_block,
    store_env,
    write_cli_config,
)
from tests.reliability.harness import check_config

SUITE = "concurrency"
WORKERS = 4
FAST_ROUNDS = 2
SLOW_ROUNDS = 50


def stored(config_path, name: str) -> tuple[SecretRecord, object]:
    config = load_config(config_path)
    try:
        target = next(t for t in config.targets if t.name == name)
        value = config.backends[target.backend].read(target.path)
        return SecretRecord.loads(value.text), value.version
    finally:
        config.close()


def race_rounds(tmp_path, request, monkeypatch, emulator, tally, ledger, *, kind: str, strategy: str,
                rounds: int, targets: int = 2) -> None:
    """``rounds`` rounds of :data:`WORKERS` processes rotating every target from one version."""
    store_env(kind, request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    names = fleet(targets)
    cfg = write_cli_config(tmp_path / "rotator.yaml", emulator, store_block(kind, request), names, strategy=strategy)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0  # generation 1 (a refresh needs a token to refresh)
    racers = Racers(tmp_path / "race", cfg, workers=WORKERS, rounds=rounds).start()
    request.addfinalizer(racers.stop)
    problems: list[str] = []
    losers = 0
    for number in range(rounds):
        before = {name: stored(cfg, name) for name, _ in names}
        answers = racers.round(number)
        for name, _ in names:
            mine = [a for a in answers if a["target"] == name]
            record, version = stored(cfg, name)
            previous, previous_version = before[name]
            winners = [a for a in mine if a["outcome"] == "rotated"]
            others = [a for a in mine if a["outcome"] != "rotated"]
            expected_loss = "lost-race" if strategy == "recreate" else "skipped"
            tally.add(checks=5)
            if racers.met(number, name) != WORKERS:
                problems.append(f"round {number} {name}: only {racers.met(number, name)} workers raced")
            if len(winners) != 1:
                problems.append(f"round {number} {name}: {len(winners)} promotions, not 1: "
                                f"{[(a['outcome'], a['error']) for a in mine]}")
                continue
            if any(a["outcome"] != expected_loss for a in others):
                problems.append(f"round {number} {name}: losers answered {[(a['outcome'], a['error']) for a in others]}")
            [won] = winners
            if record.token_id != won["token_id"] or record.generation != previous.generation + 1:
                problems.append(f"round {number} {name}: lost update: stored {record.token_id} gen "
                                f"{record.generation}, winner {won['token_id']} gen {previous.generation + 1}")
            if kind == "vault-kv2" and int(version) != int(previous_version) + 1:
                problems.append(f"round {number} {name}: {int(version) - int(previous_version)} versions written")
            if strategy == "refresh" and won["strategy"] != "refresh":
                problems.append(f"round {number} {name}: the winner used {won['strategy']}, not refresh")
            live = emulator.live_token_ids(description_prefix=f"{TAG_PREFIX}:{name}:")
            if live != {record.token_id}:  # overlap 0s: the previous token is revoked, every loser's too
                problems.append(f"round {number} {name}: live tagged tokens {sorted(live)} besides "
                                f"the stored {record.token_id}")
            losers += len(others)
    if strategy == "refresh":
        uses = refresh_uses(emulator)
        twice = {key: n for key, n in uses.items() if n > 1}
        tally.add(checks=2)
        if twice:
            problems.append(f"{len(twice)} refresh token(s) presented more than once: {twice}")
        statuses = refresh_answers(emulator)
        if set(statuses) != {200} or sum(statuses.values()) != rounds * targets:
            problems.append(f"refresh grants answered {dict(statuses)}, not {rounds * targets} x 200")
    tally.add(faults=rounds * targets, rounds=rounds, races=rounds * targets, losers=losers, processes=WORKERS)
    tally.violated(problems)
    check_config(cfg, emulator, tally)
    ledger.emulator(emulator)
    ledger.secret(emulator.admin_token)
    if kind == "vault-kv2":
        ledger.secret(request.getfixturevalue("openbao").root_token)
    ledger.text("worker logs", racers.log_text())
    ledger.check(tally)


FAST = [("file", "recreate"), ("vault-kv2", "refresh")]  # AWS: in the slow runs (its workers start slowly)
ALL = [(kind, strategy) for kind in ("file", "vault-kv2", "aws") for strategy in ("recreate", "refresh")]


@pytest.mark.parametrize(("kind", "strategy"), FAST)
def test_four_processes_race_each_round_one_promotes(kind, strategy, tmp_path, request, monkeypatch, emulator,
                                                      cli_env, tally, ledger):
    race_rounds(tmp_path, request, monkeypatch, emulator, tally, ledger, kind=kind, strategy=strategy,
                rounds=FAST_ROUNDS)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "strategy"), ALL)
def test_four_processes_race_fifty_rounds(kind, strategy, tmp_path, request, monkeypatch, emulator, cli_env,
                                          tally, ledger):
    race_rounds(tmp_path, request, monkeypatch, emulator, tally, ledger, kind=kind, strategy=strategy,
                rounds=SLOW_ROUNDS, targets=1)


# -- a rotation that fails gives its claim back ---------------------------------------------------
@pytest.mark.parametrize("kind", ["file", "vault-kv2", "aws"])
def test_a_refresh_that_fails_gives_its_claim_back_and_a_rerun_goes_at_once(kind, tmp_path, request, monkeypatch,
                                                                         emulator, cli_env, tally, ledger, capsys):
    store_env(kind, request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    [(name, _)] = names = fleet(1)
    cfg = write_cli_config(tmp_path / "rotator.yaml", emulator, store_block(kind, request), names, strategy="refresh")
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    first, _ = stored(cfg, name)
    # the refresh grant is refused (403: no fallback to recreate): the rotation fails at MINT, claimed
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=403, count=1)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 1
    emulator.clear_faults()
    failed = capsys.readouterr()
    assert "refresh failed" in failed.out + failed.err
    assert stored(cfg, name)[0].token_id == first.token_id and emulator.authenticates(first.access_token)
    # the rerun right away is not kept off by the failed rotation's claim
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    out = capsys.readouterr()
    record, _ = stored(cfg, name)
    tally.add(faults=1, checks=2)
    tally.violated([] if record.generation == first.generation + 1 else
                   [f"the rerun did not rotate (generation {record.generation}): {out.out.strip()} {out.err.strip()}"])
    assert refresh_answers(emulator)[200] == 1, "the rerun refreshed"
    check_config(cfg, emulator, tally)
    ledger.emulator(emulator)
    ledger.text("cli", failed.out + failed.err + out.out + out.err)
    ledger.check(tally)


# -- a sweep while another process's rotation is between MINT and STORE ---------------------------
PAUSE_AT_STORE = """\
import pathlib, sys, time
from rotator.config import load_config
from rotator.config.wiring import build_engine

config_path, marker, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])

def hook(step, when, rotation_id):
    if step.value == "store" and when == "before":  # minted and verified, not stored yet
        marker.write_text(rotation_id)
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

config = load_config(config_path)
result = build_engine(config, step_hook=hook).rotate(config.targets[0])
print(result.outcome, result.token_id)
sys.exit(0 if result.outcome == "rotated" else 1)
"""


def sweep_lists(emulator) -> int:
    """Fleet-wide token lists served: one per sweep of a daemon (``Engine.sweep_all``)."""
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path.endswith("/access/api/v1/tokens")
               and r.query.get("description", [""])[0] == f"{TAG_PREFIX}:*")


@pytest.mark.parametrize("kind", ["file", pytest.param("vault-kv2", marks=pytest.mark.slow)])
def test_a_daemon_sweep_with_orphan_grace_0s_leaves_a_token_in_flight_alone(kind, tmp_path, request, monkeypatch,
                                                                           emulator, cli_env, spawn, tally,  # noqa: F811
                                                                           ledger):
    """Another process (a replica, the CLI) has minted and verified, and is about to store; a
    daemon sweeping every second with ``orphan_grace: 0s`` must not take that token for an orphan
    (it would revoke it, and the other process would store a dead token)."""
    store_env(kind, request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    [(name, _)] = names = fleet(1)
    cfg = write_cli_config(tmp_path / "rotator.yaml", emulator, store_block(kind, request), names,
                           extra="daemon: {sweep_interval: 1s}")
    cfg.write_text(cfg.read_text().replace("orphan_grace: 0s}", "orphan_grace: 0s, schedule: {every: 1h}}"))
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    daemon = spawn(cfg)
    marker, go = tmp_path / "minted", tmp_path / "go"
    paused = subprocess.Popen([sys.executable, "-c", PAUSE_AT_STORE, str(cfg), str(marker), str(go)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    request.addfinalizer(lambda: paused.poll() is None and paused.kill())
    try:
        wait_until(marker.exists, 30, what="the other process between MINT and STORE")
        seen = sweep_lists(emulator)
        wait_until(lambda: sweep_lists(emulator) >= seen + 2, 30, what="two whole sweeps of the daemon")
    finally:
        go.touch()
    output, _ = paused.communicate(timeout=60)
    assert paused.returncode == 0, output
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    tally.add(faults=1, sweeps_in_flight=2)
    record, _ = stored(cfg, name)
    tally.violated([] if emulator.authenticates(record.access_token) else
                   [f"{name}: the daemon's sweep revoked token {record.token_id} in flight; it was stored dead"])
    check_config(cfg, emulator, tally, swept=False)
    ledger.emulator(emulator)
    ledger.text("daemon log", daemon.log_path.read_text())
    ledger.text("other process", output)
    ledger.check(tally)


# -- the admin token file is replaced while the daemon runs ---------------------------------------
def test_the_daemon_mints_with_the_admin_token_file_as_it_is_now(tmp_path, emulator, cli_env, spawn,  # noqa: F811
                                                                 tally, ledger):
    """The admin token is rotated under a running daemon (a new token written to
    ``jfrog.access_token_file``, the old one revoked): the next rotation mints with the new one."""
    emulator.create_user("alpha")
    token_file = tmp_path / "admin-token"
    token_file.write_text(emulator.admin_token + "\n")
    [(name, where)] = fleet(1)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{emulator.url}", access_token_file: "{token_file}"}}\n'
                   f'backends: {{store: {{type: file, directory: "{tmp_path / "secrets"}"}}}}\n'
                   f'targets: [{{name: {name}, backend: store, path: "{where}", overlap: 0s, '
                   f'token: {{username: alpha, expiry: 4h}}, schedule: {{every: 1s}}}}]\n')
    daemon = spawn(cfg)
    wait_until(lambda: generations(cfg, [(name, where)])[name] >= 1, 30, what="the first rotation")
    new_admin = emulator.create_token(emulator.admin_username, scope="applied-permissions/admin", expires_in=0)
    with AccessClient(emulator.url, access_token=new_admin["access_token"]) as admin:
        old_id = admin.get_me(token=emulator.admin_token)["token_id"]
        token_file.write_text(new_admin["access_token"] + "\n")  # what a secret mount does on rotation
        admin.revoke_token(old_id)
    at_swap = stored(cfg, name)[0].generation
    tally.add(faults=1)
    try:
        wait_until(lambda: stored(cfg, name)[0].generation >= at_swap + 2, 30,
                   what="two rotations minted with the new admin token")
        problems = []
    except AssertionError as exc:
        problems = [f"the daemon kept minting with the revoked admin token: {exc}"]
    tally.violated(problems)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    check_config(cfg, emulator, tally, swept=False)
    ledger.emulator(emulator)
    ledger.secret(new_admin["access_token"])
    ledger.text("daemon log", daemon.log_path.read_text())
    ledger.check(tally)


# -- three daemons with daemon.leader: the leader killed, paused, cut off ------------------------
TTL = 3
LEADER = "this replica is the leader now"


def daemon_config(path, emulator, request, names, *, lease: str, vault_url: str | None = None):
    lines = "\n".join(f"  - {{name: {name}, backend: store, path: \"{where}\", token: {{username: alpha, expiry: 4h}}, "
                      f"schedule: {{every: 2s}}, overlap: 0s, orphan_grace: 0s}}" for name, where in names)
    path.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                    f"backends:\n  store: {store_block('vault-kv2', request, vault_url=vault_url)}\n"
                    f"daemon:\n  sweep_interval: 2s\n  leader: {{backend: store, path: \"{lease}\", ttl: {TTL}s}}\n"
                    "targets:\n" + lines + "\n")
    return path


def logged(proc, text: str) -> list[dict]:
    return [r for r in proc.logs() if text in r.get("message", "")]


def generations(cfg, names) -> dict[str, int]:
    return {name: stored(cfg, name)[0].generation if _has(cfg, name) else 0 for name, _ in names}


def _has(cfg, name) -> bool:
    config = load_config(cfg)
    try:
        target = next(t for t in config.targets if t.name == name)
        return config.backends[target.backend].read(target.path).text is not None
    finally:
        config.close()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill-9", "sigstop-past-ttl", "store-unreachable"])
def test_three_daemons_hand_the_lease_over_one_leader_at_a_time(fault, tmp_path, request, monkeypatch, emulator,
                                                                cli_env, spawn, tally, ledger):  # noqa: F811
    store_env("vault-kv2", request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    names = fleet(3, prefix="lead")
    lease = f"concurrency/{uuid.uuid4().hex[:8]}/leader"
    openbao = request.getfixturevalue("openbao")
    host, port = openbao.addr.rsplit("//", 1)[1].rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    request.addfinalizer(proxy.stop)
    configs = [daemon_config(tmp_path / "first.yaml", emulator, request, names, lease=lease, vault_url=proxy.url),
               daemon_config(tmp_path / "second.yaml", emulator, request, names, lease=lease),
               daemon_config(tmp_path / "third.yaml", emulator, request, names, lease=lease)]
    cfg = configs[1]
    procs = [spawn(configs[0], "--replica-id", "first")]  # it leads first: the one behind the proxy
    wait_until(lambda: logged(procs[0], LEADER), 30, what="the first replica leading")
    procs += [spawn(configs[1], "--replica-id", "second"), spawn(configs[2], "--replica-id", "third")]
    watch = LeaderWatch(procs).start()
    request.addfinalizer(watch.stop)
    wait_until(lambda: all(g >= 2 for g in generations(cfg, names).values()), 30, what="two rounds by the first")
    lead = procs[0]

    if fault == "kill-9":
        lead.proc.kill()
        lead.proc.wait()
    elif fault == "sigstop-past-ttl":
        lead.send(signal.SIGSTOP)
    else:
        proxy.refuse.set()  # OpenBao unreachable for the leader only
    at_fault = generations(cfg, names)
    tally.add(faults=1)
    try:
        wait_until(lambda: any(logged(p, LEADER) for p in procs[1:]), 30, what="a standby taking over")
        wait_until(lambda: all(g >= at_fault[n] + 2 for n, g in generations(cfg, names).items()), 30,
                   what="every target rotated twice by the new leader")
    finally:
        if fault == "sigstop-past-ttl":
            lead.send(signal.SIGCONT)
        proxy.refuse.clear()
    if fault != "kill-9":  # the old leader back: it stands by, its rotations in flight fenced
        wait_until(lambda: leader_gauge(lead) == 0.0, 30, what="the old leader standing by")
    resumed = generations(cfg, names)
    wait_until(lambda: all(g >= resumed[n] + 2 for n, g in generations(cfg, names).items()), 30,
               what="two more rounds after the old leader came back")
    watch.stop()
    for proc in procs:
        if proc.proc.poll() is None:
            proc.send(signal.SIGTERM)
            assert proc.wait() == 0
    # after the last daemon stopped: a sweep revokes what a killed or fenced leader left minted
    assert run(["sweep", "-c", str(cfg)]) == 0
    final = generations(cfg, names)
    logs = [r for proc in procs for r in proc.logs()]
    lost = [r for r in logs if "lost the compare-and-set race" in r.get("message", "")]
    extra = emulator.mint_count - sum(final.values())
    problems = []
    if watch.both:
        problems.append(f"{len(watch.both)} of {watch.samples} samples of /metrics saw two leaders: {watch.both[:5]}")
    if lost:
        problems.append(f"{len(lost)} rotations minted from a version another replica also minted from")
    if extra > 1:  # a leader killed or paused between MINT and STORE may leave one token minted
        problems.append(f"{extra} tokens minted that no generation stores (double mints)")
    tally.add(checks=3 + len(names), leader_samples=watch.samples, handovers=1)
    tally.violated(problems)
    check_config(cfg, emulator, tally)
    ledger.emulator(emulator)
    ledger.secret(openbao.root_token)
    for proc in procs:
        ledger.text(f"daemon log {proc.log_path.name}", proc.log_path.read_text())
    ledger.check(tally)


# -- a daemon and the Lambda taking turns on one AWS secret ---------------------------------------
def lambda_and_daemon_rounds(rounds, tmp_path, lambdas, moto_server, monkeypatch, emulator, start_daemon, tally,
                             ledger) -> None:
    """Round by round on one secret, the loser alternating: (a) the daemon has minted and verified
    and waits at STORE while the Lambda runs its four steps; (b) the Lambda has run createSecret
    when the daemon rotates, then it runs setSecret, testSecret and finishSecret. Each round: one
    promotion (the generation moves by one, the winner's token is current), the loser's token
    revoked, nothing the winner wrote lost."""
    from rotator.aws_lambda import RotationFailed, RotationSetupError  # a step that gives up

    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    target = f"ci-{uuid.uuid4().hex[:8]}"
    name = lambdas.name()
    lambdas.secret_with(lambdas.seed(target), name=name)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                   "backends: {store: {type: aws-secretsmanager, region: us-east-1, "
                   f'endpoint_url: "{moto_server.url}"}}}}\n'
                   f'targets: [{{name: {target}, backend: store, path: "{name}", overlap: 0s, '
                   f'token: {{username: ci, expiry: 4h}}, schedule: {{every: 1h}}}}]\n')
    pause, arrived, release = threading.Event(), threading.Event(), threading.Event()
    held: list[str] = []

    def hook(step, when, rotation_id):
        if step is RotationStep.STORE and when == "before" and pause.is_set():
            held.append(rotation_id)
            arrived.set()
            release.wait(30)

    daemon = start_daemon(cfg, step_hook=hook)
    wait_until(lambda: daemon.runs_done(target) >= 1, 30, what="the daemon's check at start (not due)")
    problems: list[str] = []
    for number in range(rounds):
        before = lambdas.current(name)
        runs, mints = daemon.runs_done(target), emulator.mint_count
        if number % 2 == 0:  # (a) the Lambda promotes while the daemon waits at STORE
            pause.set()
            arrived.clear()
            release.clear()
            daemon.run_now(target, reason=f"round {number}")
            wait_until(arrived.is_set, 30, what="the daemon's rotation at STORE")
            token = lambdas.rotate(lambdas.sm.describe_secret(SecretId=name)["ARN"])
            winner = lambdas.version(name, token).token_id
            pause.clear()
            release.set()
            wait_until(lambda: daemon.runs_done(target) > runs, 30, what="the daemon's rotation to end")
            minted = lambdas.admin.list_tokens(description=f"{TAG_PREFIX}:{target}:{held[-1]}*")
            loser = minted[0]["token_id"] if minted else None  # live: not revoked
        else:  # (b) the daemon promotes between createSecret and the Lambda's other steps
            arn = lambdas.sm.describe_secret(SecretId=name)["ARN"]
            token = lambdas.begin(arn)
            lambdas.step(arn, token, "createSecret")
            pending = lambdas.version(name, token).token_id
            daemon.run_now(target, reason=f"round {number}")
            wait_until(lambda: daemon.runs_done(target) > runs, 30, what="the daemon's rotation")
            winner = lambdas.current(name).token_id
            try:
                lambdas.run_steps(arn, token, ("setSecret", "testSecret", "finishSecret"))
                problems.append(f"round {number}: the Lambda promoted over the daemon's rotation")
            except (RotationFailed, RotationSetupError):
                pass
            loser = pending
        now = lambdas.current(name)
        tally.add(checks=4)
        if now.generation != before.generation + 1:
            problems.append(f"round {number}: {now.generation - before.generation} promotions, not 1")
        if now.token_id != winner:
            problems.append(f"round {number}: lost update: current {now.token_id}, winner {winner}")
        if not emulator.authenticates(now.access_token):
            problems.append(f"round {number}: the current token does not work")
        if loser is not None and loser in emulator.live_token_ids(description_prefix=f"{TAG_PREFIX}:{target}:"):
            problems.append(f"round {number}: the loser's token {loser} is still live")
        if emulator.mint_count != mints + 2:
            problems.append(f"round {number}: {emulator.mint_count - mints} tokens minted, not 2 (one each)")
    tally.add(faults=rounds, rounds=rounds, races=rounds)
    tally.violated(problems)
    check_config(cfg, emulator, tally, swept=False)
    ledger.emulator(emulator)
    ledger.check(tally)



@pytest.fixture
def aws_credentials(monkeypatch):
    """moto's dummy AWS credentials before the Lambda's fixtures make their clients."""
    aws_env(monkeypatch)


@pytest.mark.parametrize("rounds", [pytest.param(2, id="2-rounds"),
                                    pytest.param(20, id="20-rounds", marks=pytest.mark.slow)])
def test_a_daemon_and_the_lambda_take_turns_on_one_secret(rounds, tmp_path, aws_credentials, harness,  # noqa: F811
                                                          moto_server,
                                                          monkeypatch,
                                                          emulator, start_daemon, tally, ledger):
    lambda_and_daemon_rounds(rounds, tmp_path, harness, moto_server, monkeypatch, emulator, start_daemon, tally,
                             ledger)


# -- a document whose tag write was lost -------------------------------------------------------
@pytest.mark.parametrize("kind", ["vault-kv2", "aws"])
def test_a_document_stored_without_its_metadata_is_read_as_the_successor(kind, tmp_path, request, monkeypatch,
                                                                       emulator, cli_env, make_store, tally,
                                                                       ledger):
    """A rotation of a ``format: token`` target stored its value, and the metadata write after it
    was lost (another writer's, a crash, a timeout): the metadata still describes the previous
    token. READ must take the document for the successor of that record (its token carries this
    target's tag), not adopt it as a stranger's (generation 0, the retired tokens forgotten and
    swept before their overlap ends)."""
    store_env(kind, request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    [(name, where)] = names = fleet(1)
    cfg = write_cli_config(tmp_path / "rotator.yaml", emulator, store_block(kind, request), names)
    cfg.write_text(cfg.read_text().replace("overlap: 0s", "overlap: 1h, format: token"))
    for _ in range(2):
        assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    store = make_store(kind)
    before = store.read(where)
    in_overlap = [token for token in emulator.live_token_ids(description_prefix=f"{TAG_PREFIX}:{name}:")]
    assert len(in_overlap) == 2
    landed = emulator.create_token("alpha", expires_in=14400, description=description_tag(name, "tags-lost"))
    old = next(t for t in emulator.issued_values() if t in before.text)
    if kind == "aws":  # AWSCURRENT moves, the tags stay
        store.client.put_secret_value(SecretId=where, SecretString=before.text.replace(old, landed["access_token"]))
    else:  # a new version of the KV data as the store keeps it, custom_metadata as it was
        kv = store.client.secrets.kv.v2
        data = kv.read_secret_version(path=where, mount_point=store.mount, raise_on_deleted_version=True)["data"]["data"]
        kv.create_or_update_secret(path=where, mount_point=store.mount,
                                   secret={k: v.replace(old, landed["access_token"]) if isinstance(v, str) else v
                                           for k, v in data.items()})
    tally.add(faults=1)
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0
    assert run(["sweep", "-c", str(cfg)]) == 0
    problems = []
    generation = int((store.read_metadata(where) or {}).get("generation") or 0)
    if generation != 4:
        problems.append(f"generation {generation} after the landed write (generation 3), not 4")
    live = emulator.live_token_ids(description_prefix=f"{TAG_PREFIX}:{name}:")
    early = [t for t in [*in_overlap, landed["token_id"]] if t not in live]
    if early:
        problems.append(f"{len(early)} token(s) in their overlap revoked early: {early}")
    tally.add(checks=2)
    tally.violated(problems)
    check_config(cfg, emulator, tally)
    ledger.emulator(emulator)
    ledger.check(tally)


@pytest.mark.parametrize("kind", ["file", "vault-kv2"])
def test_a_leader_whose_rotation_fails_gives_its_claim_back(kind, tmp_path, request, monkeypatch, emulator, cli_env,
                                                          start_daemon, make_store, tally, ledger):
    """With ``daemon.leader`` the leader claims each rotation; one that fails before storing (JFrog
    refuses the mint) gives the claim back, so a replica taking over need not wait out its ttl."""
    store_env(kind, request, monkeypatch)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("alpha")
    [(name, where)] = names = fleet(1)
    lease = f"concurrency/{uuid.uuid4().hex[:8]}/leader"
    cfg = write_cli_config(tmp_path / "rotator.yaml", emulator, store_block(kind, request, directory=str(tmp_path / "s")),
                           names, extra=f"daemon: {{leader: {{backend: store, path: \"{lease}\", ttl: 30s}}}}")
    assert run(["rotate", "-c", str(cfg), "--all"]) == 0  # a version to claim from
    version = make_store(kind).read(where).version
    emulator.inject_fault("/access/api/v1/tokens", method="POST", status=403, count=1)
    daemon = start_daemon(cfg, replica_id="leader")
    wait_until(lambda: daemon.leading, 30, what="the daemon leading")
    daemon.run_now(name, reason="fails")
    wait_until(lambda: daemon.runs_done(name) >= 1 and any(r.path.endswith("/access/api/v1/tokens") and
                                                            r.status == 403 for r in emulator.requests), 30,
               what="the rotation refused by JFrog")
    tally.add(faults=1, checks=1)
    other = make_store(kind).claim_rotation(where, version, holder="another replica", rotation_id="next", ttl=30)
    tally.violated([] if other == "another replica" else
                   [f"the failed rotation's claim still keeps others off for its ttl (held by {other})"])
    check_config(cfg, emulator, tally, swept=False)
    ledger.emulator(emulator)
    ledger.check(tally)
