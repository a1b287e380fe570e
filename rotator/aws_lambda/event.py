"""The rotation event Secrets Manager sends, and the one JSON log line each step writes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.aws_lambda.settings import RotationSetupError
from rotator.core.redact import scrub

log = logging.getLogger("rotator.aws_lambda")
if log.level == logging.NOTSET:
    log.setLevel(logging.INFO)  # the Lambda runtime's root logger drops INFO

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
_PRINTABLE = re.compile(r"[ -~]+")  # what AWS's template accepts in an event field
_REQUEST_TOKEN = re.compile(r"[A-Za-z0-9-]{32,64}")  # RotateSecret's ClientRequestToken: 32-64 characters
_MAX_SECRET_ID = 2048  # a SecretId (name or ARN) is at most 2048 characters


@dataclass(frozen=True)
class RotationEvent:
    """``{"SecretId", "ClientRequestToken", "Step", "RotationToken"?}``
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html)."""

    secret_id: str
    token: str
    step: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: Any) -> RotationEvent:
        """Refuse a missing or non-printable field (naming it, never echoing it) and an unknown step."""
        if not isinstance(event, Mapping):
            raise RotationSetupError(f"the event must be a JSON object, not {type(event).__name__}")
        secret_id, token, step = (_event_field(event, name) for name in ("SecretId", "ClientRequestToken", "Step"))
        if len(secret_id) > _MAX_SECRET_ID:
            raise RotationSetupError(f"event field SecretId is {len(secret_id)} characters long; a secret name or "
                                     f"ARN has at most {_MAX_SECRET_ID}")
        if not _REQUEST_TOKEN.fullmatch(token):
            # The rotation id goes into every minted token's description tag (jfrog-rotator:<target>:<id>),
            # whose ':' and trailing '*' matter when tokens are listed: only what Secrets Manager issues.
            raise RotationSetupError("event field ClientRequestToken must be 32 to 64 letters, digits and '-' "
                                     "(Secrets Manager sends a UUID)")
        if step not in STEPS:
            raise RotationSetupError(f"event field Step is {step!r}, not one of {', '.join(STEPS)}")
        rotation_token = _event_field(event, "RotationToken") if event.get("RotationToken") not in (None, "") else None
        return cls(secret_id, token, step, rotation_token)


def _event_field(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if value is None or value == "":
        raise RotationSetupError(f"event field {name} is missing")
    if not isinstance(value, str) or not _PRINTABLE.fullmatch(value):
        raise RotationSetupError(f"event field {name} must be printable ASCII text")
    return value


@dataclass
class StepReport:
    """The one JSON log line of a step (secret ARN, step, token id, outcome, duration); never a token."""

    secret: str | None
    step: str | None
    rotation: str | None
    token_id: str | None = None
    outcome: str = "failed"
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Any) -> StepReport:
        get = event.get if isinstance(event, Mapping) else (lambda key: None)
        return cls(_loggable(get("SecretId")), _loggable(get("Step")), _loggable(get("ClientRequestToken")))

    def failed(self, exc: BaseException) -> None:
        self.outcome = "failed"
        self.details["error"] = scrub(str(exc))
        self.details["error_type"] = type(exc).__name__

    def emit(self, seconds: float) -> None:
        line = json.dumps({"secret": self.secret, "step": self.step, "rotation": self.rotation,
                           "token_id": self.token_id, "outcome": self.outcome,
                           "duration_ms": round(seconds * 1000, 1), **self.details})
        log.log(logging.ERROR if self.outcome == "failed" else logging.INFO, "%s", line)


def _loggable(value: Any) -> str | None:
    return value if isinstance(value, str) and _PRINTABLE.fullmatch(value) and len(value) <= 2048 else None
