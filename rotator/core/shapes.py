"""Shapes: find a JFrog token in a value that is not our record, and write the formats consumers read.

A store may already hold a token that someone put there by hand: a bare token, a small JSON object
(``{"username", "password"}`` is what JFrog's own rotation Lambda stores,
https://github.com/jfrog/jfrog-secret-rotator-lambda), the JSON ``jf atc`` prints (docs/jf-atc.md),
a Docker ``config.json`` / Kubernetes ``.dockerconfigjson`` or ``KEY=value`` env text.
:func:`find_token` says which shape it is and where the token sits; :func:`render_like` writes a new
token back in that same shape, keeping everything else; :func:`render` writes a fresh value in one
of the formats a target can ask for with ``format:`` (docs/configuration.md, "Formats").

What counts as a token: a JWT (three base64url segments whose first two decode to JSON objects) or
a 64-character JFrog reference token, ``cmVmd[A-Za-z0-9]{59}``
(https://jfrog.com/help/r/jfrog-platform-administration-documentation/understanding-identity-tokens).
Everything here is pure: no I/O. Error messages name keys, hosts and lines, never a value.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import shlex
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rotator.core.redact import register, scrub

SHAPES = ("bare", "access_token", "token", "username-password", "jf-atc", "dockerconfigjson", "env")
FORMATS = ("record", "token", "dockerconfigjson", "username-password", "env", "template")
TEMPLATE_KEYS = ("access_token", "username", "url", "token_id", "expires_at")

# The JSON keys that may hold the token, in the order they are preferred; a document holding two
# different tokens under them is ambiguous. Other token-like keys (``reference_token`` beside a
# jf atc ``access_token``) are aliases or companions, not competitors.
_JSON_TOKEN_KEYS = ("access_token", "token", "password")
_SHAPE_OF_KEY = {"access_token": "access_token", "token": "token", "password": "username-password"}
# `jf atc` prints these beside access_token (docs/jf-atc.md); a plain {"access_token"} has none.
_JF_ATC_KEYS = ("token_type", "expires_in", "scope")
# Keys that describe the token beside it; rewritten with the new token when present.
_JSON_FACT_KEYS = ("username", "token_id", "expires_at")
_ENV_TOKEN_KEYS = ("JFROG_ACCESS_TOKEN", "JFROG_TOKEN", "ACCESS_TOKEN")
_ENV_USER_KEYS = ("JFROG_USER", "JFROG_USERNAME")

_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REFERENCE_TOKEN = re.compile(r"cmVmd[A-Za-z0-9]{59}")
_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")


class ShapeError(ValueError):
    """A value cannot be read or written in a shape; the message names what is wrong, never a secret."""


@dataclass(frozen=True)
class Found:
    """A token found in a stored value, and how the value holds it."""

    shape: str
    token: str = field(repr=False)
    username: str | None
    document: object = field(repr=False)

    def __post_init__(self) -> None:
        register(self.token)

    def describe(self) -> str:
        """What the value is, for messages: e.g. ``JSON with 'password' and 'username'``."""
        if self.shape == "bare":
            return "a bare token"
        if self.shape == "jf-atc":
            return "JSON as `jf atc` prints it"
        if self.shape == "dockerconfigjson":
            return f"a .dockerconfigjson for {_and(_hosts_holding(self.document, self.token))}"
        if self.shape == "env":
            keys = [line.key for line in _env_lines(self.document) if _holds(line, self.token)]
            users = [line.key for line in _env_lines(self.document) if line.key in _ENV_USER_KEYS][:1]
            return f"env text with {_and(list(dict.fromkeys(keys + users)))}"
        keys = _json_keys_holding(self.document, self.token)
        if "username" in self.document:
            keys.append("username")
        return f"JSON with {_and([repr(key) for key in sorted(keys)])}"


@dataclass(frozen=True)
class ConsumerValues:
    """What a consumer-facing format is made of: the token and the facts beside it."""

    access_token: str = field(repr=False)
    username: str
    url: str
    token_id: str
    expires_at: str | None  # ISO-8601 UTC with Z; None = never expires

    def __post_init__(self) -> None:
        register(self.access_token)


# -- finding -----------------------------------------------------------------------------------
def find_token(text: str) -> Found | None:
    """The JFrog token in ``text`` and the shape holding it; ``None`` when there is none.

    Raises :class:`ShapeError` when the value holds two different tokens (which one is meant?).
    Never pass our own record: it has its own module (rotator/core/record.py).
    """
    stripped = text.strip()
    if _is_token(stripped):
        return Found("bare", stripped, None, text)
    try:
        document = json.loads(text)
    except ValueError:
        return _find_in_env(text)
    if not isinstance(document, dict):
        return None
    return _find_in_json(document) or _find_in_dockerconfig(document)


def _is_token(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if _REFERENCE_TOKEN.fullmatch(value):
        return True
    if not _JWT.fullmatch(value):
        return False
    header, payload, _signature = value.split(".")
    return _json_object_segment(header) and _json_object_segment(payload)


def _json_object_segment(segment: str) -> bool:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, UnicodeError, ValueError):
        return False
    return isinstance(decoded, dict)


def _find_in_json(document: dict) -> Found | None:
    held = {key: document[key] for key in _JSON_TOKEN_KEYS if _is_token(document.get(key))}
    if len(set(held.values())) > 1:
        raise ShapeError(f"the JSON holds different tokens in {_and([repr(key) for key in held])}")
    if not held:
        return None
    first = next(iter(held))
    shape = _SHAPE_OF_KEY[first]
    if first == "access_token" and any(key in document for key in _JF_ATC_KEYS):
        shape = "jf-atc"
    username = document.get("username")
    return Found(shape, held[first], username if isinstance(username, str) else None, document)


def _find_in_dockerconfig(document: dict) -> Found | None:
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return None
    found: dict[str, tuple[str, str | None]] = {}  # host -> (token, username)
    for host, entry in auths.items():
        credential = _docker_credential(host, entry)
        if credential is not None:
            found[host] = credential
    if len({token for token, _ in found.values()}) > 1:
        raise ShapeError(f"the .dockerconfigjson holds different tokens for {_and(list(found))}")
    if not found:
        return None
    token, username = next(iter(found.values()))
    return Found("dockerconfigjson", token, username, document)


def _docker_credential(host: str, entry: object) -> tuple[str, str | None] | None:
    """(token, username) of one ``auths`` entry, read as Docker does: ``password``, or ``auth`` =
    base64("user:password") split at the first colon (https://docs.docker.com/reference/cli/docker/login/)."""
    if not isinstance(entry, dict):
        return None
    username = entry.get("username") if isinstance(entry.get("username"), str) else None
    tokens = [entry["password"]] if _is_token(entry.get("password")) else []
    decoded = _decode_auth(entry.get("auth"))
    if decoded is not None and _is_token(decoded[1]):
        tokens.append(decoded[1])
        username = username or decoded[0]
    if len(set(tokens)) > 1:
        raise ShapeError(f"the .dockerconfigjson entry for {host} has different tokens in 'password' and 'auth'")
    return (tokens[0], username or None) if tokens else None


def _decode_auth(auth: object) -> tuple[str, str] | None:
    if not isinstance(auth, str):
        return None
    try:
        user, colon, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeError):
        return None
    return (user, password) if colon else None


@dataclass(frozen=True)
class _EnvLine:
    """One ``KEY=value`` line of env text: where its value sits, so it can be replaced in place."""

    index: int
    key: str
    value: str | None  # None: not a plain (optionally quoted) word
    start: int
    end: int
    quote: str


def _env_lines(lines: Sequence[str]) -> list[_EnvLine]:
    out = []
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _ASSIGNMENT.match(body)
        if match is None:
            continue
        start, rest = match.end(), body[match.end():]
        quote = rest[:1] if rest[:1] in ("'", '"') else ""
        if quote:
            close = rest.find(quote, 1)
            value, end = (rest[1:close], start + close + 1) if close > 0 else (None, len(body))
        else:
            word = re.match(r"\S*", rest).group(0)
            value, end = word, start + len(word)
        tail = body[end:]
        if tail.strip() and not re.match(r"\s+#", tail):
            value = None
        out.append(_EnvLine(index, match.group(1), value, start, end, quote))
    return out


def _holds(line: _EnvLine, token: str) -> bool:
    return line.key in _ENV_TOKEN_KEYS and line.value == token


def _find_in_env(text: str) -> Found | None:
    lines = text.splitlines(keepends=True)
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not _ASSIGNMENT.match(line):
            return None  # not env text: every line is blank, a comment or an assignment
    parsed = _env_lines(lines)
    held = [line for line in parsed if line.key in _ENV_TOKEN_KEYS and _is_token(line.value)]
    if len({line.value for line in held}) > 1:
        raise ShapeError(f"the env text holds different tokens in {_and(sorted({line.key for line in held}))}")
    if not held:
        return None
    users = [line.value for line in parsed if line.key in _ENV_USER_KEYS and line.value]
    return Found("env", held[0].value, users[0] if users else None, lines)


# -- rendering ---------------------------------------------------------------------------------
def render(format: str, values: ConsumerValues, *, hosts: Sequence[str] = (), template: str | None = None) -> str:
    """``values`` in ``format``, one of :data:`FORMATS` except ``record`` (the record module writes that).

    ``hosts`` are the registries of ``dockerconfigjson`` (default :func:`registry_hosts` of the URL);
    ``template`` is the ``str.format`` text of ``template``, with the keys :data:`TEMPLATE_KEYS`.
    """
    if format == "record":
        raise ShapeError("format 'record' is written by the record module (rotator/core/record.py), not rendered here")
    if format == "token":
        return values.access_token
    if format == "dockerconfigjson":
        registries = tuple(hosts) or registry_hosts(values.url)
        return _dump({"auths": {host: _docker_entry(values.username, values.access_token) for host in registries}})
    if format == "username-password":
        return _dump({"username": values.username, "password": values.access_token})
    if format == "env":
        pairs = (("JFROG_URL", values.url), ("JFROG_ACCESS_TOKEN", values.access_token), ("JFROG_USER", values.username))
        return "".join(f"{key}={shlex.quote(value)}\n" for key, value in pairs)
    if format == "template":
        return _render_template(template, _template_values(values))
    raise ShapeError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")


def registry_hosts(url: str) -> tuple[str, ...]:
    """The Docker registry host of a JFrog URL: its host name, with the port when the URL names one
    (``docker login 127.0.0.1:8082`` keeps its credentials under ``127.0.0.1:8082``)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        raise ShapeError(f"the JFrog URL {scrub(url)!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ShapeError(f"the JFrog URL {scrub(url)!r} has no host name for a registry")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return (f"{host}:{port}" if port else host,)


def _docker_entry(username: str, token: str) -> dict[str, str]:
    return {"username": username, "password": token, "auth": _encode_auth(username, token)}


def _encode_auth(username: str, token: str) -> str:
    return base64.b64encode(f"{username}:{token}".encode()).decode("ascii")


def _dump(document: object) -> str:
    return json.dumps(document, indent=2)


def check_template(template: str | None) -> None:
    """Refuse a ``template`` that cannot be filled in (an unknown key, broken braces) with the
    :class:`ShapeError` :func:`render` would raise, so a config or a setting is refused when it is
    read, before anything is minted."""
    _render_template(template, {key: "x" for key in TEMPLATE_KEYS})


def _render_template(template: str | None, values: dict[str, str]) -> str:
    if template is None:
        raise ShapeError("format 'template' needs a template")
    known = ", ".join(TEMPLATE_KEYS)
    try:
        names = [name for _literal, name, _spec, _conversion in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ShapeError(f"template: {scrub(exc)}") from None
    for name in names:  # also refuses {}, {0}, {url.attr} and {url[0]}
        if name not in TEMPLATE_KEYS:
            raise ShapeError(f"template: unknown key {scrub(name)!r} (known: {known})")
    try:
        return template.format_map(values)
    except KeyError as exc:  # a key inside a format spec, e.g. "{url:{width}}"
        raise ShapeError(f"template: unknown key {scrub(exc.args[0])!r} (known: {known})") from None
    except (ValueError, IndexError, TypeError) as exc:
        raise ShapeError(f"template: {scrub(exc)}") from None


def _template_values(values: ConsumerValues) -> dict[str, str]:
    return {"access_token": values.access_token, "username": values.username, "url": values.url,
            "token_id": values.token_id, "expires_at": values.expires_at or "never"}


def render_like(found: Found, values: ConsumerValues) -> str:
    """The value ``found`` came from, with the new token in place of the old one and everything
    else (other keys, hosts, lines, comments) kept."""
    if found.shape == "bare":
        return found.document.replace(found.token, values.access_token)
    if found.shape == "dockerconfigjson":
        return _dump(_dockerconfig_like(found, values))
    if found.shape == "env":
        return "".join(_env_like(found, values))
    if found.shape in ("access_token", "token", "username-password", "jf-atc"):
        document = dict(found.document)
        for key in _json_keys_holding(document, found.token):
            document[key] = values.access_token
        for key in _JSON_FACT_KEYS:
            if key in document:
                document[key] = getattr(values, key)
        if found.shape == "jf-atc":  # what `jf atc` printed of the old token would mislead a reader
            for key in ("refresh_token", "reference_token", "expires_in"):
                document.pop(key, None)
        return _dump(document)
    raise ShapeError(f"unknown shape {found.shape!r} (known: {', '.join(SHAPES)})")


def _dockerconfig_like(found: Found, values: ConsumerValues) -> dict:
    document = copy.deepcopy(found.document)
    for host in _hosts_holding(document, found.token):
        entry = document["auths"][host]
        new = _docker_entry(values.username, values.access_token)
        for key in ("username", "password", "auth"):
            if key in entry:
                entry[key] = new[key]
    return document


def _env_like(found: Found, values: ConsumerValues) -> list[str]:
    lines = list(found.document)
    for line in _env_lines(lines):
        if _holds(line, found.token):
            new = values.access_token
        elif line.key in _ENV_USER_KEYS:
            new = values.username
        else:
            continue
        text = lines[line.index]
        quoted = f"{line.quote}{new}{line.quote}" if line.quote and line.quote not in new else shlex.quote(new)
        lines[line.index] = text[:line.start] + quoted + text[line.end:]
    return lines


def _json_keys_holding(document: dict, token: str) -> list[str]:
    return [key for key in _JSON_TOKEN_KEYS if document.get(key) == token]


def _hosts_holding(document: dict, token: str) -> list[str]:
    out = []
    for host, entry in document["auths"].items():
        credential = _docker_credential(host, entry)
        if credential is not None and credential[0] == token:
            out.append(host)
    return out


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
