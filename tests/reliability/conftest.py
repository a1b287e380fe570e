"""Fixtures of the reliability suites (docs/reliability.md): each test module names its suite with
``SUITE = "..."`` (one of :data:`tests.reliability.harness.SUITES`) and gets that suite's tally.

At the end of a run the tallies are written as JSON to ``$RELIABILITY_RESULTS`` (default
``.reliability/``), one file per suite, for ``tests/reliability/report.py`` to render the page.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.reliability.harness import Ledger, Stopwatch, tallies, tally_for


@pytest.fixture
def tally(request):
    """This module's suite tally; the test's wall time and one case are added to it."""
    suite = getattr(request.module, "SUITE", None)
    if suite is None:
        raise pytest.UsageError(f"{request.module.__name__} names no SUITE")
    t = tally_for(suite)
    with Stopwatch(t):
        yield t
    t.add(cases=1)


@pytest.fixture
def ledger():
    """A :class:`Ledger` capturing every log record of the test (DEBUG included)."""
    book = Ledger().capture_logs()
    try:
        yield book
    finally:
        book.stop_logs()


_FAILED: list[str] = []


def pytest_runtest_logreport(report):
    if report.failed:
        _FAILED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    done = tallies()
    if not done:
        return
    out = Path(os.environ.get("RELIABILITY_RESULTS", ".reliability"))
    out.mkdir(parents=True, exist_ok=True)
    markexpr = session.config.getoption("markexpr", "") or ""
    stamp = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
             "subset": "not slow" in markexpr, "failed": list(_FAILED), "exit": int(exitstatus),
             "wall": round(time.monotonic() - session.config._reliability_start, 1)}
    for t in done:
        (out / f"{t.suite}.json").write_text(json.dumps({**t.as_dict(), **stamp}, indent=1) + "\n")


def pytest_configure(config):
    config._reliability_start = time.monotonic()
