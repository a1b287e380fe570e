"""Several ``jfrog-rotator daemon`` processes on one config with ``daemon.leader``: one leads, the
others stand by, and the work is done once (docs/daemon.md, "Running several replicas").

Real parts: OpenBao, moto's server and the file store; the JFrog emulator over HTTP; the daemons
are subprocesses, killed with SIGKILL or paused with SIGSTOP by PID. Short lease TTLs (2 s) keep
the suite quick; the 300-target version and the failover time are in bench/replicas.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import requests

from rotator.cli import run
from rotator.core.record import SecretRecord
from rotator.core.tags import tag_rotation
from rotator.jfrog import AccessClient
from tests.fixtures.daemon import ROOT, wait_until
from tests.fixtures.http_counter import CountingProxy

TTL = 3  # seconds: short for a quick suite, long enough that a busy machine does not starve a renewal
TOKEN_ENV = "ROTATOR_TEST_VAULT_TOKEN"
LEADER = "this replica is the leader now"


# -- helpers ----------------------------------------------------------------------------------
def backend_block(kind: str, request, url: str | None = None) -> str:
    if kind == "file":
        return "store: {type: file, directory: ./secrets}"
    if kind == "vault-kv2":
        openbao = request.getfixturevalue("openbao")
        return (f"store: {{type: vault, url: \"{url or openbao.addr}\", auth: {{method: token, token_env: {TOKEN_ENV}}}, "
                f"reconcile_interval: 2s}}")
    moto = request.getfixturevalue("moto_server")
    return f"store: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: \"{moto.url}\", timeout: 10s}}"


def write_config(path: Path, emulator, backend: str, targets: list[str], *, lease: str, every: str = "1h",
                 leader_backend: str = "store", ttl: int = TTL) -> Path:
    lines = "\n".join(f"  - {{name: {name}, backend: store, path: \"{target_path}\", "
                      f"token: {{username: alpha, expiry: 4h}}, schedule: {{every: {every}}}, overlap: 0s, "
                      f"orphan_grace: 0s}}" for name, target_path in targets)
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          {backend}
        daemon:
          sweep_interval: 1h
          leader: {{backend: {leader_backend}, path: "{lease}", ttl: {ttl}s}}
        targets:
        """) + lines + "\n")
    return path


def targets(count: int) -> list[tuple[str, str]]:
    run_id = uuid.uuid4().hex[:8]
    return [(f"t{i}", f"replicas/{run_id}/t{i}") for i in range(count)]


def generation(store, path: str) -> int:
    text = store.read(path).text
    return SecretRecord.loads(text).generation if text else 0


def logged(proc, text: str) -> list[dict]:
    return [r for r in proc.logs() if text in r.get("message", "")]


def leader_gauge(proc, replica: str) -> float | None:
    for line in proc.get("/metrics").text.splitlines():
        if line.startswith(f'jfrog_rotator_leader{{replica="{replica}"}}'):
            return float(line.split()[-1])
    return None


@pytest.fixture
def vault_env(request, monkeypatch):
    """The daemons' Vault token, passed in the environment (never in the config)."""
    openbao = request.getfixturevalue("openbao")
    monkeypatch.setenv(TOKEN_ENV, openbao.root_token)
    return openbao


# -- tests ------------------------------------------------------------------------------------
def test_three_replicas_rotate_thirty_due_targets_once_and_only_the_leader_reads_them(
        daemon_env, vault_env, tmp_path, spawn, make_store, request):
    store = make_store("vault-kv2")
    fleet = targets(30)
    lease = f"replicas/{uuid.uuid4().hex[:8]}/leader"
    proxies = [CountingProxy(vault_env.addr).start() for _ in range(3)]
    request.addfinalizer(lambda: [p.stop() for p in proxies])
    procs = [spawn(write_config(tmp_path / f"r{i}.yaml", daemon_env, backend_block("vault-kv2", request, p.url),
                                fleet, lease=lease, ttl=5), "--replica-id", f"r{i}")
             for i, p in enumerate(proxies)]
    wait_until(lambda: all(generation(store, path) >= 1 for _, path in fleet), 60,
               what="every target's first token (all 30 are due at start)")
    leaders = [i for i, proc in enumerate(procs) if logged(proc, LEADER)]
    assert len(leaders) == 1, [proc.log_path for proc in procs]
    [lead] = leaders
    standbys = [i for i in range(3) if i != lead]
    assert [leader_gauge(procs[i], f"r{i}") for i in range(3)] == [1.0 if i == lead else 0.0 for i in range(3)]

    # two more reconcile passes of the leader, and three lease reads by each standby after that
    mark = {i: len(p.seen) for i, p in enumerate(proxies)}
    lease_read = f"/v1/secret/data/{lease}"

    def passes() -> list[int]:
        seen = proxies[lead].seen
        return [n for n in range(mark[lead], len(seen))
                if seen[n].method == "LIST" and "jfrog-rotator-requests" in seen[n].path]

    wait_until(lambda: len(passes()) >= 3, 30, what="two whole reconcile passes of the leader")
    wait_until(lambda: all(sum(1 for s in proxies[i].seen[mark[i]:] if s.path == lease_read) >= 3 for i in standbys),
               30, what="the standbys watching the lease")

    assert [generation(store, path) for _, path in fleet] == [1] * 30, "each target rotated exactly once"
    assert daemon_env.mint_count == 30, "tokens minted = rotations: no replica minted a token it threw away"
    # a standby reads the lease (and checks its own token), never a target, a flag or a request
    for i in standbys:
        paths = {s.path for s in proxies[i].seen}
        assert paths <= {lease_read, "/v1/auth/token/lookup-self", "/v1/sys/internal/ui/mounts/secret"}, paths
        assert not logged(procs[i], "rotation rotated")
    # one pass of the leader (the second after the mark: the rotations' own reads are long done):
    # one LIST of the requests and one metadata read per target
    first, second = passes()[1:3]
    between = proxies[lead].seen[first + 1:second]
    metadata_reads = [s for s in between if s.method == "GET" and s.path.startswith("/v1/secret/metadata/replicas/")]
    assert len(metadata_reads) == 30 and len({s.path for s in metadata_reads}) == 30


@pytest.mark.parametrize("kind", ["file", "vault-kv2", "aws"])
def test_kill_9_the_leader_and_the_standby_takes_over_without_missing_a_target(
        kind, daemon_env, tmp_path, spawn, make_store, request, monkeypatch):
    if kind == "vault-kv2":
        monkeypatch.setenv(TOKEN_ENV, request.getfixturevalue("openbao").root_token)
    store = make_store(kind)
    fleet = targets(4)
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, backend_block(kind, request), fleet,
                       lease=f"replicas/{uuid.uuid4().hex[:8]}/leader", every="3s")
    first = spawn(cfg, "--replica-id", "first")
    wait_until(lambda: logged(first, LEADER), 30, what="the first replica leading")
    wait_until(lambda: all(generation(store, path) >= 1 for _, path in fleet), 30)
    second = spawn(cfg, "--replica-id", "second")
    wait_until(lambda: logged(second, "standing by as replica"), 30, what="the second replica standing by")
    wait_until(lambda: all(generation(store, path) >= 2 for _, path in fleet), 30, what="a scheduled round")
    assert not logged(second, LEADER), "one leader at a time"

    first.proc.kill()  # SIGKILL: no release, no clean-up
    first.proc.wait()
    at_kill = {path: generation(store, path) for _, path in fleet}
    [took_over] = wait_until(lambda: logged(second, LEADER), 30, what="the standby taking over")
    if kind == "file":
        assert "it was free" in took_over["message"]  # the kernel dropped the dead process's flock
    else:
        assert "left it unrenewed for" in took_over["message"] and f"(ttl {TTL}s)" in took_over["message"]
    wait_until(lambda: all(generation(store, path) > at_kill[path] for _, path in fleet), 30,
               what="every target rotated by the new leader")
    assert wait_until(lambda: leader_gauge(second, "second") == 1.0, 10)

    # every token minted is stored or revoked: after a sweep nothing else lives (the killed
    # leader may have minted one it never stored)
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    assert run(["sweep", "-c", str(cfg)]) == 0
    for name, path in fleet:
        record = SecretRecord.loads(store.read(path).text)
        assert daemon_env.authenticates(record.access_token)
        assert daemon_env.live_token_count(description_prefix=f"jfrog-rotator:{name}:") == 1


def test_a_leader_stopped_with_sigterm_hands_the_lease_over_at_once(daemon_env, vault_env, tmp_path, spawn,
                                                                  make_store, request):
    store = make_store("vault-kv2")
    fleet = targets(1)
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, backend_block("vault-kv2", request), fleet,
                       lease=f"replicas/{uuid.uuid4().hex[:8]}/leader", every="3s")
    first = spawn(cfg, "--replica-id", "first")
    wait_until(lambda: logged(first, LEADER) and generation(store, fleet[0][1]) >= 1, 30)
    second = spawn(cfg, "--replica-id", "second")
    wait_until(lambda: logged(second, "standing by as replica"), 30)
    first.send(signal.SIGTERM)
    assert first.wait() == 0 and logged(first, "released the leader lease")
    [took_over] = wait_until(lambda: logged(second, LEADER), 30, what="the standby taking the released lease")
    assert "it was free" in took_over["message"], "no TTL waited for"
    before = generation(store, fleet[0][1])
    wait_until(lambda: generation(store, fleet[0][1]) > before, 30, what="the new leader rotating on schedule")


PAUSING_DAEMON = """\
import pathlib, sys, time
from rotator.core.logs import setup_logging
from rotator.daemon import RotationDaemon

setup_logging("json")
marker, paused = pathlib.Path(sys.argv[2]), []

def hook(step, when, rotation_id):
    if step.value == "mint" and when == "before" and not paused:  # the first rotation, about to mint
        paused.append(rotation_id)
        marker.write_text(rotation_id)
        time.sleep(2)

daemon = RotationDaemon(sys.argv[1], listen="127.0.0.1:0", step_hook=hook, replica_id=sys.argv[3]).start()
sys.exit(daemon.run_forever())
"""


@pytest.mark.parametrize("kind", ["vault-kv2", "aws"])
def test_a_leader_paused_past_its_lease_steps_down_and_mints_nothing(
        kind, daemon_env, tmp_path, spawn, make_store, request, monkeypatch):
    if kind == "vault-kv2":
        monkeypatch.setenv(TOKEN_ENV, request.getfixturevalue("openbao").root_token)
    store = make_store(kind)
    [(name, path)] = fleet = targets(1)
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, backend_block(kind, request), fleet,
                       lease=f"replicas/{uuid.uuid4().hex[:8]}/leader")
    marker = tmp_path / "about-to-mint"
    paused = spawn(cfg, str(marker), "paused", script=PAUSING_DAEMON)
    wait_until(marker.exists, 30, what="the leader's first rotation reaching MINT")
    rotation_id = marker.read_text()
    paused.send(signal.SIGSTOP)  # frozen between READ and MINT, holding a lease nobody renews
    try:
        other = spawn(cfg, "--replica-id", "other")
        wait_until(lambda: logged(other, LEADER), 30, what="the other replica taking over")
        wait_until(lambda: generation(store, path) == 1, 30, what="the new leader's rotation")
    finally:
        paused.send(signal.SIGCONT)
    fenced = wait_until(lambda: [r for r in logged(paused, "nothing minted") if r.get("rotation_id") == rotation_id],
                        30, what="the woken replica refusing to mint")
    assert "not the leader" in fenced[0]["message"]
    assert logged(paused, "this replica is not the leader any more")
    wait_until(lambda: leader_gauge(paused, "paused") == 0.0, 10, what="the woken replica standing by")
    assert leader_gauge(other, "other") == 1.0
    assert daemon_env.mint_count == 1, "only the new leader minted"
    record = SecretRecord.loads(store.read(path).text)
    assert daemon_env.authenticates(record.access_token) and record.generation == 1
    with AccessClient(daemon_env.url, access_token=daemon_env.admin_token) as admin:
        assert tag_rotation(admin.get_token(record.token_id)["description"]) != rotation_id


def test_a_trigger_sent_to_a_standby_is_served_by_the_leader(daemon_env, vault_env, tmp_path, spawn, make_store,
                                                             request):
    store = make_store("vault-kv2")
    [(name, path)] = fleet = targets(1)
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, backend_block("vault-kv2", request), fleet,
                       lease=f"replicas/{uuid.uuid4().hex[:8]}/leader")
    leader = spawn(cfg, "--replica-id", "leader")
    wait_until(lambda: logged(leader, LEADER) and generation(store, path) == 1, 30)
    standby = spawn(cfg, "--replica-id", "standby")
    wait_until(lambda: logged(standby, "standing by as replica"), 30)
    answer = requests.post(f"{standby.url}/v1/trigger/{name}", headers={"X-Vault-Token": vault_env.root_token},
                           json={"reason": "rotate it now"}, timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.json()["served_by"] == "the leader, at its next reconcile pass"
    wait_until(lambda: generation(store, path) == 2, 30, what="the leader serving the flag")

    def flag_served():  # the log line comes after the rotation's last step, which follows the store write
        return [r for r in logged(leader, "rotation rotated") if r.get("reason", "").startswith("vault-flag")]
    [rotated] = wait_until(flag_served, 10, what="the leader's log line of the flag's rotation")
    assert "rotate it now" in rotated["reason"]
    assert not logged(standby, "rotation rotated") and logged(standby, f"trigger {name} accepted")
    assert daemon_env.mint_count == 2


# -- configuration ----------------------------------------------------------------------------
def daemon_cli(cfg: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rotator", "daemon", "-c", str(cfg), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_kv1_mount_cannot_hold_the_lease_and_the_daemon_refuses_to_start(
        daemon_env, vault_env, kv1_mount, tmp_path, make_store):
    lease = f"replicas/{uuid.uuid4().hex[:8]}/leader"
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{daemon_env.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          kv1: {{type: vault, url: "{vault_env.addr}", mount: {kv1_mount}, auth: {{method: token, token_env: {TOKEN_ENV}}}}}
        daemon: {{leader: {{backend: kv1, path: "{lease}"}}}}
        targets: [{{name: alpha, backend: kv1, path: "replicas/alpha", token: {{username: alpha, expiry: 4h}}}}]
        """))
    done = daemon_cli(cfg)
    assert done.returncode == 2, done.stderr
    assert "daemon.leader.backend: kv1:kv1: mount kv1/ is KV v1, which has no check-and-set: a leader lease " \
           "needs a KV v2 mount" in done.stderr
    assert "Traceback" not in done.stderr and daemon_env.mint_count == 0
    assert make_store("vault-kv1").read(lease).text is None


@pytest.mark.parametrize(("leader", "message"), [
    ("{backend: nope}", "daemon.leader.backend: no backend named 'nope' (defined: local)"),
    ("{backend: local, ttl: 1s}", "daemon.leader.ttl: must be at least 2s"),
    ("{backend: local, path: '../up'}", "daemon.leader.path: '../up' is not valid: a store path like"),
    ("{backend: local, colour: red}", "daemon.leader.colour: unknown key"),
    ("{ttl: 10s}", "daemon.leader.backend: is required"),
])
def test_bad_leader_settings_are_refused_naming_the_key(daemon_env, tmp_path, capsys, leader, message):
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{daemon_env.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                   "backends: {local: {type: file, directory: ./secrets}}\n"
                   f"daemon: {{leader: {leader}}}\n"
                   "targets: [{name: alpha, backend: local, token: {username: alpha, expiry: 4h}}]\n")
    assert run(["check-config", "-c", str(cfg)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "secrets").exists()


def test_a_bad_replica_id_is_refused(daemon_env, tmp_path):
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(f'jfrog: {{url: "{daemon_env.url}", access_token_env: JFROG_ADMIN_TOKEN}}\n'
                   "backends: {local: {type: file, directory: ./secrets}}\n"
                   "daemon: {leader: {backend: local}}\n"
                   "targets: [{name: alpha, backend: local, token: {username: alpha, expiry: 4h}}]\n")
    done = daemon_cli(cfg, "--replica-id", "two words")
    assert done.returncode == 2 and "--replica-id: 'two words' is not valid" in done.stderr
    assert not (tmp_path / "secrets").exists() and daemon_env.mint_count == 0
