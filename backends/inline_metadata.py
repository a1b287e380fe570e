"""Revision and metadata kept inside the stored record, for stores without a metadata endpoint.

A Vault KV v1 mount and the file store keep no versions and no metadata beside a value, so the
record carries them itself, in its ``rotator`` section (``docs/architecture.md``, the record)::

    {"access_token": "...", "rotator": {"revision": 3, "metadata": {"managed_by": "..."}}}

``rotator.revision`` is the compare-and-set version; ``rotator.metadata`` holds the non-secret
facts. Every write or metadata patch stores ``revision + 1``. These are the rules, as pure
functions on decoded JSON (no I/O): the store reads, checks, writes and locks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backends.base import Version


def decode(text: str) -> Any:
    """The JSON value of a stored text; ``{}`` when the text is not valid JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return {}


def rotator_section(record: Any) -> Mapping[str, Any]:
    """The record's ``rotator`` object; ``{}`` when the record or the section is not an object."""
    section = record.get("rotator") if isinstance(record, Mapping) else None
    return section if isinstance(section, Mapping) else {}


def revision(record: Any) -> int:
    """``rotator.revision``: 0 when absent or not a non-negative integer (a record made by hand)."""
    return _as_revision(rotator_section(record).get("revision")) or 0


def metadata(record: Any) -> dict[str, str]:
    """``rotator.metadata`` as strings (a ``null`` value reads as ``""``); ``{}`` when absent."""
    return string_map(rotator_section(record).get("metadata"))


def revision_matches(expected: Version, found: int | None) -> bool:
    """Compare-and-set: ``found`` is the stored revision, ``None`` when there is no record.

    ``expected=None`` means "create": it matches only when there is no record. Any other value
    must equal the stored revision; a record deleted since it was read does not match.
    """
    if expected is None:
        return found is None
    return found is not None and _as_revision(expected) == found


def mismatch(expected: Version, found: int | None) -> str:
    """The message of a failed compare-and-set (the store adds its name, the path and the call)."""
    return f"expected revision {expected}, found {'no value' if found is None else found}"


def merge_metadata(current: Mapping[str, str], updates: Mapping[str, str | None]) -> dict[str, str]:
    """``current`` with ``updates`` merged in; a ``None`` value removes that key."""
    merged = dict(current)
    for key, value in updates.items():
        if value is None:
            merged.pop(str(key), None)
        else:
            merged[str(key)] = str(value)
    return merged


def next_record(current: Any, data: Mapping[str, Any], updates: Mapping[str, str | None]) -> tuple[dict, int]:
    """The record to store when ``data`` replaces ``current`` (``None``: no record yet), and its revision.

    The revision is one more than the current one; the metadata is the current metadata with
    ``updates`` merged in. Other keys of ``data``'s ``rotator`` section are kept. A metadata patch
    is ``next_record(current, current, updates)``.
    """
    found = 0 if current is None else revision(current)
    merged = merge_metadata(metadata(current) if current is not None else {}, updates)
    section = {**rotator_section(data), "revision": found + 1, "metadata": merged}
    return {**data, "rotator": section}, found + 1


def string_map(value: Any) -> dict[str, str]:
    """A mapping's keys and values as strings (``None`` as ``""``); ``{}`` for anything else."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _as_revision(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
