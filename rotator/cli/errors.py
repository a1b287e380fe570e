"""How a failure (or a warning) reaches the user: the exit code it maps to and its one line on stderr.

Exit codes: 0 ok; 1 a remote call failed; 2 bad usage, bad config or bad input. The line is
``HH:MM:SS [Error] <message>`` like the JFrog CLI's (docs/jf-atc.md), scrubbed of secrets.
"""

from __future__ import annotations

import os
import sys
import time

from rotator.core.redact import scrub

EXIT_OK, EXIT_REMOTE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


def exit_code_for(exc: BaseException) -> int | None:
    """1 for remote failures, 2 for usage/config/input errors, None for the unexpected."""
    # Imported only once something failed: rotator.jfrog loads requests, which `--help` and a
    # usage error do not need (start-up time, bench/RESULTS.md).
    from backends.base import BackendError
    from rotator.core.options import ConfigError
    from rotator.core.record import RecordError
    from rotator.core.token_spec import SpecError
    from rotator.jfrog.errors import JFrogConfigError, JFrogError

    if isinstance(exc, (UsageError, SpecError, JFrogConfigError, ConfigError)):
        return EXIT_USAGE
    if isinstance(exc, (JFrogError, BackendError, RecordError)):
        return EXIT_REMOTE
    return None


def print_error(message: str) -> None:
    """``HH:MM:SS [Error] message`` on stderr; ``JFROG_CLI_LOG_TIMESTAMP`` as in the JFrog CLI."""
    sys.stderr.write(f"{_timestamp()}[Error] {scrub(message)}\n")
    sys.stderr.flush()


def print_warning(message: str) -> None:
    """``HH:MM:SS [Warn] message`` on stderr, as the JFrog CLI logs a warning; the exit code is the caller's."""
    sys.stderr.write(f"{_timestamp()}[Warn] {scrub(message)}\n")
    sys.stderr.flush()


def _timestamp() -> str:
    mode = os.environ.get("JFROG_CLI_LOG_TIMESTAMP", "TIME").upper()
    if mode == "OFF":
        return ""
    if mode == "DATE_AND_TIME":
        return time.strftime("%Y/%m/%d %H:%M:%S ")
    return time.strftime("%H:%M:%S ")
