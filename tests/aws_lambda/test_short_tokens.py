"""The Lambda with tokens shorter than JFrog's persistency threshold (3 h): Access never stores them,
so the rotation still promotes its version but never tries to revoke the token it demotes
(https://jfrog.com/help/r/jfrog-platform-administration-documentation/persistency-threshold)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("revoke_previous", ["after-next", "immediately"])
def test_a_short_token_is_demoted_but_never_revoked(harness, revoke_previous):
    harness.monkeypatch.setenv("TOKEN_EXPIRY", "1h")
    harness.monkeypatch.setenv("REVOKE_PREVIOUS", revoke_previous)
    arn, seed = harness.seeded_secret(expires_in=3600)
    harness.rotate(arn)
    harness.emulator.clear_requests()
    second = harness.rotate(arn)
    assert harness.holder(arn, "AWSCURRENT") == second, "each rotation promotes its own version"
    record = harness.current(arn)
    assert record.retired[-1].revoke_after > record.retired[-1].expires_at, "due only once it has expired"
    deletes = [r.path for r in harness.emulator.requests if r.method == "DELETE"]
    assert deletes == [], "nothing is revoked: JFrog cannot revoke a token it never stored"
    assert harness.emulator.authenticates(seed.access_token) and harness.emulator.is_token_active(seed.token_id)
