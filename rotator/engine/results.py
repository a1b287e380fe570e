"""What a rotation or a sweep reports: the step names, the error type and the result objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from rotator.core.record import utc_iso
from rotator.core.redact import scrub


class RotationStep(str, Enum):
    READ = "read"
    MINT = "mint"
    VERIFY = "verify"
    STORE = "store"
    OUTPUTS = "outputs"  # fan-out: the outputs besides the primary (rotator/engine/outputs.py)
    RETIRE = "retire"


#: Called as ``hook(step, "before" | "after", rotation_id)``; tests and the crash suite use it to
#: stop or kill the process at a chosen point. Exceptions it raises abort the rotation there.
StepHook = Callable[[RotationStep, str, str], None]


class RotationError(Exception):
    """A rotation failed at ``step``; the message says why (never a secret)."""

    def __init__(self, target: str, step: RotationStep, message: str, *, bad_input: bool = False) -> None:
        self.target = target
        self.step = step
        #: The stored value is unusable (not a record, another target's, a dead token): bad input, exit 2.
        self.bad_input = bad_input
        self.detail = scrub(message)
        super().__init__(scrub(f"{target}: {step.value}: {message}"))


class VerifyUnavailable(RotationError):
    """VERIFY could not get an answer on the new token (JFrog failing, unreachable, or answering
    nonsense), as opposed to JFrog refusing it (401/403/404)."""


class RefreshFailed(RotationError):
    """The refresh grant failed (MINT): JFrog may still have acted on it (an answer lost or
    unusable), which kills the stored token (``Engine.rotate`` checks)."""


@dataclass
class OutputResult:
    """What a run did at one output of a fan-out target.

    ``state``: ``rotated`` (now holds the new token), ``synced`` (caught up with the primary's
    token), ``in-sync`` (held it already), ``behind`` (a dry run: would be written), ``failed``
    (still holds ``token_id``, the token it had, which keeps working), or ``untouched`` (the
    rotation lost its race: outputs are left to the winner).
    """

    output: str  # <backend>:<path>
    state: str
    primary: bool = False
    token_id: str | None = None  # the token it holds after the run, when known
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state in ("rotated", "synced", "in-sync")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"output": self.output, "state": self.state, "token_id": self.token_id}
        if self.primary:
            out["primary"] = True
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class RotationResult:
    target: str
    rotation_id: str
    outcome: str  # rotated | synced | lost-race | skipped | dry-run | failed
    reason: str
    strategy: str = ""
    token_id: str | None = None
    previous_token_id: str | None = None
    generation: int | None = None
    expires_at: datetime | None = None
    revoked: list[str] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    step: str | None = None
    bad_input: bool = False  # failed because the stored value is unusable (left untouched): exit 2
    warnings: list[str] = field(default_factory=list)
    outputs: list[OutputResult] = field(default_factory=list)  # fan-out targets only, the primary first

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target, "outcome": self.outcome, "reason": self.reason, "rotation_id": self.rotation_id,
            "strategy": self.strategy, "token_id": self.token_id, "previous_token_id": self.previous_token_id,
            "generation": self.generation, "expires_at": utc_iso(self.expires_at) if self.expires_at else None,
            "revoked": self.revoked, "duration_seconds": round(self.duration, 3), "error": self.error,
            "failed_step": self.step,
        }
        if self.warnings:  # the rotation is done; something beside it (metadata, a revoke) is left to repair
            out["warnings"] = self.warnings
        if self.outputs:
            out["outputs"] = [o.to_json() for o in self.outputs]
        return out


@dataclass
class SweepResult:
    target: str
    retired_revoked: list[str] = field(default_factory=list)
    orphans_revoked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repaired: str | None = None
    outputs: list[OutputResult] = field(default_factory=list)  # fan-out targets: what the sync did
    bad_input: bool = False  # stopped because the stored value is unusable (left untouched): exit 2

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "retired_revoked": self.retired_revoked,
                               "orphans_revoked": self.orphans_revoked, "errors": self.errors}
        if self.repaired:
            out["repaired"] = self.repaired
        if self.outputs:
            out["outputs"] = [o.to_json() for o in self.outputs]
        return out
