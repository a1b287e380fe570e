"""Render output exactly as the JFrog CLI (Go) prints it: ``json.MarshalIndent``, ``tabwriter``, ``%v``.

As docs/jf-atc.md describes: ``jf atc`` re-marshals the server answer into
``auth.CreateTokenResponseData`` (keys in struct order, empty ones omitted), indents it by two
spaces; ``--format table`` writes ``FIELD  VALUE`` rows through a tabwriter with padding 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from rotator.jfrog.gojson import go_json

# auth.CreateTokenResponseData / CommonTokenParams field order (jfrog-client-go auth/authutils.go).
RESPONSE_KEYS = (
    "scope",
    "access_token",
    "expires_in",
    "token_type",
    "refreshable",
    "refresh_token",
    "grant_type",
    "audience",
    "reference_token",
    "token_id",
)
TABLE_KEYS = (
    "access_token",
    "token_id",
    "expires_in",
    "scope",
    "token_type",
    "refreshable",
    "refresh_token",
    "reference_token",
    "grant_type",
    "audience",
)
_TABLE_TOKEN_CHARS = 40


def token_response_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The server answer as ``CreateTokenResponseData``: known keys, struct order, omitempty."""
    out: dict[str, Any] = {}
    for key in RESPONSE_KEYS:
        value = raw.get(key)
        if key == "expires_in":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
                out[key] = int(value)
        elif key == "refreshable":
            if value is True:
                out[key] = True
        elif isinstance(value, str) and value:
            out[key] = value
    return out


def render_token_json(raw: Mapping[str, Any]) -> str:
    return go_json(token_response_fields(raw))


def render_token_table(raw: Mapping[str, Any]) -> str:
    fields = token_response_fields(raw)
    rows = [("FIELD", "VALUE")]
    for key in TABLE_KEYS:
        if key not in fields:
            continue
        value = fields[key]
        if key == "access_token" and len(value) > _TABLE_TOKEN_CHARS:
            value = value[:_TABLE_TOKEN_CHARS] + "..."
        rows.append((key, go_value(value)))
    return tabwrite(rows)


def render_http_error_json(status: int, reason: str, body: str) -> str:
    """``JFROG_CLI_ERROR_OUTPUT_FORMAT=json``: ``{"body", "status", "status_code"}``, keys sorted."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    return go_json({"body": parsed, "status": f"{status} {reason}".strip(), "status_code": status},
                   sort_keys=True)


def go_value(value: Any) -> str:
    """``fmt.Sprintf("%v")`` of a value decoded by ``encoding/json`` (numbers are float64)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return go_float(float(value))
    return str(value)


def go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)``, which is what ``%v`` prints for a float64.

    Shortest round-tripping digits; ``e`` notation when the decimal exponent is < -4 or >= 6
    (Go uses precision 6 for that decision in the shortest form), so 31536000 -> ``3.1536e+07``.
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exponent >= len(digits) - 1:
        return sign + digits + "0" * (exponent - len(digits) + 1)
    if exponent >= 0:
        return sign + digits[: exponent + 1] + "." + digits[exponent + 1 :]
    return sign + "0." + "0" * (-exponent - 1) + digits


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-tripping decimal digits of ``value`` and its decimal exponent."""
    sign, digit_tuple, exp = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    return digits, exp + len(digits) - 1


def tabwrite(rows: Iterable[Sequence[str]], padding: int = 2) -> str:
    """``text/tabwriter`` with minwidth 0, padchar ' ', no flags: all but the last cell padded."""
    rows = [list(r) for r in rows]
    columns = max((len(r) for r in rows), default=0)
    widths = [0] * columns
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "\n".join(lines) + "\n"
