"""The invariant checks themselves: each passes on a healthy store and reports what breaks it, so a
suite that counts zero violations counts zero because there were none."""

from __future__ import annotations

import logging
import textwrap

import pytest

from rotator.cli import run
from rotator.core.record import SecretRecord
from tests.reliability.harness import Ledger, Tally, check_config

SUITE = "crash"  # the harness is shared; its own cases are not counted on any suite's page row


@pytest.fixture
def config(tmp_path, emulator, monkeypatch, cli_env):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    monkeypatch.chdir(tmp_path)
    emulator.create_user("ci")
    path = tmp_path / "rotator.yaml"
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{emulator.url}", access_token_env: JFROG_ADMIN_TOKEN}}
        backends: {{store: {{type: file, directory: ./secrets}}}}
        targets:
          - {{name: ci, backend: store, path: ci, overlap: 0s, orphan_grace: 0s, token: {{username: ci, expiry: 7d}}}}
        """))
    assert run(["rotate", "-c", str(path), "--all"]) == 0
    return path


def test_a_healthy_store_passes_and_counts_its_checks(config, emulator):
    t = Tally("crash")
    check_config(config, emulator, t)
    assert t.checks == 3 and t.violations == []


def test_a_live_orphan_is_a_violation(config, emulator):
    orphan = emulator.create_token("ci", description="jfrog-rotator:ci:r-lost", expires_in=86400)
    t = Tally("crash")
    with pytest.raises(AssertionError, match="invariant violated"):
        check_config(config, emulator, t)
    assert len(t.violations) == 1 and orphan["token_id"] in t.violations[0]
    check_config(config, emulator, Tally("crash"), swept=False)  # before a sweep it is not counted


def test_a_dead_stored_token_and_a_broken_value_are_violations(config, emulator, tmp_path):
    record = SecretRecord.loads((tmp_path / "secrets" / "ci.json").read_text())
    emulator.model.revoke_by_id(emulator.model.authenticate_bearer(emulator.admin_token), record.token_id)
    t = Tally("crash")
    with pytest.raises(AssertionError):
        check_config(config, emulator, t, swept=False)
    assert "not accepted by JFrog" in t.violations[0]
    (tmp_path / "secrets" / "ci.json").write_text("{not json")
    t = Tally("crash")
    with pytest.raises(AssertionError):
        check_config(config, emulator, t, swept=False)
    assert "does not parse" in t.violations[0] or "no token" in t.violations[0]


def test_a_secret_in_a_log_line_is_found_whatever_the_level(emulator):
    book = Ledger().capture_logs()
    try:
        secret = emulator.create_token("ci", expires_in=3600)["access_token"]
        book.emulator(emulator)
        logging.getLogger("rotator.test").debug("fine")
        t = Tally("secrets")
        book.check(t)
        assert t.violations == []
        # A record the product would scrub at creation; the raw handler text is what is searched.
        book.text("stderr", f"oops {secret}")
        with pytest.raises(AssertionError):
            book.check(t)
        assert "stderr" in t.violations[0] and secret not in t.violations[0]
    finally:
        book.stop_logs()
