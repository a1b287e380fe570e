"""The stored value as its consumers read it, and the record the engine works on.

A target's value is our record (the default), or a document in another shape: a format the target
asks for (``format: dockerconfigjson`` ...) or the shape a value had when it was adopted (a
``{"username", "password"}`` secret stays one). For such a document the record's bookkeeping
(token id, generation, retired tokens, expiry) lives in the store's metadata beside it, and the
engine rebuilds the record from the document's token and that metadata. A value that is neither
is adopted when it holds a working JFrog token: the record then comes from JFrog
(``GET /access/api/v1/tokens/me``) and the token's claims. See docs/architecture.md ("The
record", "Adopting a secret") and docs/configuration.md ("Formats").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from rotator.core.record import RecordError, RetiredToken, SecretRecord, parse_time, retired_from_metadata, split_ids, utc_iso
from rotator.core.shapes import ConsumerValues, Found, registry_hosts, render, render_like
from rotator.core.target import Target
from rotator.jfrog.jwt import InvalidTokenFormat, decode_claims


def consumer_values(record: SecretRecord, url: str) -> ConsumerValues:
    return ConsumerValues(access_token=record.access_token, username=record.username, url=url,
                          token_id=record.token_id,
                          expires_at=utc_iso(record.expires_at) if record.expires_at else None)


def render_value(target: Target, record: SecretRecord, found: Found | None, url: str) -> str:
    """The text to store: our record, the target's format, or (no format set) the shape found."""
    if target.format == "record" or (target.format is None and found is None):
        return record.dumps()
    values = consumer_values(record, url)
    if target.format is None:
        assert found is not None
        return render_like(found, values)
    hosts = target.registry_hosts or registry_hosts(url)
    return render(target.format, values, hosts=hosts, template=target.template)


def keeps_record(target: Target, found: Found | None) -> bool:
    """True when the stored value will be our record (its bookkeeping in it, not in metadata)."""
    return target.format == "record" or (target.format is None and found is None)


def token_in_template_output(text: str, template: str) -> Found | None:
    """The token in a value the target's ``template`` made (``find_token`` cannot know its shape):
    the template read back as a pattern, ``{access_token}`` its capture."""
    pattern, pos, seen = "", 0, set()
    for match in re.finditer(r"\{(\w+)\}", template):
        pattern += re.escape(template[pos:match.start()])
        name = match.group(1)
        pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
        seen.add(name)
        pos = match.end()
    pattern += re.escape(template[pos:])
    found = re.fullmatch(pattern, text, flags=re.S)
    if not found or "access_token" not in found.groupdict():
        return None
    return Found("bare", found.group("access_token"), found.groupdict().get("username"), text)


def record_from_metadata(found: Found, metadata: Mapping[str, str], *, target: str, url: str) -> SecretRecord | None:
    """The record of a document we wrote: its token plus the bookkeeping in the metadata beside it.
    ``None`` when the metadata is not ours for this target, or names another token than the
    document holds (the value was replaced by hand: adopt it instead)."""
    if metadata.get("target") != target or not metadata.get("token_id") or not metadata.get("generation"):
        return None
    claims = _claims(found.token)
    if claims is not None and claims.get("jti") and claims["jti"] != metadata["token_id"]:
        return None
    try:
        issued = parse_time(metadata["issued_at"], "issued_at") if metadata.get("issued_at") else _epoch()
        expires_text = metadata.get("expires_at")
        expires = parse_time(expires_text, "expires_at") if expires_text and expires_text != "never" else None
        # never the token the document holds (a retired list written before a value that did not land)
        retired = tuple(r for r in retired_from_metadata(metadata) if r.token_id != metadata["token_id"])
        generation = int(metadata["generation"])
    except (RecordError, ValueError):
        return None
    return SecretRecord(access_token=found.token, token_id=metadata["token_id"],
                        username=metadata.get("username") or found.username or "",
                        scope=str((claims or {}).get("scp") or ""), url=url, issued_at=issued,
                        expires_at=expires, target=target, generation=generation, retired=retired,
                        outputs=split_ids(metadata.get("outputs")),
                        outputs_pending=split_ids(metadata.get("outputs_pending")),
                        output_of=metadata.get("output_of") or None)


def successor_record(found: Found, me: Mapping[str, Any], metadata: Mapping[str, str], *, target: Target,
                     url: str) -> SecretRecord | None:
    """The record of a document that holds the *next* token of the record its metadata describes:
    a rotation stored the document, and the metadata write after it was lost. ``me`` is JFrog's
    answer for the document's token (its tag names this target). The previous token is retired
    with the target's overlap, counted from when the new one was issued; ``None`` when the metadata
    does not describe a record of ours."""
    try:
        previous = record_from_metadata(_Holding(str(metadata.get("token_id") or "")), metadata, target=target.name,
                                        url=url)
    except (RecordError, ValueError):
        return None
    if previous is None:
        return None
    adopted = adopted_record(found, me, target=target.name, url=url)
    if not adopted.token_id or adopted.token_id == previous.token_id:
        return None
    retiring = RetiredToken(previous.token_id, revoke_after=adopted.issued_at + timedelta(seconds=target.overlap),
                            expires_at=previous.expires_at)
    return replace(previous, access_token=found.token, token_id=adopted.token_id,
                   username=previous.username or adopted.username, scope=adopted.scope,
                   issued_at=adopted.issued_at, expires_at=adopted.expires_at, generation=previous.generation + 1,
                   retired=(*previous.retired, retiring))


class _Holding:
    """A stand-in :class:`Found` for the token the metadata names (no value: only its id counts)."""

    def __init__(self, token_id: str) -> None:
        self.token = ""
        self.username = None
        self.token_id = token_id


def adopted_record(found: Found, me: Mapping[str, Any], *, target: str, url: str) -> SecretRecord:
    """The record of a value we take over: what JFrog says of its token (``/tokens/me``) and the
    token's claims. Generation 0, so the first rotation writes generation 1."""
    claims = _claims(found.token) or {}
    subject = str(me.get("subject") or claims.get("sub") or "")
    username = subject.rsplit("/users/", 1)[-1] if "/users/" in subject else (found.username or "")
    issued = me.get("issued_at") or claims.get("iat")
    expiry = me.get("expiry") or claims.get("exp")
    return SecretRecord(
        access_token=found.token,
        token_id=str(me.get("token_id") or claims.get("jti") or ""),
        username=username,
        scope=str(claims.get("scp") or me.get("scope") or ""),
        url=url,
        issued_at=datetime.fromtimestamp(issued, timezone.utc) if isinstance(issued, (int, float)) else _epoch(),
        expires_at=datetime.fromtimestamp(expiry, timezone.utc) if isinstance(expiry, (int, float)) and expiry
        else None,
        target=target,
        generation=0,
    )


def _claims(token: str) -> dict[str, Any] | None:
    try:
        return decode_claims(token).raw
    except InvalidTokenFormat:
        return None  # a reference token: opaque


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, timezone.utc)
