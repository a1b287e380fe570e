"""The tag the rotator puts on what it makes: JFrog token descriptions and store metadata keys.

Every token the rotator mints carries the description ``jfrog-rotator:<target>:<rotation id>``, so
the orphan sweep can list a target's tokens with one ``description`` filter
(https://jfrog.com/help/r/jfrog-rest-apis/get-tokens) and tell them from anything else. A token
that replaces one the rotator did not mint (an adopted token, or a first token stored by hand)
says so with a fourth part, ``:after-untagged``: that predecessor is not tagged, so the one list a
sweep makes cannot show it, and the sweep reads the target's store to retire it on time.
"""

from __future__ import annotations

TAG_PREFIX = "jfrog-rotator"
AFTER_UNTAGGED = "after-untagged"


def description_tag(target: str, rotation_id: str, *, after_untagged: bool = False) -> str:
    """The description tag of a token minted by rotation ``rotation_id`` of ``target``;
    ``after_untagged``: the token it replaces carries no tag."""
    return f"{TAG_PREFIX}:{target}:{rotation_id}" + (f":{AFTER_UNTAGGED}" if after_untagged else "")


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
    parts = _tag_parts(description)
    return parts[1] if parts else None


def tag_after_untagged(description: str | None) -> bool:
    """Whether the token's tag says the token it replaced carries no tag."""
    parts = _tag_parts(description)
    return bool(parts) and len(parts) == 4


def _tag_parts(description: str | None) -> list[str] | None:
    parts = (description or "").split(" ", 1)[0].split(":")
    if parts[0] == TAG_PREFIX and (len(parts) == 3 or (len(parts) == 4 and parts[3] == AFTER_UNTAGGED)):
        return parts
    return None


def tag_rotation(description: str | None) -> str | None:
    """The rotation id of a token description starting with our tag, else ``None``."""
    parts = _tag_parts(description)
    return parts[2] if parts else None
