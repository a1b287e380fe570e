"""The daemon against a real emulator and stores, with second-scale schedules."""

from __future__ import annotations

import logging
import signal
import textwrap
import time
from datetime import datetime, timedelta, timezone

import requests

from rotator.ops.control import DaemonControl
from tests.fixtures.daemon import file_record, wait_until, write_config

EVERY_2S = """\
- name: alpha
  backend: local
  token: {username: alpha, expiry: 1h}
  schedule: {every: 2s}
  overlap: 0s
"""


def generation(tmp_path, name):
    record = file_record(tmp_path, name)
    return record.generation if record else 0


def test_missing_tokens_are_rotated_at_start_and_then_on_schedule(daemon_env, tmp_path, start_daemon):
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S)
    started = time.monotonic()
    start_daemon(cfg)
    wait_until(lambda: generation(tmp_path, "alpha") >= 1, 5, what="the first rotation at start")
    first = file_record(tmp_path, "alpha").issued_at
    wait_until(lambda: generation(tmp_path, "alpha") >= 3, 10, what="two scheduled rotations")
    record = file_record(tmp_path, "alpha")
    elapsed = time.monotonic() - started
    assert record.generation <= elapsed / 2 + 2, "not rotated more often than the schedule"
    assert (record.issued_at - first).total_seconds() >= 2 * 2 - 1
    assert daemon_env.authenticates(record.access_token)


def test_before_expiry_follows_each_new_token(daemon_env, tmp_path, start_daemon):
    targets = """\
    - name: beta
      backend: local
      token: {username: beta, expiry: 6s, force_revocable: true}
      schedule: {before_expiry: 50%}
      overlap: 0s
    """
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets)
    start_daemon(cfg)
    wait_until(lambda: generation(tmp_path, "beta") >= 3, 15, what="rotations every ~3s")
    record = file_record(tmp_path, "beta")
    assert daemon_env.authenticates(record.access_token)
    assert record.expires_at - record.issued_at == timedelta(seconds=6)


def test_already_rotated_target_waits_for_its_due_time(daemon_env, tmp_path, start_daemon, capsys):
    from rotator.cli import run

    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S.replace("every: 2s", "every: 1h"))
    assert run(["rotate", "-c", str(cfg), "alpha"]) == 0
    daemon = start_daemon(cfg)
    assert timedelta(minutes=58) < next_run(daemon) - datetime.now(timezone.utc) <= timedelta(hours=1), \
        "start() planned the job for the due time"
    assert daemon.wake("alpha")  # a due check now finds it not due
    wait_until(lambda: daemon.runs_done("alpha") >= 1, 5, what="the due check")
    assert generation(tmp_path, "alpha") == 1 and daemon.runs_done("alpha") == 1
    assert timedelta(minutes=58) < next_run(daemon) - datetime.now(timezone.utc) <= timedelta(hours=1)


def next_run(daemon) -> datetime:
    [status] = daemon.status()
    return datetime.strptime(status["next_run"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_metrics_change_after_a_rotation_and_a_failure(daemon_env, tmp_path, start_daemon):
    targets = EVERY_2S + """\
- name: gamma
  backend: local
  token: {username: ghost, expiry: 1h}
  schedule: {every: 1h}
"""
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets)
    daemon = start_daemon(cfg)
    url = daemon.ops.url
    wait_until(lambda: 'jfrog_rotator_rotations_total{result="failed",target="gamma"} 1.0'
               in requests.get(url + "/metrics", timeout=5).text, 10, what="the failed rotation metric")

    def rotated_count() -> float:
        text = requests.get(url + "/metrics", timeout=5).text
        line = next((x for x in text.splitlines()
                     if x.startswith('jfrog_rotator_rotations_total{result="rotated",target="alpha"}')), None)
        return float(line.split()[-1]) if line else 0.0

    # the counter moves right after the store write: wait for the metric itself, not the file
    wait_until(lambda: rotated_count() >= 2, 10, what="two counted rotations")
    text = requests.get(url + "/metrics", timeout=5).text
    expiry = file_record(tmp_path, "alpha").expires_at.timestamp()
    assert any(line.startswith('jfrog_rotator_token_expiry_timestamp_seconds{target="alpha"}')
               and abs(float(line.split()[-1]) - expiry) <= 4 for line in text.splitlines())  # rotations are 2 s apart
    assert 'jfrog_rotator_last_success_timestamp_seconds{target="alpha"}' in text
    assert "jfrog_rotator_rotation_duration_seconds_count" in text
    assert "jfrog_rotator_retired_tokens" in text and "jfrog_rotator_sweep_revocations_total" in text
    assert 'last_success_timestamp_seconds{target="gamma"}' not in text


def test_health_ready_and_status_endpoints(daemon_env, tmp_path, start_daemon):
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S.replace("every: 2s", "every: 1h"))
    daemon = start_daemon(cfg, health_interval=0.5)
    assert isinstance(daemon, DaemonControl), "the endpoint and the triggers see the daemon through DaemonControl"
    url = daemon.ops.url
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(url + "/healthz", timeout=5).json() == {"alive": True}
    ready = wait_until(lambda: (r := requests.get(url + "/readyz", timeout=5)).status_code == 200 and r, 10)
    assert ready.json()["contacts"]["jfrog"]["ok"] is True and ready.json()["contacts"]["backend:local"]["ok"]
    wait_until(lambda: generation(tmp_path, "alpha") == 1, 5)
    [status] = requests.get(url + "/status", timeout=5).json()
    assert status["target"] == "alpha" and status["token_id"] == file_record(tmp_path, "alpha").token_id
    assert requests.get(url + "/nope", timeout=5).status_code == 404
    assert requests.post(url + "/status", timeout=5).status_code == 405
    daemon_env.inject_fault("/access/api/v1/system/ping", status=503, count=1000)
    wait_until(lambda: requests.get(url + "/readyz", timeout=5).status_code == 503, 10, what="not ready")


def test_json_logs_carry_target_step_rotation_id_and_no_secret(daemon_env, tmp_path, spawn):
    targets = EVERY_2S + """\
- name: gamma
  backend: local
  token: {username: ghost, expiry: 1h}
"""
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets)
    proc = spawn(cfg)
    wait_until(lambda: generation(tmp_path, "alpha") >= 2, 10)
    wait_until(lambda: any(r.get("outcome") == "failed" for r in proc.logs()), 10)
    proc.send(signal.SIGTERM)
    assert proc.wait() == 0
    logs = proc.logs()
    assert all(not r.get("raw") for r in logs), [r for r in logs if r.get("raw")][:3]
    rotated = [r for r in logs if r.get("message") == "rotation rotated"]
    assert rotated and {"target", "rotation_id", "duration", "reason"} <= rotated[0].keys()
    failed = [r for r in logs if r.get("outcome") == "failed" and r.get("target") == "gamma"]
    assert failed and failed[0]["step"] == "mint" and failed[0]["level"] == "error"
    text = proc.log_path.read_text()
    assert daemon_env.admin_token not in text and file_record(tmp_path, "alpha").access_token not in text


def test_sigterm_mid_rotation_finishes_it_and_exits_0(daemon_env, tmp_path, spawn):
    marker = tmp_path / "in-store-step"
    script = textwrap.dedent(f"""\
        import sys, time, pathlib
        from rotator.daemon import RotationDaemon
        from rotator.core.logs import setup_logging
        setup_logging("json")

        def hook(step, when, rid):
            if step.value == "store" and when == "before":
                pathlib.Path({str(marker)!r}).write_text(rid)
                time.sleep(1.5)

        daemon = RotationDaemon(sys.argv[1], listen="127.0.0.1:0", step_hook=hook).start()
        sys.exit(daemon.run_forever())
        """)
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S.replace("every: 2s", "every: 1h"))
    proc = spawn(cfg, script=script)
    wait_until(marker.exists, 10, what="the rotation to reach the store step")
    proc.send(signal.SIGTERM)
    assert proc.wait() == 0
    record = file_record(tmp_path, "alpha")
    assert record is not None, "the in-flight rotation finished before the exit"
    assert daemon_env.authenticates(record.access_token)
    assert daemon_env.live_token_count(description_prefix="jfrog-rotator:alpha:") == 1
    assert any("stopping after in-flight rotations" in r.get("message", "") for r in proc.logs())


def test_sighup_adds_and_removes_targets(daemon_env, tmp_path, spawn):
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S.replace("every: 2s", "every: 1h"))
    proc = spawn(cfg)
    wait_until(lambda: generation(tmp_path, "alpha") == 1, 10)
    write_config(cfg, daemon_env, EVERY_2S.replace("every: 2s", "every: 1h").replace("alpha", "beta"))
    proc.send(signal.SIGHUP)
    wait_until(lambda: generation(tmp_path, "beta") == 1, 10, what="the added target's first rotation")
    assert [s["target"] for s in proc.get("/status").json()] == ["beta"]
    assert any("config reloaded: 1 target(s), 1 added, 1 removed" in r.get("message", "") for r in proc.logs())


def test_broken_config_on_reload_is_refused(daemon_env, tmp_path, spawn):
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, EVERY_2S.replace("every: 2s", "every: 1h"))
    proc = spawn(cfg)
    wait_until(lambda: generation(tmp_path, "alpha") == 1, 10)
    cfg.write_text(cfg.read_text().replace("expiry: 1h", "expiry: whenever"))
    proc.send(signal.SIGHUP)
    refused = wait_until(lambda: next((r for r in proc.logs() if "reload refused" in r.get("message", "")), None), 10)
    assert "targets[0].token.expiry" in refused["message"] and refused["level"] == "error"
    assert proc.proc.poll() is None
    assert [s["target"] for s in proc.get("/status").json()] == ["alpha"]
    assert proc.get("/healthz").status_code == 200


def test_two_daemons_rotate_each_target_once_per_due_time(daemon_env, tmp_path, spawn):
    # 4 h tokens: JFrog stores (so lists and revokes) only tokens of 3 h or more, which the final
    # sweep relies on
    targets = "\n".join(f"""\
- name: {name}
  backend: local
  token: {{username: {name}, expiry: 4h}}
  schedule: {{every: 3s}}
  overlap: 0s
  orphan_grace: 0s""" for name in ("alpha", "beta"))
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets, daemon="sweep_interval: 2s")
    started = time.monotonic()
    first, second = spawn(cfg), spawn(cfg)

    def saw_each_other() -> int:
        """Due checks that found a target already rotated by the other daemon, and lost races."""
        return sum(1 for p in (first, second) for r in p.logs() if r.get("outcome") == "skipped"
                   or "lost the compare-and-set race" in r.get("message", ""))

    wait_until(lambda: all(generation(tmp_path, name) >= 3 for name in ("alpha", "beta")) and saw_each_other(),
               30, what="three generations of each target, one seen by both daemons")
    for proc in (first, second):
        proc.send(signal.SIGTERM)
    assert first.wait() == 0 and second.wait() == 0
    elapsed = time.monotonic() - started
    for name in ("alpha", "beta"):
        record = file_record(tmp_path, name)
        # at most one rotation per due time: one at start, then one per 3 s; a token's issued_at is
        # in whole seconds (floored), so a due time can come up to 1 s before started + 3 s * k
        assert 2 <= record.generation <= (elapsed + 1) / 3 + 1, (name, record.generation, elapsed)
        assert daemon_env.authenticates(record.access_token)
    # every token minted is stored, retired or revoked: after a final sweep nothing else lives
    from rotator.cli import run

    assert run(["sweep", "-c", str(cfg)]) == 0
    for name in ("alpha", "beta"):
        record = file_record(tmp_path, name)
        known = {record.token_id} | {r.token_id for r in record.retired}
        assert daemon_env.live_token_count(description_prefix=f"jfrog-rotator:{name}:") == len(known)
    assert saw_each_other() >= 1, "the second daemon saw the first one's rotations"


def test_vault_token_is_renewed_and_approle_relogin_after_expiry(daemon_env, tmp_path, start_daemon, openbao,
                                                                 monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    policy = ('path "secret/data/jfrog/*" { capabilities = ["create", "read", "update"] }\n'
              'path "secret/metadata/jfrog/*" { capabilities = ["read", "patch", "list"] }')
    openbao.write_policy("daemon-test", policy)
    openbao.enable_approle()
    role_id, secret_id = openbao.make_approle("daemon-short", ["daemon-test"], token_ttl="3s", token_max_ttl="5s")
    renewable = openbao.create_token(["daemon-test"], ttl="4s", renewable=True)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    monkeypatch.setenv("SHORT_VAULT_TOKEN", renewable)
    backends = f"""\
    renewing: {{type: vault, url: "{openbao.addr}", auth: {{method: token, token_env: SHORT_VAULT_TOKEN}}}}
    approle: {{type: vault, url: "{openbao.addr}", auth: {{method: approle, role_id: {role_id}, secret_id_env: VAULT_SECRET_ID}}}}
    """
    suffix = str(time.monotonic_ns())
    targets = f"""\
    - {{name: alpha, backend: renewing, path: jfrog/a-{suffix}, token: {{username: alpha, expiry: 1h}}, schedule: {{every: 2s}}}}
    - {{name: beta, backend: approle, path: jfrog/b-{suffix}, token: {{username: beta, expiry: 1h}}, schedule: {{every: 2s}}}}
    """
    cfg = write_config(tmp_path / "rotator.yaml", daemon_env, targets, backends=backends)
    daemon = start_daemon(cfg, auth_check_interval=1.0)

    def logged(text: str) -> bool:
        return any(text in r.getMessage() for r in list(caplog.records))

    # past the renewable token's TTL and the AppRole token's max TTL: renewed, then logged in again
    wait_until(lambda: logged("vault auth for backend renewing: renewed")
               and logged("vault auth for backend approle: relogin"), 20, what="a renewal and a relogin")
    runs = {name: daemon.runs_done(name) for name in ("alpha", "beta")}
    wait_until(lambda: all(daemon.runs_done(name) >= n + 2 for name, n in runs.items()), 15,
               what="a whole job run of each target after the relogin")
    status = {s["target"]: s for s in daemon.status()}
    for name in ("alpha", "beta"):
        assert status[name]["generation"] >= 3, status[name]
        assert status[name]["last_error"] is None
    assert daemon.config.backends["renewing"].token_ttl() > 0, "the renewable token is still alive"
    assert renewable not in caplog.text and secret_id not in caplog.text
