"""The suite's root: the shared fixtures (servers, emulator, stores, daemons) are one plugin module,
tests/fixtures/plugin.py, registered here once for every test package."""

import pytest

# Helpers in tests/fixtures assert too (Harness, bootstrap): show their values when they fail.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = ["tests.fixtures.plugin"]
