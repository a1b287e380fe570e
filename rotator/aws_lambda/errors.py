"""The error a Lambda step raises when it cannot complete (Secrets Manager then retries)."""

from __future__ import annotations

from rotator.core.redact import scrub


class RotationFailed(RuntimeError):
    """A step could not complete: a remote call failed or a guard refused. Secrets Manager retries."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))
