"""The bugs the reliability suites found, each with the commit that fixed it: the page's last table.

A suite that finds a bug adds an entry here in the commit that fixes it (``commit`` is then filled
in by the next commit, as a commit cannot name itself). ``tests/reliability/test_page.py`` checks
that every commit named exists in this repository's history.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    suite: str  # a key of tests.reliability.harness.SUITES
    found: str  # what the suite saw, in one sentence
    fix: str  # what changed
    commit: str = ""  # the fixing commit's abbreviated hash ("" until the next commit names it)


BUGS: list[Bug] = [
]
