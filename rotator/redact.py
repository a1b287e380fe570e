"""The one place secrets are kept out of logs, error messages and reprs.

Two defences, used together everywhere text leaves the process:

* values the program handles are *registered* (access tokens, refresh tokens, reference tokens,
  Vault tokens) and replaced wherever they appear, whatever their shape (a refresh token is a
  plain UUID, so no pattern could tell it from a token id);
* anything shaped like a JWT, a JFrog reference token or a Vault service token is masked even if
  nobody registered it (a server echoing a token in an error body, a user pasting one).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict

REDACTED = "***"

# JWT (three base64url segments, header starts with eyJ), JFrog reference tokens (base64 of
# "reftkn:..."), Vault/OpenBao service, batch and recovery tokens, JFrog legacy API keys.
_SECRET_PATTERNS = re.compile(
    r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"
    r"|\bcmVmd[A-Za-z0-9]{20,}"
    r"|\b(?:hv[sbr]|s|b)\.[A-Za-z0-9]{20,}"
    r"|\bAKCp[A-Za-z0-9]{60,}"
)

_MIN_SECRET_LEN = 8
_MAX_REGISTERED = 50_000

_lock = threading.Lock()
_registered: OrderedDict[str, None] = OrderedDict()


def register(*secrets: str | None) -> None:
    """Remember secret values so :func:`scrub` removes them from any text later on."""
    with _lock:
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= _MIN_SECRET_LEN:
                _registered[secret] = None
                _registered.move_to_end(secret)
        while len(_registered) > _MAX_REGISTERED:
            _registered.popitem(last=False)


def scrub(text: object) -> str:
    """Return ``str(text)`` with every registered secret and every token-shaped string masked."""
    out = str(text)
    if not out:
        return out
    with _lock:
        known = [s for s in _registered if s in out]
    for secret in sorted(known, key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    return _SECRET_PATTERNS.sub(REDACTED, out)


def mask(value: str | None) -> str:
    """How a secret field is shown in a repr or a table: never its value, only whether it is set."""
    return REDACTED if value else "<unset>"


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the rendered message and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
