"""A secret's non-secret metadata as its tags: ``managed-by`` plus ``jfrog-rotator:<key>``.

Tags are read with ``DescribeSecret`` and written with ``CreateSecret`` / ``TagResource``, so
status and triggers never read the value. Keys and values are cut to what AWS accepts (see
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Tag.html); a removed key is
written as an empty value, which reads back as absent, and only when the secret has that tag, so
keys the rotator never set take no room. A secret carries at most 50 tags, those of other tools
and people included, ``aws:`` tags excepted
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_TagResource.html):
:func:`tag_plan` refuses an update that would need more, before anything is written.

The key prefix is the rotator's tag (:data:`rotator.core.tags.TAG_PREFIX`, also the start of every
token description it mints) and a colon: ``jfrog-rotator:token_id``, as secrets have always carried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rotator.core.tags import TAG_PREFIX

MANAGED_BY_TAG = "managed-by"
TAG_KEY_PREFIX = f"{TAG_PREFIX}:"
_TAG_KEY_MAX = 128
_TAG_VALUE_MAX = 256
MAX_TAGS = 50
# AWS tag charset: letters, digits, spaces and _ . : / = + - @ (\w covers letters, digits, _).
_TAG_FORBIDDEN = re.compile(r"[^\w .:/=+\-@]")


def tag_value(value: Any) -> str:
    """A tag value AWS accepts: forbidden characters -> ``_`` (``,`` -> space), at most 256 characters."""
    text = str(value).replace(",", " ")
    return _TAG_FORBIDDEN.sub("_", text)[:_TAG_VALUE_MAX]


def tag_key(key: str) -> str:
    """``managed_by`` -> ``managed-by``; any other key -> ``jfrog-rotator:<key>`` (sanitised, <= 128)."""
    if key in ("managed_by", MANAGED_BY_TAG):
        return MANAGED_BY_TAG
    return (TAG_KEY_PREFIX + _TAG_FORBIDDEN.sub("_", key))[:_TAG_KEY_MAX]


def to_tags(metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    """Metadata -> the ``Tags`` list of ``CreateSecret`` / ``TagResource`` (``None`` -> empty value)."""
    return [{"Key": tag_key(k), "Value": tag_value("" if v is None else v)} for k, v in metadata.items()]


class TagLimitExceeded(ValueError):
    """The secret would carry more tags than AWS allows; the message says whose and how many."""


def tag_plan(existing: list[Mapping[str, str]], metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``Tags`` of one ``TagResource`` that applies ``metadata`` to a secret carrying ``existing``:
    a removed key (``None``) is emptied only where the secret has it, an unchanged value is not
    sent again. Raises :class:`TagLimitExceeded` when the secret would carry more than
    :data:`MAX_TAGS` tags."""
    have = {tag.get("Key", ""): tag.get("Value", "") for tag in existing}
    plan: dict[str, str] = {}
    for key, value in metadata.items():
        name = tag_key(key)
        if value is None and name not in have:
            continue
        text = tag_value("" if value is None else value)
        if have.get(name) != text:
            plan[name] = text
    counted = [key for key in {*have, *plan} if not key.startswith("aws:")]
    if len(counted) > MAX_TAGS:
        ours = [key for key in counted if key == MANAGED_BY_TAG or key.startswith(TAG_KEY_PREFIX)]
        raise TagLimitExceeded(f"the secret would carry {len(counted)} tags, more than the {MAX_TAGS} AWS allows: "
                               f"{len(counted) - len(ours)} of other tools or people, and {len(ours)} the rotator "
                               f"keeps ({MANAGED_BY_TAG}, {TAG_KEY_PREFIX}*); remove some of the others")
    return [{"Key": key, "Value": value} for key, value in plan.items()]


def from_tags(tags: list[Mapping[str, str]]) -> dict[str, str]:
    """``Tags`` -> metadata: our ``jfrog-rotator:*`` tags and ``managed_by``; other tags are ignored."""
    meta: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if key == MANAGED_BY_TAG:
            meta["managed_by"] = value
        elif key.startswith(TAG_KEY_PREFIX) and value:  # an empty tag is a removed value
            meta[key[len(TAG_KEY_PREFIX):]] = value
    return meta


__all__ = ["MANAGED_BY_TAG", "MAX_TAGS", "TAG_KEY_PREFIX", "TagLimitExceeded", "from_tags", "tag_key", "tag_plan",
           "tag_value", "to_tags"]
