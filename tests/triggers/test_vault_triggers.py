"""Vault-triggered renewal against a real OpenBao: flags, requests, near-expiry, the HTTP
trigger, the shipped policies, manual overwrites, several daemons, and the events adapter."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import hvac
import pytest
import requests

from rotator.cli import run
from rotator.config import load_config
from rotator.triggers.reconcile import VaultReconciler
from tests.fixtures.daemon import bootstrap, wait_until, write_config
from tests.fixtures.stores import still_known
from tests.fixtures.vault_root import current, metadata, root_client


def generation(openbao, path) -> int:
    return current(openbao, path)["rotator"]["generation"]


def test_flag_is_served_within_two_polls_and_cleared(vault_setup, start_daemon, openbao, requester_token,
                                                     monkeypatch, capsys):
    config = vault_setup()
    bootstrap(config)
    daemon = start_daemon(config)
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    passes_before = daemon.reconciler.passes
    assert run(["trigger", "-c", str(config), "alpha", "--reason", "CHG-42"]) == 0
    assert "rotate_requested=true set on secret/metadata/" in capsys.readouterr().out
    wait_until(lambda: generation(openbao, vault_setup.path) == 2, 10, what="the flag to be served")
    [(seen_in_pass, _, reason)] = [a for a in daemon.reconciler.asked if a[1] == "alpha"]
    assert seen_in_pass - passes_before <= 2, "served within two poll intervals"
    assert reason.startswith("vault-flag")
    meta = metadata(openbao, vault_setup.path)["custom_metadata"]
    assert meta["rotate_requested"] == "false"
    assert meta["last_reason"].startswith("vault-flag by ") and meta["last_reason"].endswith(": CHG-42")
    started = daemon.reconciler.passes  # every later pass reads the cleared flag
    wait_until(lambda: daemon.reconciler.passes_done > started and daemon.runs_done("alpha") >= 1, 10,
               what="a whole reconcile pass after the flag was cleared")
    assert [a for a in daemon.reconciler.asked if a[1] == "alpha"] == [(seen_in_pass, "alpha", reason)], \
        "a served flag is not asked for again"
    assert generation(openbao, vault_setup.path) == 2 and daemon.runs_done("alpha") == 1


def test_request_object_is_served_recorded_and_deleted(vault_setup, start_daemon, openbao, requester_token,
                                                        monkeypatch, capsys):
    config = vault_setup()
    bootstrap(config)
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    assert run(["trigger", "-c", str(config), "alpha", "--request", "--reason", "ticket 7"]) == 0
    assert "request written to secret/jfrog-rotator-requests/alpha/" in capsys.readouterr().out
    start_daemon(config)
    wait_until(lambda: generation(openbao, vault_setup.path) == 2, 5)
    meta = metadata(openbao, vault_setup.path)["custom_metadata"]
    assert meta["last_reason"].startswith("request:") and meta["last_reason"].endswith(": ticket 7")
    keys = lambda: root_client(openbao).secrets.kv.v2.list_secrets(  # noqa: E731
        "jfrog-rotator-requests/alpha", mount_point="secret")["data"]["keys"]
    wait_until(lambda: _gone(keys), 5, what="the request to be deleted")
    assert generation(openbao, vault_setup.path) == 2


def _gone(list_keys) -> bool:
    try:
        return not list_keys()
    except hvac.exceptions.InvalidPath:
        return True


def test_near_expiry_rotates(vault_setup, start_daemon, openbao):
    config = vault_setup(expiry="10s", extra_backend=", renew_before: 8s", schedule="{every: 1h}")
    bootstrap(config)
    start_daemon(config)
    wait_until(lambda: generation(openbao, vault_setup.path) >= 2, 8, what="the near-expiry rotation")
    assert metadata(openbao, vault_setup.path)["custom_metadata"]["last_reason"] == "near-expiry"


def test_requester_policy_can_trigger_but_not_read_the_token(vault_setup, openbao, requester_token, monkeypatch,
                                                             capsys):
    config = vault_setup()
    bootstrap(config)
    requester = hvac.Client(url=openbao.addr, token=requester_token)
    with pytest.raises(hvac.exceptions.Forbidden):
        requester.secrets.kv.v2.read_secret_version(vault_setup.path, mount_point="secret",
                                                    raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        requester.secrets.kv.v2.read_secret_metadata(vault_setup.path, mount_point="secret")
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    assert run(["trigger", "-c", str(config), "alpha"]) == 0
    assert run(["trigger", "-c", str(config), "alpha", "--request"]) == 0
    assert metadata(openbao, vault_setup.path)["custom_metadata"]["rotate_requested"] == "true"


def test_trigger_on_a_requester_machine_without_the_daemons_credentials(vault_setup, openbao, requester_token,
                                                                        monkeypatch, capsys):
    """The config names the daemon's token (``$DAEMON_VAULT_TOKEN``), absent where the requester
    runs; with ``kv_version: auto`` the KV version is then asked with the requester's own token,
    which the shipped requester policy allows (and nothing else about the token's secret)."""
    config = vault_setup()
    bootstrap(config)
    monkeypatch.delenv("DAEMON_VAULT_TOKEN")
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    assert run(["trigger", "-c", str(config), "alpha", "--reason", "from CI"]) == 0
    assert "rotate_requested=true set on secret/metadata/" in capsys.readouterr().out
    assert metadata(openbao, vault_setup.path)["custom_metadata"]["rotate_requested"] == "true"


def test_trigger_command_errors(vault_setup, openbao, monkeypatch, capsys, tmp_path, daemon_env):
    config = vault_setup()
    bootstrap(config)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("BAO_TOKEN", raising=False)
    assert run(["trigger", "-c", str(config), "alpha"]) == 2
    assert "no Vault token: export VAULT_TOKEN or BAO_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("VAULT_TOKEN", openbao.create_token(["default"]))
    assert run(["trigger", "-c", str(config), "alpha"]) == 1
    assert "request rotation: permission denied" in capsys.readouterr().err
    assert run(["trigger", "-c", str(config), "nope"]) == 2
    assert "no target named 'nope'" in capsys.readouterr().err
    assert metadata(openbao, vault_setup.path)["custom_metadata"].get("rotate_requested") == "false"


def test_http_trigger(vault_setup, start_daemon, openbao, requester_token):
    config = vault_setup(reconcile="1h")  # only the HTTP trigger can make it rotate in time
    bootstrap(config)
    daemon = start_daemon(config)
    url = daemon.ops.url + "/v1/trigger/"
    nobody = openbao.create_token(["default"])
    assert requests.post(url + "alpha", timeout=10).status_code == 401
    assert requests.post(url + "nope", headers={"X-Vault-Token": requester_token}, timeout=10).status_code == 404
    refused = requests.post(url + "alpha", headers={"X-Vault-Token": nobody}, timeout=10)
    assert refused.status_code == 403 and "needs patch on secret/metadata/" in refused.json()["error"]
    bogus = requests.post(url + "alpha", headers={"X-Vault-Token": "hvs." + "x" * 24}, timeout=10)
    assert bogus.status_code == 403
    # each refusal was decided before it was answered: none of them set the flag
    assert metadata(openbao, vault_setup.path)["custom_metadata"]["rotate_requested"] == "false"
    accepted = requests.post(url + "alpha", headers={"X-Vault-Token": requester_token},
                             data=json.dumps({"reason": "pager"}), timeout=10)
    assert accepted.status_code == 202 and accepted.json()["accepted"] is True
    wait_until(lambda: metadata(openbao, vault_setup.path)["custom_metadata"]["last_reason"].endswith(": pager")
               and daemon.runs_done("alpha") >= 1, 5, what="the HTTP-triggered rotation")
    assert generation(openbao, vault_setup.path) == 2 and daemon.runs_done("alpha") == 1, \
        "the accepted trigger rotated once; the refused ones rotated nothing"
    again = requests.post(url + "alpha", headers={"X-Vault-Token": requester_token}, timeout=10)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1


def test_manual_overwrite_is_reported_not_clobbered_then_adopted(vault_setup, start_daemon, openbao, daemon_env,
                                                                 capsys):
    config = vault_setup(schedule="{every: 2s}")
    bootstrap(config)
    root = root_client(openbao)
    dead = dict(current(openbao, vault_setup.path), access_token="hand-written-" + uuid.uuid4().hex)
    root.secrets.kv.v2.create_or_update_secret(vault_setup.path, secret=dead, mount_point="secret")
    daemon = start_daemon(config)
    url = daemon.ops.url
    status = wait_until(lambda: next((s for s in requests.get(url + "/status", timeout=5).json()
                                      if "its token does not work" in (s["last_error"] or "")), None), 6,
                        what="the overwrite report")
    assert status["state"] == "foreign-write" and "written by hand" in status["last_error"]
    assert 'jfrog_rotator_foreign_writes{target="alpha"} 1.0' in requests.get(url + "/metrics", timeout=5).text
    wait_until(lambda: daemon.runs_done("alpha") >= 1, 6, what="the run the 2 s schedule made due")
    assert current(openbao, vault_setup.path)["access_token"] == dead["access_token"], "not overwritten"
    capsys.readouterr()
    assert run(["status", "-c", str(config), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "foreign-write"
    minted = daemon_env.create_token("alpha", expires_in=3600)
    good = dict(dead, access_token=minted["access_token"], token_id=minted["token_id"])
    root.secrets.kv.v2.create_or_update_secret(vault_setup.path, secret=good, mount_point="secret")
    wait_until(lambda: metadata(openbao, vault_setup.path)["custom_metadata"].get("last_reason")
               in ("adopted a manual write", "schedule"), 6, what="the adoption")
    wait_until(lambda: all(s["state"] != "foreign-write" for s in requests.get(url + "/status", timeout=5).json()),
               6)
    assert 'jfrog_rotator_foreign_writes{target="alpha"} 0.0' in requests.get(url + "/metrics", timeout=5).text


def test_two_daemons_serve_one_request_once(vault_setup, start_daemon, openbao, requester_token, monkeypatch,
                                            daemon_env):
    config = vault_setup(expiry="4h")  # JFrog lists (and the sweep finds) only tokens of 3 h or more
    bootstrap(config)
    first, second = start_daemon(config), start_daemon(config)
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    assert run(["trigger", "-c", str(config), "alpha", "--request"]) == 0
    wait_until(lambda: generation(openbao, vault_setup.path) == 2, 30)
    started = {daemon: daemon.reconciler.passes for daemon in (first, second)}
    wait_until(lambda: all(d.reconciler.passes_done >= n + 2 for d, n in started.items()), 30,
               what="two more passes of both loops")
    assert not [a for d, n in started.items() for a in d.reconciler.asked if a[0] > n], \
        "a served request is not asked for again"
    assert generation(openbao, vault_setup.path) == 2
    assert run(["sweep", "-c", str(config)]) == 0
    loaded = load_config(config)
    try:
        known = still_known(loaded.backends["vault-main"], vault_setup.path)
    finally:
        loaded.close()
    assert daemon_env.live_token_count(description_prefix="jfrog-rotator:alpha:") == len(known)
    assert all(daemon_env.is_token_active(token_id) for token_id in known)
    assert first.status()[0]["generation"] == second.status()[0]["generation"] == 2


def test_events_adapter_switches_itself_off_on_openbao(vault_setup, start_daemon, caplog):
    caplog.set_level(logging.WARNING)
    config = vault_setup(extra_backend=", events: true")
    daemon = start_daemon(config)
    wait_until(lambda: all(not listener.thread.is_alive() for listener in daemon.event_listeners), 10)
    assert len(daemon.event_listeners) == 2
    assert all(listener.disabled_reason for listener in daemon.event_listeners)
    warnings = [r.getMessage() for r in caplog.records if "switched off" in r.getMessage()]
    assert len(warnings) == 2 and "reconcile loop" in warnings[0]
    assert requests.get(daemon.ops.url + "/healthz", timeout=5).status_code == 200


def test_a_request_older_than_the_current_version_was_served_and_is_only_deleted(vault_setup, openbao,
                                                                                 requester_token, monkeypatch):
    """Another replica rotated for the request and has not deleted it yet: seen now, it is served
    (by Vault's clock: the current version was written after the request), so nothing is minted."""
    config_path = vault_setup()
    bootstrap(config_path)
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    assert run(["trigger", "-c", str(config_path), "alpha", "--request"]) == 0
    monkeypatch.delenv("VAULT_TOKEN")
    assert run(["rotate", "-c", str(config_path), "alpha", "--reason", "served by another replica"]) == 0
    config = load_config(config_path)
    try:
        target = config.target("alpha")
        backend = config.backends[target.backend]
        waiting = backend.requests_for("alpha")
        assert len(waiting) == 1
        decision = VaultReconciler(daemon=None).decide(target, backend, waiting, datetime.now(timezone.utc))
        assert decision.reason is None and decision.served == tuple(waiting)
        # ... while a request made after the current version is still to be served
        monkeypatch.setenv("VAULT_TOKEN", requester_token)
        assert run(["trigger", "-c", str(config_path), "alpha", "--request"]) == 0
        fresh = backend.requests_for("alpha")
        decision = VaultReconciler(daemon=None).decide(target, backend, fresh, datetime.now(timezone.utc))
        assert decision.reason and decision.reason.startswith("request:") and decision.requests == tuple(fresh)
    finally:
        config.close()
    assert generation(openbao, vault_setup.path) == 2


class _Asked:
    """The part of the daemon a reconcile pass talks to, recording the rotations it is asked for."""

    def __init__(self, config) -> None:
        self.config = config
        self.stopping = False
        self.runs: dict[str, tuple[str, object]] = {}

    def run_now(self, name, reason, *, only_if_version=None, requests=()) -> bool:
        self.runs[name] = (reason, only_if_version)
        return True

    def set_foreign(self, name, problem) -> None:
        assert problem is None, problem


def test_a_pass_over_many_targets_reads_them_a_few_at_a_time_and_asks_for_each_flagged_one(
        daemon_env, tmp_path, openbao, daemon_token, requester_token, monkeypatch):
    monkeypatch.setenv("DAEMON_VAULT_TOKEN", daemon_token)
    suffix = uuid.uuid4().hex[:6]
    names = [f"many{i}" for i in range(12)]
    daemon_env.create_user("many")
    targets = "\n".join(f"- {{name: {n}-{suffix}, backend: vault-main, path: jfrog/{n}-{suffix}, "
                        "token: {username: many, expiry: 4h}}" for n in names)
    config_path = write_config(tmp_path / "rotator.yaml", daemon_env, targets,
                               backends=f"vault-main: {{type: vault, url: '{openbao.addr}', "
                                        "auth: {method: token, token_env: DAEMON_VAULT_TOKEN}}")
    bootstrap(config_path)
    flagged = {f"{n}-{suffix}" for n in names[::4]}
    monkeypatch.setenv("VAULT_TOKEN", requester_token)
    for name in sorted(flagged):
        assert run(["trigger", "-c", str(config_path), name]) == 0
    config = load_config(config_path)
    try:
        daemon = _Asked(config)
        reconciler = VaultReconciler(daemon)
        assert reconciler.reconcile_backend("vault-main") == len(flagged)
        assert set(daemon.runs) == flagged
        for name, (reason, version) in daemon.runs.items():
            path = config.by_name[name].path
            assert reason.startswith("vault-flag") and version == metadata(openbao, path)["current_version"]
        assert reconciler.passes == reconciler.passes_done == 1
    finally:
        config.close()
