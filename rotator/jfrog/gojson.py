"""JSON bytes as Go's ``encoding/json`` writes them (the JFrog CLI and client are Go)."""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def go_json(value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.MarshalIndent(v, "", "  ")`` (or ``json.Marshal`` when ``indent`` is None).

    UTF-8 is kept as is; ``<``, ``>``, ``&`` and U+2028/U+2029 are escaped like Go does. Those
    characters can only occur inside JSON strings, so a plain replace is exact.
    """
    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=sort_keys, separators=separators)
    for char, escaped in _GO_ESCAPES:
        text = text.replace(char, escaped)
    return text
