"""Suite 5, secrets stay secret (docs/reliability.md): every secret issued during a case (the
emulator's tokens, refresh and reference tokens, the admin token, the OpenBao root token, every
Vault token the product logs in with and the AppRole secret id, the AWS keys) is searched for in
every text the product wrote: log records at every level, real ``jfrog-rotator --debug``
processes' stdout and stderr (succeeding and failing commands), errors and tracebacks forced at
each step, ``status`` (text and JSON), the daemon's endpoints, the Lambda's logs, ``token create``'s
stderr and the demo's output. Also TLS: a wrong CA and a wrong client certificate are refused with
a clear error, and verification is never off without a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import ssl
import subprocess
import traceback
import uuid
from pathlib import Path

import pytest
import requests
import trustme

from rotator.cli import run
from rotator.config import load_config
from rotator.config.wiring import build_engine, jfrog_client
from rotator.emulator import Emulator
from rotator.engine import RotationStep
from tests.fixtures.daemon import ROOT, wait_until
from tests.fixtures.openbao import free_port
from tests.fixtures.tcp_proxy import TcpProxy
from tests.reliability.harness import check_config
from tests.reliability.secrets_world import (
    CLI,
    JsonCapture,
    TlsServer,
    World,
    check_all,
    lambda_harness,
    make_world,
    write_world_config,
)

SUITE = "secrets"

TOKENS = "/access/api/v1/tokens"


@pytest.fixture
def world(tmp_path, emulator, openbao, moto_server, ledger, monkeypatch, cli_env) -> World:
    monkeypatch.chdir(tmp_path)
    capture = JsonCapture(ledger)
    logging.getLogger().addHandler(capture)
    try:
        yield make_world(tmp_path, emulator, openbao, moto_server, ledger, monkeypatch)
    finally:
        logging.getLogger().removeHandler(capture)


def test_debug_processes_succeeding_and_failing_leak_nothing(world, emulator, ledger, tally):
    """Real ``jfrog-rotator --debug`` processes: rotate, status (text, JSON), sweep, check-config
    --online, and rotations failing at the mint and at the Vault login (JFrog echoing a token in an
    error is in the in-process case below)."""
    world.cli("rotate", "--all", where="rotate first")
    world.cli("status", where="status text")
    status = world.cli("status", "--format", "json", where="status json")
    assert {s["name"] if "name" in s else s["target"] for s in json.loads(status.stdout)} == {
        "file-ci", "approle-ci", "vtoken-ci", "aws-ci", "aws-docker"}
    world.cli("sweep", "--all", where="sweep")
    world.cli("check-config", "--online", where="check-config --online")
    emulator.inject_fault(TOKENS, method="POST", status=403, count=20)
    failed = world.cli("rotate", "--all", expect=1, where="rotate, mint fails")
    assert "create token failed (POST /access/api/v1/tokens): server response: 403" in failed.stdout
    emulator.clear_faults()
    bad = world.cli("rotate", "approle-ci", expect=1, env={"VAULT_SECRET_ID": "not-the-secret-id-0"},
                    where="rotate, AppRole login refused")
    assert "login" in bad.stderr
    check_config(world.config, emulator, tally)
    ledger.emulator(emulator)
    tally.add(processes=7, faults=2)
    check_all(ledger, tally)


def test_errors_forced_at_each_step_leak_nothing(world, emulator, openbao, moto_server, ledger, tally):
    """Each step of a rotation of every target fails for real (the store's connection cut, JFrog
    refusing the mint, the verify, the revoke): results, errors, logs (DEBUG, JSON with their extra
    fields) and the tracebacks of the exceptions raised by the stores and JFrog client are searched."""
    host, port = openbao.addr.rsplit(":", 1)
    vault_proxy = TcpProxy(host.split("//")[1], int(port)).start()
    aws_proxy = TcpProxy("127.0.0.1", int(moto_server.url.rsplit(":", 1)[1])).start()
    try:
        config_path = write_world_config(world, world.tmp / "proxied.yaml", world.role_id,
                                         vault_url=vault_proxy.url, moto_url=aws_proxy.url)
        assert run(["rotate", "-c", str(config_path), "--all"]) == 0
        faults = {
            (RotationStep.READ, "before"): lambda: cut(True),
            (RotationStep.MINT, "before"): lambda: emulator.inject_fault(TOKENS, method="POST", status=403, count=9),
            # 400: not one a fresh token's propagation explains (401/403/404 are retried for 3 s).
            (RotationStep.VERIFY, "before"): lambda: emulator.inject_fault(f"{TOKENS}/me", status=400, count=9),
            (RotationStep.STORE, "before"): lambda: cut(True),
            (RotationStep.RETIRE, "before"): lambda: emulator.inject_fault(TOKENS + "/", method="DELETE",
                                                                           status=403, count=9),
        }

        def cut(on: bool) -> None:
            for proxy in (vault_proxy, aws_proxy):
                (proxy.refuse.set if on else proxy.refuse.clear)()

        # JFrog's steps fail the same whatever the store: one target each; the stores' steps on
        # each network store (the file store has no connection to cut).
        network = {"approle-ci", "vtoken-ci", "aws-ci"}
        aimed = {RotationStep.READ: network, RotationStep.MINT: {"file-ci", "approle-ci"},
                 RotationStep.VERIFY: {"vtoken-ci"}, RotationStep.STORE: network, RotationStep.RETIRE: {"aws-ci"}}
        results = []
        for (step, when), fault in faults.items():
            fired = []

            def hook(s, w, rid, step=step, when=when, fault=fault, fired=fired):
                if (s, w) == (step, when) and not fired:
                    fired.append(1)
                    fault()

            config = load_config(config_path)
            try:
                engine = build_engine(config, step_hook=hook)
                for target in config.targets:
                    fired.clear()
                    if target.name not in aimed[step]:
                        continue
                    result = engine.rotate(target)
                    results.append((step, target.name, result))
                    ledger.text(f"result {step.value} {target.name}", json.dumps(result.to_json()))
                    cut(False)
                    emulator.clear_faults()
            finally:
                config.close()
        outcomes = {(s.value, name): (r.outcome, r.step, len(r.revoked)) for s, name, r in results}
        assert {k: v[:2] for k, v in outcomes.items() if k[0] != "retire"} == {
            (s.value, name): ("failed", s.value) for s, names in aimed.items() for name in names
            if s is not RotationStep.RETIRE}
        # A revoke refused leaves the rotation done and the previous token retired (a sweep revokes it).
        assert outcomes[("retire", "aws-ci")] == ("rotated", None, 0)
        assert [r.status for r in emulator.requests if r.method == "DELETE"][-1:] == [403]
        tally.add(faults=len(results))

        # The exceptions themselves, with their chained causes, as a traceback shows them.
        config = load_config(config_path)
        try:
            cut(True)
            for target in config.targets:
                try:
                    config.backends[target.backend].read(target.path)
                except Exception as exc:  # noqa: BLE001 - every failure is searched
                    ledger.text(f"traceback read {target.name}", "".join(traceback.format_exception(exc)))
            cut(False)
            emulator.inject_fault(TOKENS, method="POST", status=400, count=1,
                                  body=json.dumps({"errors": [{"message": f"bad {emulator.admin_token}"}]}))
            client, _ = jfrog_client(config.jfrog)
            with pytest.raises(Exception) as err:
                client.create_token(username="ci", expires_in=600)
            client.close()
            ledger.text("traceback create_token", "".join(traceback.format_exception(err.value)))
            tally.add(faults=len(config.targets) + 1)
        finally:
            config.close()
    finally:
        vault_proxy.stop()
        aws_proxy.stop()
    # A refresh ends the stored token at once, so the refresh target whose STORE failed holds a dead
    # token until its next rotation, which falls back to recreate (docs/architecture.md#strategies).
    assert run(["rotate", "-c", str(world.config), "approle-ci"]) == 0
    check_config(world.config, emulator, tally, swept=False)
    ledger.emulator(emulator)
    check_all(ledger, tally)


def test_the_daemon_endpoints_and_logs_leak_nothing(world, emulator, ledger, tally, start_daemon):
    """The in-process daemon rotates every target (one of them failing at the mint): ``/status``,
    ``/metrics``, ``/healthz``, ``/readyz`` and its logs hold no secret."""
    config = world.config
    config.write_text(config.read_text() + "daemon: {sweep_interval: 1s}\n")
    emulator.inject_fault(TOKENS, method="POST", status=403, count=1)
    daemon = start_daemon(config)
    url = daemon.ops.url
    bodies = {}

    outcomes: dict[str, set[str]] = {}

    def all_done():
        bodies["metrics"] = requests.get(f"{url}/metrics", timeout=5).text
        outcomes.clear()
        for result, target in re.findall(r'^jfrog_rotator_rotations_total\{result="(\w+)",target="([\w-]+)"\} [1-9]',
                                         bodies["metrics"], re.M):
            outcomes.setdefault(result, set()).add(target)
        # The failed target is retried after 15 s of back-off: not waited for.
        return len(outcomes.get("failed", ())) == 1 and len(outcomes.get("rotated", ())) == 4

    wait_until(all_done, 30, what="four targets rotated, one failed")
    for path in ("status", "metrics", "healthz", "readyz"):
        answer = requests.get(f"{url}/{path}", timeout=5)
        bodies[path] = answer.text
        ledger.text(f"daemon /{path}", answer.text)
    assert len(json.loads(bodies["status"])) == 5
    daemon.stop()
    check_config(config, emulator, tally, swept=False, targets=outcomes["rotated"])
    ledger.emulator(emulator)
    tally.add(faults=1)
    check_all(ledger, tally)


def test_the_lambda_logs_leak_nothing(world, moto_server, emulator, monkeypatch, ledger, tally, capsys):
    """Two rotations by the Lambda on moto, and one failing at createSecret (the mint refused)."""
    harness = lambda_harness(moto_server, emulator, monkeypatch, ledger)
    try:
        arn, _ = harness.seeded_secret(username="lambda-ci")
        harness.rotate(arn)
        harness.rotate(arn)
        emulator.inject_fault(TOKENS, method="POST", status=403, count=1)
        harness.rotate(arn)
        assert [step for step, _ in harness.failures] == ["createSecret"]
        for step, exc in harness.failures:
            ledger.text(f"lambda {step} traceback", "".join(traceback.format_exception(exc)))
        captured = capsys.readouterr()
        ledger.text("lambda stdout", captured.out)
        ledger.text("lambda stderr", captured.err)
        assert sum(text.count('"step"') for where, text in ledger.texts if "rotator.aws_lambda" in where) >= 9
    finally:
        harness.close()
    ledger.emulator(emulator)
    tally.add(faults=1)
    check_all(ledger, tally)


def test_token_create_prints_the_token_on_stdout_only(world, emulator, ledger, tally):
    """``token create --debug``: stdout is the token (by design, so it is left out of the search);
    stderr holds no secret; a refused create prints its error with none either."""
    conn = ["--url", emulator.url, "--access-token", emulator.admin_token]
    made = world.cli("token", "create", "ci", *conn, "--expiry", "3600", stdout_is_secret=True)
    printed = json.loads(made.stdout)
    assert emulator.authenticates(printed["access_token"])
    emulator.inject_fault(TOKENS, method="POST", status=403, count=1)
    world.cli("token", "create", "ci", *conn, "--format", "json", expect=1, where="token create refused")
    ledger.emulator(emulator)
    assert printed["access_token"] in ledger.secrets
    tally.add(processes=2, faults=1)
    check_all(ledger, tally)


# -- TLS ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_cert(ca):
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def https_emulator(server_cert, ca, signing_key):
    """The emulator over HTTPS with a certificate of the session's CA, requiring no client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    emu = Emulator(ssl_context=ctx, signing_key=signing_key).start()
    yield emu
    emu.stop()


@pytest.fixture
def mtls_emulator(server_cert, ca, signing_key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    emu = Emulator(ssl_context=ctx, signing_key=signing_key).start()
    yield emu
    emu.stop()


def tls_config(tmp_path, emulator, jfrog_extra: str = "", backends: str = "", targets: str = "") -> Path:
    path = tmp_path / "tls.yaml"
    path.write_text(f"""\
jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN{jfrog_extra}}}
backends:
  files: {{type: file, directory: ./secrets}}
{backends}targets:
  - {{name: ci, backend: files, path: ci, overlap: 0s, token: {{username: ci, expiry: 7d}}}}
{targets}""")
    return path


def pem(tmp_path, name: str, blob) -> str:
    blob.write_to_path(str(tmp_path / name))
    return str(tmp_path / name)


def test_a_wrong_ca_is_refused_with_a_clear_error(https_emulator, server_cert, ca, tmp_path, monkeypatch, cli_env,
                                                  capsys, ledger, tally):
    """JFrog over HTTPS and a Vault store over HTTPS, each checked against another CA: the run fails
    naming TLS and the setting to check; nothing is minted, nothing stored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", https_emulator.admin_token)
    https_emulator.create_user("ci")
    other = pem(tmp_path, "other-ca.pem", trustme.CA().cert_pem)
    config = tls_config(tmp_path, https_emulator, f", ca_bundle: {other}")
    assert run(["--debug", "rotate", "-c", str(config), "--all"]) == 1
    out = capsys.readouterr()
    ledger.text("rotate, JFrog with a wrong CA", out.out + out.err)
    assert "ci: FAILED ci: mint: " in out.out and "TLS error" in out.out and "certificate verify failed" in out.out
    assert https_emulator.mint_count == 0 and not (tmp_path / "secrets" / "ci.json").exists()
    with TlsServer(server_cert) as vault:
        monkeypatch.setenv("VAULT_TOKEN", "s.NotARealTokenButLongEnough1")
        config = tls_config(tmp_path, https_emulator, f", ca_bundle: {pem(tmp_path, 'ca.pem', ca.cert_pem)}",
                            f"  vault: {{type: vault, url: '{vault.url}', ca_cert: {other}}}\n",
                            "  - {name: v, backend: vault, path: jfrog/v, token: {username: ci, expiry: 7d}}\n")
        assert run(["rotate", "-c", str(config), "v"]) == 1
        out = capsys.readouterr()
        ledger.text("rotate, Vault with a wrong CA", out.out + out.err)
        assert "TLS error (check ca_cert / tls_verify)" in out.out + out.err
    assert https_emulator.mint_count == 0
    tally.add(faults=2)
    ledger.emulator(https_emulator)
    check_all(ledger, tally)


def test_verification_off_warns_once_per_process_naming_the_setting(https_emulator, openbao, tmp_path, monkeypatch,
                                                                   cli_env, ledger, tally):
    """``tls_verify: false`` (JFrog and a Vault store) works, and a process says so once per setting,
    naming it, however many clients it makes: real processes (rotate, sweep), and this one loading
    the config three times, as a daemon does at each reload."""
    # Once per process: another test of this process may have warned for the same setting and URL.
    monkeypatch.setattr("rotator.core.http_env._warned_verify_off", set())
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", https_emulator.admin_token)
    https_emulator.create_user("ci")
    prefix = f"tls-{uuid.uuid4().hex[:8]}"
    config = tls_config(tmp_path, https_emulator, ", tls_verify: false",
                        f"  vault: {{type: vault, url: '{openbao.addr}', tls_verify: false}}\n",
                        f"  - {{name: v, backend: vault, path: {prefix}/v, overlap: 0s, "
                        "token: {username: ci, expiry: 7d}}\n")
    env = {**os.environ, "VAULT_TOKEN": openbao.root_token, "PYTHONPATH": str(ROOT)}
    ledger.secret(openbao.root_token)
    for argv in (["rotate", "--all"], ["sweep", "--all"], ["rotate", "--all"]):
        done = subprocess.run([CLI, *argv, "-c", str(config)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
        ledger.text(f"{argv[0]} stdout", done.stdout)
        ledger.text(f"{argv[0]} stderr", done.stderr)
        assert done.returncode == 0, done.stderr[-500:]
        warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
        assert len([w for w in warnings if "jfrog.tls_verify: false" in w]) == 1, warnings
        assert len([w for w in warnings if "backends.vault.tls_verify: false" in w]) == 1, warnings
        tally.add(processes=1)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    for _ in range(3):
        loaded = load_config(config)
        jfrog_client(loaded.jfrog)[0].close()
        loaded.close()
    said = [text for where, text in ledger.texts if where.startswith("log ") and "tls_verify: false" in text]
    assert len(said) == 2 and any("jfrog.tls_verify: false" in t for t in said), said
    check_config(config, https_emulator, tally, swept=False)
    ledger.emulator(https_emulator)
    check_all(ledger, tally)


@pytest.mark.parametrize("client", ["another CA's", "none"])
def test_mtls_with_a_wrong_client_certificate_fails_clearly(client, mtls_emulator, ca, tmp_path, monkeypatch,
                                                            cli_env, capsys, ledger, tally):
    """JFrog requiring a client certificate of its CA: a certificate of another CA, or none, fails
    the run with a TLS error naming the call; nothing is minted. The right one works."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", mtls_emulator.admin_token)
    mtls_emulator.create_user("ci")
    bundle = pem(tmp_path, "ca.pem", ca.cert_pem)
    issuer = trustme.CA() if client != "none" else ca
    leaf = issuer.issue_cert("ci-client@example.test")
    cert, key = pem(tmp_path, "client.pem", leaf.cert_chain_pems[0]), pem(tmp_path, "client.key", leaf.private_key_pem)
    keys = f", client_cert_path: {cert}, client_cert_key_path: {key}" if client != "none" else ""
    config = tls_config(tmp_path, mtls_emulator, f", ca_bundle: {bundle}{keys}")
    assert run(["--debug", "rotate", "-c", str(config), "--all"]) == 1
    out = capsys.readouterr()
    ledger.text(f"rotate, mTLS with {client} client certificate", out.out + out.err)
    assert "ci: FAILED ci: mint: create token failed (POST /access/api/v1/tokens): " in out.out
    assert "TLS error" in out.out, out.out[-300:]
    assert mtls_emulator.mint_count == 0
    good = ca.issue_cert("ci-client@example.test")
    cert, key = pem(tmp_path, "client.pem", good.cert_chain_pems[0]), pem(tmp_path, "client.key", good.private_key_pem)
    config = tls_config(tmp_path, mtls_emulator,
                        f", ca_bundle: {bundle}, client_cert_path: {cert}, client_cert_key_path: {key}")
    assert run(["rotate", "-c", str(config), "--all"]) == 0
    check_config(config, mtls_emulator, tally, swept=False)
    tally.add(faults=1)
    ledger.emulator(mtls_emulator)
    check_all(ledger, tally)


# -- slow: the demo, a real daemon process --------------------------------------------------------
@pytest.mark.slow
def test_the_demo_prints_no_secret(emulator, tmp_path, monkeypatch, ledger, tally):
    """``make demo`` (``jfrog-rotator demo``) run once: its output and the daemon's log hold none of
    the emulator's tokens, the OpenBao root token or the Vault tokens it made, not even masked."""
    from rotator.cli.demo import DemoOptions, run_demo
    from rotator.cli.demo.openbao import OpenBaoDevServer

    made: list[str] = []
    create, start = OpenBaoDevServer.create_token, OpenBaoDevServer.start

    def creating(self, *args, **kwargs):
        made.append(create(self, *args, **kwargs))
        return made[-1]

    def starting(self, *args, **kwargs):
        made.append(self.root_token)
        return start(self, *args, **kwargs)

    monkeypatch.setattr(OpenBaoDevServer, "create_token", creating)
    monkeypatch.setattr(OpenBaoDevServer, "start", starting)
    lines: list[str] = []
    directory = tmp_path / "demo"
    assert run_demo(DemoOptions(duration=7, directory=str(directory)), say=lines.append, emulator=emulator) == 0
    text = "\n".join(lines)
    assert re.search(r"^\d\d:\d\d:\d\d  ci-deployer +rotated ", text, re.M), text[-500:]
    assert len(made) >= 4, "the root token and the daemon's, requester's and consumer's tokens"
    ledger.secret(*made)
    ledger.text("demo output", text)
    ledger.text("demo daemon.log", (directory / "daemon.log").read_text())
    assert text.count("***") == 0, "something in the demo's output needed masking"
    ledger.emulator(emulator)
    check_all(ledger, tally)


@pytest.mark.slow
def test_a_real_daemon_process_with_debug_leaks_nothing(world, emulator, ledger, tally):
    """``jfrog-rotator --debug daemon`` over the three stores, its first mint refused: its stderr
    (DEBUG, JSON lines), ``/status``, ``/metrics``, ``/healthz`` and ``/readyz`` hold no secret."""
    port = free_port()
    world.config.write_text(world.config.read_text() + f"daemon: {{listen: '127.0.0.1:{port}', sweep_interval: 1s}}\n")
    emulator.inject_fault(TOKENS, method="POST", status=403, count=1)
    log_file = (world.tmp / "daemon.err").open("w")  # a pipe would fill up with DEBUG lines and block it
    daemon = subprocess.Popen([CLI, "--debug", "daemon", "-c", str(world.config), "--log-format", "json"],
                              cwd=world.tmp, env=world.env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def counted():
            try:
                metrics = requests.get(f"{url}/metrics", timeout=10).text
            except requests.RequestException:  # not listening yet
                return False
            rotated = re.findall(r'^jfrog_rotator_rotations_total\{result="rotated",target="[\w-]+"\} [1-9]', metrics, re.M)
            failed = re.findall(r'^jfrog_rotator_rotations_total\{result="failed",target="[\w-]+"\} [1-9]', metrics, re.M)
            return len(rotated) == 4 and len(failed) == 1

        wait_until(counted, 60, what="four targets rotated and one failed by the daemon process")
        for path in ("status", "metrics", "healthz", "readyz"):
            ledger.text(f"daemon process /{path}", requests.get(f"{url}/{path}", timeout=5).text)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log_file.close()
    err = (world.tmp / "daemon.err").read_text()
    assert daemon.returncode == 0, err[-500:]
    ledger.text("daemon process stdout and stderr", err)
    assert sum(1 for line in err.splitlines() if '"level": "debug"' in line) > 10
    ledger.emulator(emulator)
    tally.add(processes=1, faults=1)
    check_all(ledger, tally)
