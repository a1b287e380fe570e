"""Typed errors of the JFrog client. Every message is passed through :func:`rotator.core.redact.scrub`."""

from __future__ import annotations

import json
from typing import Any

from rotator.core.redact import scrub


class JFrogError(Exception):
    """Base class: something about talking to a JFrog Platform went wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        return self.args[0]


class JFrogConfigError(JFrogError):
    """The connection details are unusable (bad flags, JFrog CLI config, certificates): a usage error."""


class MintingCredentialError(JFrogError):
    """The credential that mints could not be had now: an ID token file that cannot be read, a
    refused token exchange, an admin secret that cannot be read or holds no token. The message
    names the source or the call, never the secret."""


class JFrogConnectionError(JFrogError):
    """The server could not be reached, TLS failed, or the call timed out after its retries."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {reason}")


class JFrogHTTPError(JFrogError):
    """The server answered with an unexpected status.

    ``errors`` is the server's ``errors[]`` list (Access: ``{code, message}``; Artifactory:
    ``{status, message}``), empty when the body was not in that shape. ``str()`` follows
    jfrog-client-go: ``server response: <status line>`` then the body re-indented by two spaces.
    """

    def __init__(self, method: str, path: str, status: int, reason: str, body: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.body = scrub(body)  # scrubbed whole, then cut for the message: a cut never splits a token unmasked
        self.errors: list[dict[str, Any]] = _errors_of(self.body)
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"server response: {self.status} {self.reason}".rstrip()
        parsed = _parsed(self.body) if len(self.body) <= MAX_BODY_SHOWN else None
        body = self.body if parsed is None else json.dumps(parsed, indent=2, ensure_ascii=False)
        if len(body) > MAX_BODY_SHOWN:
            body = f"{body[:MAX_BODY_SHOWN]}... ({len(self.body):,} characters in all)"
        return f"{text}\n{body}" if body else text

    @property
    def call(self) -> str:
        """``METHOD /path`` of the failed call, for messages that name it."""
        return f"{self.method} {self.path}"

    def first_message(self) -> str:
        """The first ``errors[].message`` the server sent, or ``""``."""
        for item in self.errors:
            if isinstance(item, dict) and item.get("message"):
                return str(item["message"])
        return ""

    def __repr__(self) -> str:
        return f"JFrogHTTPError(method={self.method!r}, path={self.path!r}, status={self.status})"


def with_call(exc: JFrogError) -> str:
    """The error's message naming the call that failed (``METHOD /path: ...``): a connection error
    names it already, an HTTP error's message starts with the server's answer."""
    if isinstance(exc, JFrogHTTPError):
        return f"{exc.call}: {exc}"
    return str(exc)


#: How much of a server's answer an error message shows (a proxy's HTML page, a body of megabytes).
MAX_BODY_SHOWN = 2000


def _parsed(body: str) -> Any:
    """The JSON in ``body``, or None (not JSON, or nested too deep to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _errors_of(body: str) -> list[dict[str, Any]]:
    parsed = _parsed(body) if len(body) <= 1 << 20 else None
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        return [e for e in parsed["errors"] if isinstance(e, dict)]
    return []
