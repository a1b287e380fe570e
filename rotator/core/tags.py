"""The tag the rotator puts on what it makes: JFrog token descriptions and store metadata keys.

Every token the rotator mints carries the description ``jfrog-rotator:<target>:<rotation id>``, so
the orphan sweep can list a target's tokens with one ``description`` filter
(https://jfrog.com/help/r/jfrog-rest-apis/get-tokens) and tell them from anything else.
"""

from __future__ import annotations

TAG_PREFIX = "jfrog-rotator"


def description_tag(target: str, rotation_id: str) -> str:
    """The description tag of a token minted by rotation ``rotation_id`` of ``target``."""
    return f"{TAG_PREFIX}:{target}:{rotation_id}"


def description_filter(target: str) -> str:
    """The ``GET /tokens?description=`` pattern that matches every token of ``target``."""
    return f"{TAG_PREFIX}:{target}:*"


def fleet_filter() -> str:
    """The ``GET /tokens?description=`` pattern that matches every token the rotator minted (one
    list for a whole sweep; JFrog matches a trailing ``*`` only)."""
    return f"{TAG_PREFIX}:*"


def tag_target(description: str | None) -> str | None:
    """The target name of a token description starting with our tag, else ``None``."""
    if not description:
        return None
    parts = description.split(" ", 1)[0].split(":")
    if len(parts) == 3 and parts[0] == TAG_PREFIX:
        return parts[1]
    return None


def tag_rotation(description: str | None) -> str | None:
    """The rotation id of a token description starting with our tag, else ``None``."""
    if tag_target(description) is None:
        return None
    return (description or "").split(" ", 1)[0].split(":")[2]
