"""The one place secrets are kept out of logs, error messages and reprs.

Two defences, used together everywhere text leaves the process:

* values the program handles are *registered* (access tokens, refresh tokens, reference tokens,
  Vault tokens) and replaced wherever they appear, whatever their shape (a refresh token is a
  plain UUID, so no pattern could tell it from a token id);
* anything shaped like a JWT, a JFrog reference token or a Vault service token is masked even if
  nobody registered it (a server echoing a token in an error body, a user pasting one), and so is
  any value under a secret's name (``refresh_token``, ``password``, ``X-Amz-Security-Token`` ...)
  in a body or header a library logs.
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

# Values under a name that always holds a secret, however they are quoted: JSON, JSON inside a
# JSON string (a Secrets Manager SecretString), a Python dict repr, an HTTP header, botocore's
# canonical request; and a Docker config's ``auth`` (base64 of ``user:token``). botocore logs
# bodies and headers at DEBUG before anyone could register what they carry (a refresh token read
# from the store, the AWS session token), and a refresh token is a plain UUID that no shape tells
# from a token id. A config key (``jfrog.access_token``, ``backends.x.auth``) is not such a name,
# and a value is masked only if it has a digit, as generated secrets do (not an English word).
_SECRET_FIELDS = re.compile(
    r"""(?i)((?<![\w.-])(?:refresh_token|access_token|reference_token|secret_id|client_token|password"""
    r"""|x-amz-security-token|auth)\\*['"]?\s*[:=]\s*(?:b?\\*['"])?)"""
    r"""((?=[^'"\\\s,{}:\[]*\d)[^'"\\\s,{}:\[]{8,})""")

_MIN_SECRET_LEN = 8
_MAX_REGISTERED = 50_000
# Registered secrets made only of these characters are found by looking words up in a set, so
# scrubbing costs the same however many secrets are registered; others fall back to substrings.
_WORD = re.compile(r"[A-Za-z0-9_~+/-]{8,}")

_lock = threading.Lock()
_registered: OrderedDict[str, None] = OrderedDict()
_odd: set[str] = set()  # registered secrets that are not one "word" (passwords with punctuation)


def register(*secrets: str | None) -> None:
    """Remember secret values so :func:`scrub` removes them from any text later on."""
    with _lock:
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= _MIN_SECRET_LEN:
                _registered[secret] = None
                _registered.move_to_end(secret)
                if not _WORD.fullmatch(secret):
                    _odd.add(secret)
        while len(_registered) > _MAX_REGISTERED:
            _odd.discard(_registered.popitem(last=False)[0])


def scrub(text: object) -> str:
    """Return ``str(text)`` with every registered secret and every token-shaped string masked."""
    out = str(text)
    if not out:
        return out
    with _lock:
        odd = [s for s in _odd if s in out]
    for secret in sorted(odd, key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    out = _SECRET_PATTERNS.sub(REDACTED, out)
    out = _SECRET_FIELDS.sub(lambda m: m.group(1) + REDACTED, out)
    return _WORD.sub(_mask_registered, out)


def _mask_registered(match: re.Match[str]) -> str:
    word = match.group(0)
    return REDACTED if word in _registered else word


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the rendered message and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


def _scrub_record(record: logging.LogRecord) -> None:
    if getattr(record, "_scrubbed", False):
        return
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
    record._scrubbed = True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _install_record_factory() -> None:
    """Scrub every log record of the process when it is created, whoever logs it (botocore and
    urllib3 print request and response bodies at DEBUG) and whichever handler receives it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_jfrog_rotator_redacting", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_record(record)
        return record

    factory._jfrog_rotator_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()
