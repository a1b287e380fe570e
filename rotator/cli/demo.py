"""``jfrog-rotator demo``: the product on embedded defaults, against the bundled emulator.

Starts the JFrog Access API emulator on a free loopback port, writes a JFrog CLI config and a
rotator config for it (0600, in a temporary directory; the store is the local file backend) and
runs the real command line: ``token create`` several ways, then rotations, status and a sweep.
Each command and its output is printed with every secret masked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rotator.emulator import Emulator

_SECRET_KEYS = ("access_token", "refresh_token", "reference_token")
_JSON_SECRET = re.compile(r'("(?:%s)": )"[^"]*"' % "|".join(_SECRET_KEYS))
_TABLE_SECRET = re.compile(r"^((?:%s)\s+)\S+$" % "|".join(_SECRET_KEYS), re.MULTILINE)


def mask_output(text: str) -> str:
    """Mask token values in jf-style JSON or table output (the demo shows shapes, not secrets)."""
    return _TABLE_SECRET.sub(r"\1***", _JSON_SECRET.sub(r'\1"***"', text))


def run_demo(say: Callable[[str], None] = print) -> int:
    with tempfile.TemporaryDirectory(prefix="jfrog-rotator-demo-") as home, Emulator() as emulator:
        emulator.create_user("ci-deployer", groups=("deployers",))
        _write_cli_config(Path(home), emulator)
        _write_rotator_config(Path(home), emulator)
        env = {**os.environ, "JFROG_CLI_HOME_DIR": home, "JFROG_CLI_LOG_TIMESTAMP": "OFF",
               "JFROG_ADMIN_TOKEN": emulator.admin_token}
        env.pop("JFROG_CLI_SERVER_ID", None)
        say(f"JFrog Access API emulator listening on {emulator.url}")
        say(f"JFrog CLI config with server 'demo' written to {home}/jfrog-cli.conf.v6 (mode 0600)\n")
        failures = 0
        for title, argv, expected_exit in _scenarios(emulator.url) + _rotation_scenarios(home):
            say(f"# {title}")
            if argv[0] == "cat":
                say(f"$ cat {argv[1]}")
                say(mask_output((Path(home) / argv[1]).read_text()).rstrip("\n") + "\n")
                continue
            say("$ jfrog-rotator " + " ".join(_quote(a) for a in argv))
            done = subprocess.run([sys.executable, "-m", "rotator", *_expand(argv, env)], env=env, cwd=home,
                                  capture_output=True, text=True, timeout=60)
            for stream in (done.stdout, done.stderr):
                if stream:
                    say(mask_output(stream).rstrip("\n"))
            say(f"(exit {done.returncode})\n")
            failures += done.returncode != expected_exit
        say(f"{emulator.live_token_count()} tokens alive in the emulator; "
            f"{'all scenarios behaved as expected' if not failures else f'{failures} scenario(s) misbehaved'}.")
        return 1 if failures else 0


def _scenarios(url: str) -> list[tuple[str, list[str], int]]:
    return [
        ("An identity token for the admin, flags only (like `jf atc --url --access-token`)",
         ["token", "create", "--url", url, "--access-token", "$JFROG_ADMIN_TOKEN"], 0),
        ("A 1-hour refreshable group token for ci-deployer, from the configured server",
         ["token", "create", "ci-deployer", "--server-id", "demo", "--groups", "deployers",
          "--expiry", "3600", "--refreshable", "--description", "CI deployer"], 0),
        ("The `atc` alias with a reference token, as a table",
         ["atc", "--server-id", "demo", "--reference", "--format", "table"], 0),
        ("A non-expiring admin token (expires_in is absent from the answer)",
         ["atc", "--server-id", "demo", "--grant-admin", "--expiry=0"], 0),
        ("Tokens described 'CI*'", ["token", "list", "--server-id", "demo", "--description", "CI*",
                                    "--format", "table"], 0),
        ("jf's own error text: --scope together with --groups",
         ["atc", "--server-id", "demo", "--scope", "applied-permissions/user", "--groups", "g"], 2),
        ("jf's own error text: a password is not enough to create tokens",
         ["atc", "--url", url, "--user", "admin", "--password", "not-used"], 2),
    ]


ROTATOR_CONFIG = """\
jfrog:
  url: {url}
  access_token_env: JFROG_ADMIN_TOKEN
backends:
  local: {{type: file, directory: ./secrets}}
targets:
  - name: ci-deployer
    backend: local
    token: {{username: ci-deployer, groups: [deployers], expiry: 7d, description: CI deployer}}
    schedule: {{every: 24h}}
    overlap: 1h
  - name: release-bot
    backend: local
    strategy: refresh
    token: {{username: release-bot, groups: [releasers], expiry: 1d, refreshable: true, reference: true}}
"""


def _rotation_scenarios(home: str) -> list[tuple[str, list[str], int]]:
    return [
        ("The rotator config: two targets in the local file store", ["cat", "rotator.yaml"], 0),
        ("Validate it, and check JFrog and the store", ["check-config", "-c", "rotator.yaml", "--online"], 0),
        ("First rotation: each target gets its first token", ["rotate", "-c", "rotator.yaml", "--all"], 0),
        ("What consumers read (secrets masked)", ["cat", "secrets/ci-deployer.json"], 0),
        ("Second rotation: ci-deployer's old token stays valid for the 1h overlap; release-bot refreshes",
         ["rotate", "-c", "rotator.yaml", "--all"], 0),
        ("Status, from the store", ["status", "-c", "rotator.yaml"], 0),
        ("Sweep: nothing is due yet (the overlap is not over), no orphans",
         ["sweep", "-c", "rotator.yaml"], 0),
    ]


def _write_rotator_config(home: Path, emulator: Emulator) -> None:
    emulator.create_user("release-bot", groups=("releasers",))
    (home / "rotator.yaml").write_text(ROTATOR_CONFIG.format(url=emulator.url))


def _write_cli_config(home: Path, emulator: Emulator) -> None:
    path = home / "jfrog-cli.conf.v6"
    config = {"servers": [{"url": emulator.url + "/", "accessToken": emulator.admin_token,
                           "serverId": "demo", "isDefault": True}], "version": "6"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)


def _expand(argv: list[str], env: dict[str, str]) -> list[str]:
    return [env[a[1:]] if a.startswith("$") else a for a in argv]


def _quote(arg: str) -> str:
    return f"'{arg}'" if (" " in arg or "*" in arg) and not arg.startswith("$") else arg
