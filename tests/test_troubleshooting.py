"""docs/troubleshooting.md lists the messages the product prints: each one is still in the code.

A listed message is the first cell of a table row, in backticks, with ``<...>`` where the code
fills something in. It is cut into fragments where messages are put together (the filled-in parts,
``...``, brackets, ``: `` and ``; `` between composed parts, environment variable names the code
fills from a constant), and every fragment must be part of a string literal of the code, as the
parser sees it (implicitly joined literals are one string; an f-string contributes its literal
parts).
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "troubleshooting.md"

_CUT = re.compile(r"'?<[^<>]+>'?|\.\.\.|[()\[\]]|: |; ")
_ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")


def listed_messages() -> list[str]:
    """The messages of the page's tables (``| `message` | meaning | what to do |``); a cell with
    several messages separates them with `` / ``."""
    found = []
    for line in PAGE.read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split(" | ")[0].removeprefix("| ")
            found += re.findall(r"`([^`]+)`", first_cell)
    return found


def fragments(message: str, cut: re.Pattern = _CUT) -> list[str]:
    """The literal parts of a listed message that the code must hold, as written."""
    out = []
    for part in cut.split(message):
        part = part.strip(" ,.:'\"")
        if len(re.findall(r"[A-Za-z]", part)) >= 3:
            out.append(part)
    return out


def in_code(fragment: str) -> bool:
    """Part of a string literal; or, where the code fills in an environment variable's name from a
    constant (``f"set {ENCRYPTION_KEY_ENV} to ..."``), each piece around the names is."""
    if any(fragment in s for s in code_strings()):
        return True
    pieces = fragments(fragment, _ENV_NAME)
    return bool(_ENV_NAME.search(fragment)) and all(any(p in s for s in code_strings()) for p in pieces)


def missing_from_code(message: str) -> list[str]:
    return [part for part in fragments(message) if not in_code(part)]


@lru_cache(maxsize=1)
def code_strings() -> tuple[str, ...]:
    """Every string literal (and literal part of an f-string) in rotator/ and backends/."""
    strings: list[str] = []
    for top in ("rotator", "backends"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    strings.append(node.value)
    return tuple(strings)


def test_the_page_lists_messages_of_every_part():
    messages = listed_messages()
    assert len(messages) >= 150
    text = PAGE.read_text()
    for section in ("Command line", "Config", "JFrog", "Minting credentials", "A rotation", "Stores",
                    "Vault-triggered renewal", "The daemon's log", "The AWS Lambda"):
        assert f"\n## {section}\n" in text


@pytest.mark.parametrize("message", listed_messages())
def test_every_listed_message_is_in_the_code(message):
    assert fragments(message), f"nothing to check in {message!r}"
    missing = missing_from_code(message)
    assert not missing, f"{message!r}: not found in rotator/ or backends/: {missing}"


def test_a_changed_message_is_caught():
    """The check is not vacuous: a message the code does not print is reported."""
    assert missing_from_code("the token could not be polished (known: <names>)") == ["the token could not be polished"]
    assert missing_from_code("set JFROG_CLI_ENCRYPTION_KEY to the 32-character key") == []
    assert missing_from_code("set JFROG_CLI_ENCRYPTION_KEY to the 33-character key") != []
