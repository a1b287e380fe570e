"""The suite's root: the shared fixtures (servers, emulator, stores, daemons) are one plugin module,
tests/fixtures/plugin.py, registered here once for every test package."""

import pytest

from rotator.jfrog import client as jfrog_client
from rotator.jfrog.client import RetryPolicy

# Helpers in tests/fixtures assert too (Harness, bootstrap): show their values when they fail.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = ["tests.fixtures.plugin"]


@pytest.fixture(autouse=True)
def quick_jfrog_retries(request, monkeypatch):
    """JFrog clients made in this process retry as configured but wait 0.01 s, not 1 s then 2 s,
    between attempts: a failure path costs a test milliseconds. tests/test_client.py checks the
    real waits (it records them instead of sleeping)."""
    if request.module.__name__ != "tests.test_client":
        monkeypatch.setattr(jfrog_client, "DEFAULT_RETRY", RetryPolicy(backoff_factor=0.01))
