"""`jfrog-rotator check-config` warns, offline, about settings JFrog or the secrets' consumers
defeat: one warning line each on stderr (``[Warn] <target>: ...``), and the exit code stays 0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rotator.cli import run
from rotator.jfrog import AccessClient

HEAD = """\
jfrog: {url: "https://acme.jfrog.io", access_token_env: ADMIN_TOKEN_FOR_CHECK}
backends:
  vault: {type: vault, url: "http://127.0.0.1:9", auth: {method: token, token_env: VAULT_TOKEN_FOR_CHECK}}
  aws: {type: aws-secretsmanager, region: us-east-1}
  local: {type: file, directory: ./secrets}
targets:
"""


@pytest.fixture
def check_config(tmp_path, monkeypatch, cli_env, capsys):
    """Run ``check-config`` offline on a config with these targets: (exit code, stdout, warning lines)."""
    monkeypatch.setenv("ADMIN_TOKEN_FOR_CHECK", "not-used-offline")
    monkeypatch.setenv("VAULT_TOKEN_FOR_CHECK", "not-used-offline")

    def check(targets: str) -> tuple[int, str, list[str]]:
        cfg = tmp_path / "rotator.yaml"
        cfg.write_text(HEAD + targets)
        code = run(["check-config", "-c", str(cfg)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err.splitlines()

    return check


def test_a_valid_config_with_nothing_to_warn_about_prints_no_warning(check_config):
    code, out, warnings = check_config("  - {name: ci, backend: vault, token: {username: ci, expiry: 7d}}\n")
    assert code == 0 and "OK (3 backend(s), 1 target(s))" in out and warnings == []


def test_it_warns_about_a_token_jfrog_will_not_store(check_config):
    code, out, warnings = check_config("  - {name: ci, backend: local, token: {username: ci, expiry: 1h}}\n")
    assert code == 0 and "ci: recreate -> local:ci" in out
    assert warnings == ["[Warn] ci: token.expiry 3600s is under JFrog's persistency threshold (10800s, "
                        "jfrog.persistency_threshold): JFrog does not store such tokens, so the previous token cannot "
                        "be revoked and the orphan sweep cannot see it; it simply expires, at most 3600s after it "
                        "was minted"]


def test_it_warns_when_the_overlap_is_shorter_than_the_consumers_refresh(check_config):
    code, _, warnings = check_config(
        "  - {name: agent, backend: vault, token: {username: ci, expiry: 7d}, overlap: 1m}\n"
        "  - {name: cached, backend: aws, token: {username: ci, expiry: 7d}, overlap: 30m}\n")
    assert code == 0 and len(warnings) == 2
    assert warnings[0].startswith("[Warn] agent: overlap 60s is shorter than the usual refresh interval of its "
                                  "consumers: Vault Agent re-renders KV secrets every 300s by default")
    assert warnings[1].startswith("[Warn] cached: overlap 1800s is shorter than the usual refresh interval of its "
                                  "consumers: AWS Secrets Manager caching clients refresh a secret every 3600s")


def test_it_warns_that_one_replica_at_a_time_may_refresh(check_config):
    code, _, warnings = check_config(
        "  - {name: bot, backend: local, strategy: refresh, token: {username: bot, expiry: 7d, refreshable: true}}\n")
    assert code == 0
    assert warnings == ["[Warn] bot: strategy refresh: a refresh token works once (reusing it answers 404), so only "
                        "one daemon replica may refresh this target at a time: run one replica, or set "
                        "daemon.leader"]


def test_with_a_leader_lease_a_refresh_target_is_not_warned_about(check_config):
    # daemon.leader: a refresh runs only on the leader, under a claim (docs/daemon.md)
    code, _, warnings = check_config(
        "  - {name: bot, backend: local, strategy: refresh, token: {username: bot, expiry: 7d, refreshable: true}}\n"
        "daemon: {leader: {backend: local}}\n")
    assert code == 0 and warnings == []


def test_the_example_of_the_configuration_page_prints_the_warnings_it_shows(tmp_path, monkeypatch, cli_env, capsys):
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    section = page[page.index("### What `check-config` warns about"):page.index("## `jfrog:`")]
    config = re.search(r"cat > check-example.yaml <<'YAML'\n(.*?)\nYAML\n", section, re.S).group(1)
    shown = re.search(r"warns on stderr:\n\n```\n(.*?)```", section, re.S).group(1).splitlines()
    (tmp_path / "check-example.yaml").write_text(config)
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", "not-used-offline")
    monkeypatch.setenv("VAULT_TOKEN", "not-used-offline")
    assert run(["check-config", "-c", str(tmp_path / "check-example.yaml")]) == 0
    assert capsys.readouterr().err.splitlines() == [line.removeprefix("12:00:00 ") for line in shown]


def test_online_check_says_which_targets_will_be_adopted_and_which_refused(tmp_path, monkeypatch, cli_env, capsys,
                                                                          emulator):
    """``--online`` reads every target's store (nothing minted, nothing written) and says what the
    next rotation will do with a value it did not write."""
    emulator.create_user("ci")
    monkeypatch.setenv("ADMIN_TOKEN_FOR_CHECK", emulator.admin_token)
    alive = emulator.create_token("ci", expires_in=14400)
    dead = emulator.create_token("ci", expires_in=14400, force_revocable=True)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "adopt.json").write_text(f'{{"username": "ci", "password": "{alive["access_token"]}"}}')
    (secrets / "dead.json").write_text(dead["access_token"])
    (tmp_path / "rotator.yaml").write_text(
        f'jfrog: {{url: "{emulator.url}", access_token_env: ADMIN_TOKEN_FOR_CHECK}}\n'
        "backends: {local: {type: file, directory: ./secrets}}\n"
        "targets:\n"
        "  - {name: adopt, backend: local, token: {username: ci, expiry: 7d}}\n"
        "  - {name: dead, backend: local, token: {username: ci, expiry: 7d}}\n"
        "  - {name: fresh, backend: local, token: {username: ci, expiry: 7d}}\n")
    with AccessClient(emulator.url, access_token=emulator.admin_token) as admin:
        admin.revoke_token(dead["token_id"])
    minted = emulator.mint_count
    before = {p.name: p.read_text() for p in secrets.iterdir()}
    code = run(["check-config", "-c", str(tmp_path / "rotator.yaml"), "--online"])
    out = capsys.readouterr().out
    assert code == 1  # a target would be refused: fix it before the daemon meets it
    assert f"target adopt: will adopt (JSON with 'password' and 'username', token id {alive['token_id']})" in out
    assert "target dead: will refuse (" in out and "whose token does not work" in out
    assert "target fresh: empty: the first rotation mints its first token" in out
    assert alive["access_token"] not in out and dead["access_token"] not in out
    assert emulator.mint_count == minted and {p.name: p.read_text() for p in secrets.iterdir()} == before
