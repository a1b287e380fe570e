"""deploy/container/Dockerfile and .dockerignore, checked without Docker (no daemon here): the
instructions the issue asks for, the build context they need, the HEALTHCHECK command run against a
real daemon started with the image's own command, and `make image` where no engine answers."""

from __future__ import annotations

import fnmatch
import json
import shlex
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from tests.deploy.shipped import ROOT
from tests.fixtures.daemon import wait_until
from tests.fixtures.openbao import free_port

DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of DOCKERFILE in order, continuation lines joined, comments dropped."""
    text = "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def final(name: str) -> list[str]:
    return [args for word, args in stages()[-1] if word == name]


def test_two_stages_on_a_slim_python_tagged_as_the_lambda_runtime():
    import re

    from cfnlint.decode.cfn_yaml import load

    build, runtime = stages()
    bases = [build[0][1].split()[0], runtime[0][1].split()[0]]
    assert build[0][1].endswith(" AS build") and bases[0] == bases[1]
    match = re.fullmatch(r"python:(3\.\d+)-slim(-\w+)?", bases[0])
    assert match, bases  # a tag, no digest, not latest
    function = next(r for r in load(str(ROOT / "deploy" / "aws" / "template.yaml"))["Resources"].values()
                    if r["Type"] == "AWS::Serverless::Function")
    assert function["Properties"]["Runtime"] == f"python{match.group(1)}"


def test_the_final_stage_runs_as_a_numeric_user_without_build_tools():
    [user] = final("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) >= 10000
    assert final("ENTRYPOINT") == ['["jfrog-rotator"]']
    copies = final("COPY")
    assert copies == ["--from=build /opt/jfrog-rotator /opt/jfrog-rotator"]  # the virtualenv only, no sources
    runs = " ".join(final("RUN"))
    assert "pip uninstall" in runs
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "curl", "wget"):
        assert tool not in runs
    build_runs = " ".join(args for word, args in stages()[0] if word == "RUN")
    assert "pip uninstall --yes pip" in build_runs  # nor pip inside the virtualenv
    env = " ".join(final("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # a read-only root: no bytecode written at run time


def test_the_default_command_is_the_daemon_with_its_endpoint_on():
    [cmd] = final("CMD")
    args = json.loads(cmd)
    assert args[:3] == ["daemon", "-c", "/etc/jfrog-rotator/rotator.yaml"]
    assert args[args.index("--listen") + 1] == "0.0.0.0:9464" and final("EXPOSE") == ["9464"]
    [volume] = final("VOLUME")
    assert json.loads(volume) == ["/var/lib/jfrog-rotator"]


def healthcheck_command() -> list[str]:
    [healthcheck] = final("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2] and "curl" not in argv[2]
    return argv


def test_the_healthcheck_answers_0_while_the_daemon_runs_and_1_after(emulator, tmp_path):
    """The image's CMD (its config path and port moved here) starts a real daemon; the HEALTHCHECK
    command, run as Docker would, exits 0 while it serves /healthz, 1 once it is stopped."""
    port = free_port()
    argv = healthcheck_command()
    argv = [sys.executable, "-c", argv[2].replace(":9464/", f":{port}/")]
    config = tmp_path / "rotator.yaml"
    config.write_text(f"jfrog: {{url: '{emulator.url}', access_token_env: JFROG_ADMIN_TOKEN}}\n"
                      "backends:\n  local: {type: file, directory: ./secrets}\n"
                      "targets:\n  - {name: ci, backend: local, token: {username: ci, expiry: 7d}}\n")
    emulator.create_user("ci")
    args = json.loads(final("CMD")[0])
    args[args.index("-c") + 1] = str(config)
    args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("jfrog-rotator")), *args],
                              env={"PATH": "/usr/bin:/bin", "JFROG_ADMIN_TOKEN": emulator.admin_token},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(port), timeout=30, what="the daemon's /healthz")
        assert subprocess.run(argv, timeout=30).returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert daemon.returncode == 0
    failed = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1 and "Connection refused" in failed.stderr


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


# -- the build context --------------------------------------------------------------------------
def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule for one path: the last pattern that matches it or a parent decides;
    ``!`` re-includes (https://docs.docker.com/build/concepts/context/#dockerignore-files)."""
    parts = path.split("/")
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(c.rpartition("/")[2], body[3:]) for c in candidates)
        else:
            hit = any(fnmatch.fnmatchcase(c, body) and c.count("/") == body.count("/") for c in candidates)
        if hit:
            verdict = not negate
    return verdict


def context_files() -> list[str]:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [p for p in tracked if not ignored(p, patterns)]


def test_the_context_holds_what_the_build_copies_and_nothing_else():
    files = context_files()
    for word, args in stages()[0]:
        if word == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert any(f == source or f.startswith(source.rstrip("/") + "/") for f in files), source
    assert {f.split("/")[0] for f in files} == {"pyproject.toml", "README.md", "rotator", "backends"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_the_build_stage_install_works_from_that_context(tmp_path):
    """What the build stage's `pip install .` builds from: a wheel made from the context alone
    (git's files minus .dockerignore) has both packages and the jfrog-rotator command."""
    context = tmp_path / "context"
    for name in context_files():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_bytes((ROOT / name).read_bytes())
    out = tmp_path / "wheel"
    answer = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(context)],
                            capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
    [wheel] = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "rotator/cli/__init__.py" in names and "backends/vault/__init__.py" in names
    assert "jfrog-rotator = rotator.cli:main" in entry_points


def test_make_image_says_so_where_no_container_engine_answers():
    answer = subprocess.run(["make", "-s", "image", "DOCKER=false"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert answer.returncode != 0
    assert "no container engine reachable here ('false info' failed), so no image was built" in answer.stdout
    assert shlex.split(answer.stdout.splitlines()[-1].partition(": ")[2])[:3] == ["false", "build", "-f"]


@pytest.mark.parametrize("line", ["ENTRYPOINT jfrog-rotator", "USER rotator", "FROM python:latest"])
def test_the_checks_fail_on_a_worse_dockerfile(line, tmp_path, monkeypatch):
    """The parsing above would notice a shell-form entrypoint, a named user, an untagged base."""
    worse = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text()
    word = line.split()[0]
    lines = text.splitlines()
    index = max(i for i, text in enumerate(lines) if text.startswith(word + " "))
    lines[index] = line
    worse.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(sys.modules[__name__], "DOCKERFILE", worse)
    checks = {"ENTRYPOINT": test_the_final_stage_runs_as_a_numeric_user_without_build_tools,
              "USER": test_the_final_stage_runs_as_a_numeric_user_without_build_tools,
              "FROM": test_two_stages_on_a_slim_python_tagged_as_the_lambda_runtime}
    with pytest.raises(AssertionError):
        checks[word]()
