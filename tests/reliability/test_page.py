"""docs/reliability.md and the bugs list agree: every suite has a row, every bug found is listed
with its fix commit, and the renderer writes what is committed (apart from the figures of a run)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.reliability.bugs import all_bugs
from tests.reliability.harness import SUITES

SUITE = "crash"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_every_bug_names_a_known_suite_and_a_commit_hash():
    for bug in all_bugs():
        assert bug.suite in SUITES, bug
        assert bug.found and bug.fix, bug
        assert re.fullmatch(r"[0-9a-f]{7,40}", bug.commit), f"{bug.found}: no fix commit named yet"


def test_the_page_lists_every_suite_and_every_bug():
    page = PAGE.read_text()
    for title in SUITES.values():
        assert f"| {title} |" in page, title
    for bug in all_bugs():
        assert bug.commit in page and bug.found in page, bug.found
