"""Fan-out through the command line: ``outputs:`` in the config, ``rotate`` / ``status`` / ``sweep``
/ ``check-config`` per output, and the config errors (exit 2, the target and the output named,
nothing minted, nothing written). docs/configuration.md "Fan-out"."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest

from rotator.cli import run
from rotator.config import load_config
from rotator.core.record import SecretRecord
from rotator.core.target import Output


@pytest.fixture
def env(monkeypatch, emulator, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci", groups=("deployers",))
    return emulator


def write_config(tmp_path, emulator, targets: str, backends: str = "") -> str:
    path = tmp_path / "rotator.yaml"
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends:
          main: {{type: file, directory: ./main}}
          copies: {{type: file, directory: ./copies}}
        """) + textwrap.indent(textwrap.dedent(backends), "  ") + "targets:\n"
        + textwrap.indent(textwrap.dedent(targets), "  "))
    return str(path)


FANOUT = """\
- name: ci
  backend: main
  path: jfrog/ci
  token: {username: ci, groups: [deployers], expiry: 7d}
  outputs:
    - {backend: copies, path: jfrog/ci-token, format: token}
    - {backend: copies, path: jfrog/ci-docker, format: dockerconfigjson, registry_hosts: [docker.acme.test]}
"""


def files_written(tmp_path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for d in ("main", "copies") if (tmp_path / d).exists()
                  for p in (tmp_path / d).rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_the_loader_builds_the_primary_and_its_outputs(env, tmp_path):
    config = load_config(write_config(tmp_path, env, FANOUT))
    [target] = config.targets
    assert (target.backend, target.path, target.format) == ("main", "jfrog/ci", None)
    assert target.outputs == (Output("copies", "jfrog/ci-token", "token"),
                              Output("copies", "jfrog/ci-docker", "dockerconfigjson", ("docker.acme.test",)))
    config.close()


def test_outputs_alone_make_the_first_one_the_primary(env, tmp_path):
    config = load_config(write_config(tmp_path, env, """\
        - name: ci
          token: {username: ci, expiry: 7d}
          outputs:
            - {backend: main, path: jfrog/ci}
            - {backend: copies, path: jfrog/ci-token, format: token}
        """))
    [target] = config.targets
    assert target.primary == Output("main", "jfrog/ci") and target.outputs == (Output("copies", "jfrog/ci-token",
                                                                                       "token"),)
    config.close()


def test_rotate_status_and_sweep_report_per_output(env, tmp_path, capsys):
    cfg = write_config(tmp_path, env, FANOUT)
    assert run(["rotate", "-c", cfg, "--all"]) == 0
    out = capsys.readouterr().out
    record = SecretRecord.loads((tmp_path / "main" / "jfrog" / "ci.json").read_text())
    assert f"ci: rotated (recreate) token {record.token_id} generation 1" in out
    for output in ("main:jfrog/ci (primary): rotated", "copies:jfrog/ci-token: rotated", "copies:jfrog/ci-docker: rotated"):
        assert f"  {output}, token {record.token_id}" in out
    assert (tmp_path / "copies" / "jfrog" / "ci-token.json").read_text() == record.access_token
    docker = json.loads((tmp_path / "copies" / "jfrog" / "ci-docker.json").read_text())
    auth = base64.b64decode(docker["auths"]["docker.acme.test"]["auth"]).decode()
    assert auth == f"ci:{record.access_token}" and env.authenticates(record.access_token)
    assert record.access_token not in out

    assert run(["rotate", "-c", cfg, "--all", "--format", "json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert [(o["output"], o["state"]) for o in result["outputs"]] == [
        ("main:jfrog/ci", "rotated"), ("copies:jfrog/ci-token", "rotated"), ("copies:jfrog/ci-docker", "rotated")]
    assert result["outputs"][0]["primary"] is True

    assert run(["status", "-c", cfg]) == 0
    table = capsys.readouterr().out
    assert "OUTPUTS of ci" in table and table.count("in-sync") == 3 and "dockerconfigjson" in table
    assert run(["status", "-c", cfg, "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["state"] == "ok" and [o["state"] for o in status["outputs"]] == ["in-sync"] * 3

    (tmp_path / "copies" / "jfrog" / "ci-token.json").unlink()  # an output lost (or one just added)
    (tmp_path / "copies" / "jfrog" / "ci-token.json.meta").unlink()
    assert run(["status", "-c", cfg, "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["state"] == "out-of-sync" and [o["state"] for o in status["outputs"]] == ["in-sync", "behind",
                                                                                            "in-sync"]
    mints = env.mint_count
    assert run(["sweep", "-c", cfg]) == 0
    assert "synced copies:jfrog/ci-token" in capsys.readouterr().out
    assert env.mint_count == mints and (tmp_path / "copies" / "jfrog" / "ci-token.json").read_text() == \
        SecretRecord.loads((tmp_path / "main" / "jfrog" / "ci.json").read_text()).access_token


def test_check_config_names_every_output(env, tmp_path, capsys):
    cfg = write_config(tmp_path, env, FANOUT)
    assert run(["check-config", "-c", cfg]) == 0
    assert "ci: recreate -> main:jfrog/ci + copies:jfrog/ci-token + copies:jfrog/ci-docker" in capsys.readouterr().out
    assert run(["check-config", "-c", cfg, "--online"]) == 0
    out = capsys.readouterr().out
    assert "target ci output copies:jfrog/ci-token: behind" in out and "target ci: empty" in out


@pytest.mark.parametrize("targets, backends, where, message", [
    ("""\
     - name: ci
       backend: main
       outputs: [{backend: nowhere, path: jfrog/ci-token}]
     """, "", "targets[0].outputs[0].backend",
     "target 'ci', output nowhere:jfrog/ci-token: no backend named 'nowhere' (defined: main, copies)"),
    ("""\
     - name: ci
       backend: main
       path: jfrog/ci
       outputs: [{backend: main, path: jfrog/ci, format: token}]
     """, "", "targets[0].outputs[0].path",
     "target 'ci', output main:jfrog/ci: is the target's primary output (each output needs its own store path)"),
    ("""\
     - name: ci
       backend: main
       outputs: [{backend: copies, path: a}, {backend: copies, path: a, format: token}]
     """, "", "targets[0].outputs[1].path",
     "target 'ci', output copies:a: is already outputs[0] (each output needs its own store path)"),
    ("""\
     - {name: ci, backend: main, outputs: [{backend: copies, path: shared}]}
     - {name: bot, backend: copies, path: shared}
     """, "", "targets[1].path", "copies:shared is already used by target 'ci'"),
    ("""\
     - name: ci
       backend: main
       outputs: [{backend: kv1, path: jfrog/ci-token, format: token}]
     """, "kv1: {type: vault, url: 'http://127.0.0.1:9', kv_version: 1, auth: {method: token, token_env: NOPE}}\n",
     "targets[0].outputs[0].format",
     "target 'ci', output kv1:jfrog/ci-token: format token needs metadata beside the value, which backend 'kv1' "
     "does not keep"),
    ("""\
     - name: ci
       backend: main
       strategy: refresh
       token: {refreshable: true}
       outputs: [{backend: copies, path: jfrog/ci-token}]
     """, "", "targets[0].outputs", "target 'ci': strategy refresh cannot fan out"),
    ("""\
     - name: ci
       path: jfrog/ci
       outputs: [{backend: main, path: jfrog/ci}, {backend: copies, path: b}]
     """, "", "targets[0].path", "target 'ci' has no backend of its own: give path in its first output"),
    ("""\
     - name: ci
       backend: main
       outputs: [{backend: copies, path: jfrog/ci-token, colour: blue}]
     """, "", "targets[0].outputs[0].colour", "unknown key"),
    ("""\
     - name: ci
       backend: main
       outputs: []
     """, "", "targets[0].outputs", "target 'ci': give at least one output"),
])
def test_a_bad_output_is_refused_by_name_and_nothing_is_written(env, tmp_path, capsys, targets, backends, where,
                                                               message):
    cfg = write_config(tmp_path, env, targets, backends)
    assert run(["rotate", "-c", cfg, "--all"]) == 2
    err = capsys.readouterr().err
    assert f"rotator.yaml: {where}: {message}" in err and "Traceback" not in err
    assert files_written(tmp_path) == [] and env.mint_count == 0


def test_more_outputs_than_the_bookkeeping_holds_are_refused(env, tmp_path, capsys):
    many = ", ".join(f"{{backend: copies, path: c{i}}}" for i in range(17))
    cfg = write_config(tmp_path, env, f"- {{name: ci, backend: main, outputs: [{many}]}}\n")
    assert run(["check-config", "-c", cfg]) == 2
    assert "targets[0].outputs: target 'ci': at most 16 outputs besides the primary, not 17" in capsys.readouterr().err


def test_an_output_that_cannot_be_written_fails_the_run_and_says_which(env, tmp_path, capsys):
    cfg = write_config(tmp_path, env, FANOUT)
    (tmp_path / "copies" / "jfrog").mkdir(parents=True)
    (tmp_path / "copies" / "jfrog" / "ci-docker.json").write_text('{"api_key": "not a token"}')
    assert run(["rotate", "-c", cfg, "--all"]) == 1
    lines = capsys.readouterr().out.splitlines()
    record = SecretRecord.loads((tmp_path / "main" / "jfrog" / "ci.json").read_text())
    assert lines[0] == (f"ci: FAILED: not every output holds the new token {record.token_id} (each keeps a working "
                        "token; the next run writes them)")
    assert lines[1:3] == [f"  main:jfrog/ci (primary): rotated, token {record.token_id}",
                          f"  copies:jfrog/ci-token: rotated, token {record.token_id}"]
    assert lines[3].startswith("  copies:jfrog/ci-docker: failed, token -: ") and "holds no JFrog token" in lines[3]
    assert (tmp_path / "copies" / "jfrog" / "ci-docker.json").read_text() == '{"api_key": "not a token"}'
    assert run(["status", "-c", cfg, "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["state"] == "out-of-sync" and "copies:jfrog/ci-docker" in status["last_error"]
