"""The bugs the reliability suites found, each with the commit that fixed it: the page's last table.

One module per suite (``tests/reliability/bugs/<suite>.py``, ``-`` spelled ``_``) holds a list
``BUGS`` of :class:`Bug`; a suite that finds a bug adds its entry in the commit that fixes it and
names that commit in a later one (a commit cannot name itself). Merges keep the hashes.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    suite: str  # a key of tests.reliability.harness.SUITES
    found: str  # what the suite saw, in one sentence
    fix: str  # what changed, in one sentence
    commit: str = ""  # the fixing commit's abbreviated hash ("" until a later commit names it)


def all_bugs() -> list[Bug]:
    found: list[Bug] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found += importlib.import_module(f"{__name__}.{info.name}").BUGS
    return found
