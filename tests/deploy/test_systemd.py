"""deploy/systemd/jfrog-rotator.service: parsed, its hardening keys checked, verified and measured
with systemd-analyze where it exists, and the quick start's systemd steps played in a scratch root
(no systemd runs here as PID 1): the files installed where the unit reads them, the credentials
copied where LoadCredential= puts them, and the unit's ExecStart serving a real daemon."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from rotator.cli import run
from tests.deploy.shipped import DEPLOY, QUICKSTART, load_shipped, quickstart_lines
from tests.fixtures.daemon import wait_until
from tests.fixtures.openbao import free_port

UNIT = DEPLOY / "systemd" / "jfrog-rotator.service"
CREDENTIALS = "/run/credentials/jfrog-rotator.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: [Section], Key=value lines (a key may repeat), # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and key and _ == "=", line
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


UNIT_KEYS = parse_unit(UNIT.read_text())
SERVICE = UNIT_KEYS["Service"]


def value(key: str) -> str:
    [found] = SERVICE[key]
    return found


def test_the_unit_is_hardened():
    assert value("DynamicUser") == "yes" and "User" not in SERVICE
    for key, wanted in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                        ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("StateDirectory", "jfrog-rotator"),
                        ("Restart", "on-failure"), ("UMask", "0077"), ("CapabilityBoundingSet", ""),
                        ("ProtectKernelTunables", "yes"), ("ProtectControlGroups", "yes"), ("RestrictSUIDSGID", "yes"),
                        ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"), ("SystemCallArchitectures", "native")]:
        assert value(key) == wanted, key
    assert set(value("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert SERVICE["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # Secrets come as credentials, never through the environment.
    assert not {"Environment", "EnvironmentFile", "PassEnvironment"} & set(SERVICE)
    assert all(re.fullmatch(r"[a-z-]+:/etc/jfrog-rotator/credentials/[a-z-]+", c) for c in SERVICE["LoadCredential"])
    assert value("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert UNIT_KEYS["Install"]["WantedBy"] == ["multi-user.target"]


def test_execstart_is_a_daemon_command_the_cli_accepts(tmp_path, capsys):
    argv = shlex.split(value("ExecStart"))
    assert argv[0] == "/opt/jfrog-rotator/venv/bin/jfrog-rotator" and argv[1] == "daemon"
    assert argv[argv.index("--listen") + 1].startswith("127.0.0.1:")  # the endpoint stays on the host
    argv[argv.index("-c") + 1] = str(tmp_path / "missing.yaml")
    assert run(argv[1:]) == 2
    assert "cannot read the config file" in capsys.readouterr().err


def test_the_parser_sees_a_weakened_unit(tmp_path):
    weaker = parse_unit(UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=full"))
    assert weaker["Service"]["ProtectSystem"] == ["full"]
    with pytest.raises(AssertionError):
        parse_unit("[Service]\nNoNewPrivileges yes\n")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_only_the_missing_install(tmp_path):
    """verify reads every key; the one complaint allowed is the virtualenv not installed here."""
    answer = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (answer.stdout + answer.stderr).splitlines() if line.strip()]
    assert lines == ["jfrog-rotator.service: Command /opt/jfrog-rotator/venv/bin/jfrog-rotator is not executable: "
                     "No such file or directory"]
    broken = tmp_path / "jfrog-rotator.service"
    broken.write_text(UNIT.read_text().replace("ProtectHome=yes", "ProtectHome=maybe"))
    answer = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Failed to parse protect home value" in answer.stdout + answer.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_exposure_in_the_comment_is_what_systemd_analyze_measures():
    [stated] = re.findall(r"Overall exposure level for jfrog-rotator.service: (\d+\.\d) (\w+)", UNIT.read_text())
    answer = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    measured = re.search(r"Overall exposure level for jfrog-rotator.service: (\d+\.\d) (\w+)", answer.stdout)
    assert measured, answer.stdout + answer.stderr
    assert measured.groups() == stated
    assert float(stated[0]) < 2.0  # systemd calls up to 1.9 "OK"


# -- the quick start ----------------------------------------------------------------------------
def systemd_section() -> str:
    text = QUICKSTART.read_text()
    return text[text.index("## systemd"):text.index("\n## ", text.index("## systemd") + 1)]


def quickstart_config() -> str:
    [config] = re.findall(r"cat > rotator.yaml <<'YAML'\n(.*?)\nYAML\n", systemd_section(), re.S)
    return config + "\n"


def test_the_config_reads_exactly_the_credentials_the_unit_loads(tmp_path):
    ids = {c.split(":")[0] for c in SERVICE["LoadCredential"]}
    named = set(re.findall(rf"{CREDENTIALS}/([a-z-]+)", quickstart_config()))
    assert named == ids
    config, _ = load_shipped(quickstart_config(), tmp_path)
    assert config.jfrog.token.file == f"{CREDENTIALS}/jfrog-admin-token"
    config.close()


def test_the_quick_start_installs_and_runs_the_unit(openbao, emulator, tmp_path):
    """Steps 2 to 4 of the systemd quick start with every absolute path moved under a scratch root
    and without sudo (the virtualenv of step 1 is the test's own, as `make venv` made it), then what
    systemd would do: copy each LoadCredential= file to the credentials directory and run
    ExecStart. The daemon rotates the target into OpenBao and /readyz answers 200."""
    root = tmp_path / "root"
    work = tmp_path / "work"
    work.mkdir()
    (root / "etc" / "systemd" / "system").mkdir(parents=True)  # there on every systemd host
    prefix = f"jfrog/{uuid.uuid4().hex[:8]}"
    config = (quickstart_config().replace("https://acme.jfrog.io", emulator.url)
              .replace("https://vault.example.com:8200", openbao.addr).replace(CREDENTIALS, f"{root}{CREDENTIALS}")
              .replace("path: jfrog/", f"path: {prefix}/"))
    (work / "rotator.yaml").write_text(config)
    emulator.create_user("ci-deployer")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "VAULT_ADDR": openbao.addr,
           "VAULT_TOKEN": openbao.root_token, "JFROG_ADMIN_TOKEN": emulator.admin_token}
    played = []
    for line in quickstart_lines(systemd_section()):
        if line.startswith(("sudo install ", "umask 077", "deploy/vault/setup-approle.sh")):
            command = line.removeprefix("sudo ")
            command = re.sub(r"(?<=[ =])/(etc|opt|run)/", f"{root}/\\1/", command)
            command = command.replace("deploy/", f"{DEPLOY}/", 1) if command.startswith("deploy/") else \
                command.replace(" deploy/", f" {DEPLOY}/")
            subprocess.run(["bash", "-c", command], cwd=work, env=env, check=True, capture_output=True, timeout=120)
            played.append(line)
    assert len(played) == 9, played
    credentials = root / "etc" / "jfrog-rotator" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in credentials.iterdir()} == \
        {"jfrog-admin-token": 0o600, "vault-role-id": 0o600, "vault-secret-id": 0o600}
    unit = parse_unit((root / "etc" / "systemd" / "system" / "jfrog-rotator.service").read_text())["Service"]

    # systemd's part: LoadCredential=ID:PATH -> $CREDENTIALS_DIRECTORY/ID, then ExecStart.
    loaded = root / CREDENTIALS.lstrip("/")
    loaded.mkdir(parents=True)
    for entry in unit["LoadCredential"]:
        name, _, source = entry.partition(":")
        shutil.copyfile(f"{root}{source}", loaded / name)
    port = free_port()
    argv = shlex.split(unit["ExecStart"][0])
    argv[0] = str(Path(sys.executable).with_name("jfrog-rotator"))
    argv[argv.index("-c") + 1] = f"{root}{argv[argv.index('-c') + 1]}"
    argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
    daemon = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(loaded)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status = wait_until(lambda: _ready(port), timeout=60, what="/readyz 200 and a rotated target")
        assert status["token_id"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, errors[-2000:]
    for secret in [emulator.admin_token, *(p.read_text() for p in loaded.iterdir())]:
        assert secret not in errors


def _ready(port: int):
    try:
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        targets = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
    except requests.RequestException:
        return None
    target = next((t for t in _targets(targets) if t.get("target") == "ci-deployer"), None)
    return target if ready.status_code == 200 and target and target.get("token_id") else None


def _targets(status) -> list[dict]:
    if isinstance(status, dict):
        status = status.get("targets", [])
    return [t for t in status if isinstance(t, dict)]


def test_the_quick_start_config_is_plain_yaml():
    assert yaml.safe_load(quickstart_config())["backends"]["vault-main"]["auth"]["method"] == "approle"
