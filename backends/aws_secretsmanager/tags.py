"""A secret's non-secret metadata as its tags: ``managed-by`` plus ``jfrog-rotator:<key>``.

Tags are read with ``DescribeSecret`` and written with ``CreateSecret`` / ``TagResource``, so
status and triggers never read the value. Keys and values are cut to what AWS accepts (see
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Tag.html); a removed key is
written as an empty value, which reads back as absent.

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


__all__ = ["MANAGED_BY_TAG", "TAG_KEY_PREFIX", "from_tags", "tag_key", "tag_value", "to_tags"]
