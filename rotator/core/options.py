"""Typed reading of configuration mappings with errors that name the file and the key path.

Used by ``rotator.config`` for the YAML file and by every backend for its own options, so all
config errors read the same: ``rotator.yaml: targets[2].token.expiry: must be a duration``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_MISSING: Any = object()
_DURATION = re.compile(r"([0-9]+)\s*([smhdw]?)")  # ASCII digits only: str.isdigit takes '٣' and '³'
#: The longest duration any key accepts (100 years): a date that far ahead is still a valid date.
MAX_DURATION = 100 * 365 * 86400
#: How much of a bad value an error message shows.
_SHOWN = 60
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(ValueError):
    """A bad configuration value. ``str()`` is ``<file>: <key path>: <what is wrong>``."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.problem = message
        where = ": ".join(p for p in (source, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


def parse_duration(value: Any) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` or an integer of seconds -> seconds (ValueError)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 90s, 15m, 24h, 7d or a number of seconds")
    seconds = None
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        seconds = value
    elif isinstance(value, str) and len(value) <= _SHOWN:
        match = _DURATION.fullmatch(value.strip())
        if match:
            seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds is None:
        raise ValueError(f"must be a duration like 90s, 15m, 24h, 7d or a number of seconds, not {shown(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most 100 years ({MAX_DURATION}s), not {shown(value)}")
    return seconds


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length: an error names a bad value, never echoes a huge one
    (the repr of a list repeated by YAML aliases can be gigabytes)."""
    if isinstance(value, (dict, list)):
        return _kind(value)
    text = repr(value) if not isinstance(value, str) or len(value) <= _SHOWN else repr(value[:_SHOWN]) + "..."
    return text if len(text) <= _SHOWN + 5 else text[:_SHOWN] + "..."


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds an ASCII control character (a path or name typed or generated wrong)."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an ``http(s)://HOST[:PORT][/path]`` URL (said for a config key), or None:
    checked at load, so a bracket left open or a port of 99999 is exit 2, not an error at the first call."""
    if " " in url or has_control_characters(url):
        return f"{shown(url)} is not a valid URL: it holds spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"{shown(url)} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{shown(url)} is not a valid URL: give http(s)://HOST[:PORT]"
    return None


def parse_share_or_duration(value: Any) -> tuple[int | None, float | None]:
    """``25%`` -> (None, 0.25); ``2h`` / 7200 -> (7200, None). ValueError names what is accepted."""
    if isinstance(value, str) and value.strip().endswith("%"):
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*%", value.strip())
        fraction = float(match.group(1)) / 100 if match else -1.0
        if not 0 < fraction < 1:
            raise ValueError(f"a percentage must be between 0% and 100%, not {shown(value)}")
        return None, fraction
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc} or a percentage like 25%") from None
    if seconds <= 0:
        raise ValueError("must be more than 0s")
    return seconds, None


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: an environment variable, a file, or (if the user insists) inline."""

    what: str
    env: str | None = None
    file: str | None = None
    inline: str | None = None

    def is_set(self) -> bool:
        return bool(self.env or self.file or self.inline)

    def describe(self) -> str:
        if self.env:
            return f"${self.env}"
        if self.file:
            return f"file {self.file}"
        return "inline value" if self.inline else "not set"

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret value; ValueError (never containing the value) when it is unavailable."""
        environ = os.environ if environ is None else environ
        if self.env:
            value = environ.get(self.env, "")
            if not value:
                raise ValueError(f"{self.what}: environment variable {self.env} is not set or empty")
            return value
        if self.file:
            try:
                value = Path(self.file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{self.what}: cannot read {self.file}: {exc.strerror}") from None
            if not value:
                raise ValueError(f"{self.what}: file {self.file} is empty")
            return value
        if self.inline:
            return self.inline
        raise ValueError(f"{self.what}: not configured")


class Options:
    """One mapping of a config file, read key by key; :meth:`finish` rejects unknown keys."""

    def __init__(self, data: Any, where: str, source: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(source, where, f"must be a mapping, not {_kind(data)}")
        self.data = data
        self.where = where
        self.source = source
        self._seen: set[str] = set()

    def path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source, self.path(key), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, "is required")
        return default

    def str(self, key: str, default: Any = _MISSING, *, choices: Sequence[str] | None = None,
            pattern: str | None = None, hint: str = "") -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(key, f"must be a string, not {_kind(value)}")
        value = str(value)
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {shown(value)}")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self.error(key, f"{shown(value)} is not valid{': ' + hint if hint else ''}")
        return value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}")
        return value

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def duration(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def share_or_duration(self, key: str, default: Any = _MISSING) -> tuple[int | None, float | None]:
        value = self.raw(key, default)
        try:
            return parse_share_or_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def mapping(self, key: str, default: Any = _MISSING) -> Options:
        value = self.raw(key, {} if default is not _MISSING else default)
        return Options(value, self.path(key), self.source)

    def list(self, key: str, default: Any = _MISSING) -> list[Any]:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        return value

    def secret(self, base: str, what: str, *, required: bool = False) -> SecretRef:
        """``<base>_env`` / ``<base>_file`` / ``<base>_insecure_inline``: at most one of them.

        A plain ``<base>:`` key is refused so a secret never sits in the file by accident.
        """
        if base in self.data:
            self._seen.add(base)
            raise self.error(base, f"secrets are not read from the config file: use {base}_env or "
                             f"{base}_file (or {base}_insecure_inline if you really must)")
        env = self.str(f"{base}_env", None)
        file = self.str(f"{base}_file", None)
        inline = self.str(f"{base}_insecure_inline", None)
        given = [k for k, v in ((f"{base}_env", env), (f"{base}_file", file),
                                (f"{base}_insecure_inline", inline)) if v]
        if len(given) > 1:
            raise self.error(given[1], f"give only one of {', '.join(given)}")
        if required and not given:
            raise self.error(f"{base}_env", f"{what} is required: set {base}_env or {base}_file")
        return SecretRef(what=f"{self.source}: {self.path(base)}" if self.source else self.path(base),
                         env=env, file=file, inline=inline)

    def finish(self) -> None:
        unknown = [k for k in self.data if k not in self._seen]
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise self.error(str(unknown[0]), f"unknown key (known keys here: {known})")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)
