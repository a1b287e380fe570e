"""The AWS Secrets Manager rotation Lambda for a JFrog access token: ``rotator.aws_lambda.handler``.

The handler validates the event and the secret like AWS's rotation template, then runs one of the
four steps (:mod:`rotator.aws_lambda.steps`), each a short function over the engine's steps, so a
secret can be rotated by this Lambda and by ``jfrog-rotator`` (CLI or daemon) in turns: the same
record, the same tags, the same retire and sweep rules. Settings come from the environment
(:mod:`rotator.aws_lambda.settings`). One JSON log line per step; never a token value.
See docs/aws-lambda.md.
"""

from __future__ import annotations

import time
from typing import Any

from rotator.aws_lambda.container import Container, current, install
from rotator.aws_lambda.event import STEPS, RotationEvent, StepReport
from rotator.aws_lambda.settings import LambdaSettings, RotationSetupError
from rotator.aws_lambda.steps import STEP_FUNCTIONS, RotationFailed, StepContext, finish_replayed


def handler(event: Any, context: Any = None) -> None:
    """Entry point: validate the event and the secret, then run one step (AWS's template order)."""
    started = time.monotonic()
    report = StepReport.of(event)
    try:
        request = RotationEvent.parse(event)
        ctx = StepContext(LambdaSettings.from_env(), request, current())
        already_current = ctx.check_secret()
        report.secret = ctx.arn
        if already_current:  # a replay after success: nothing to do but repair what a crash left
            report.outcome = "already-current"
            if request.step == "finishSecret":
                finish_replayed(ctx, report)
            return
        STEP_FUNCTIONS[request.step](ctx, report)
    except Exception as exc:
        report.failed(exc)
        raise
    finally:
        report.emit(time.monotonic() - started)


lambda_handler = handler

__all__ = [
    "Container",
    "LambdaSettings",
    "RotationEvent",
    "RotationFailed",
    "RotationSetupError",
    "STEPS",
    "handler",
    "install",
    "lambda_handler",
]
