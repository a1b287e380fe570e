"""Secrets that are not our record, in the Lambda: adopted, rotated in the shape they had, or
written in the format ``JFROG_FORMAT`` asks for.

A secret holding ``{"username", "password"}`` (JFrog's own rotator Lambda), a bare token, or any
shape :func:`rotator.core.shapes.find_token` knows is adopted when its token works, and each
rotation writes the new token back in that shape (or in ``JFROG_FORMAT``); the record's
bookkeeping lives in the secret's tags. Between ``createSecret`` and ``finishSecret`` the pending
version's bookkeeping waits in one tag (``pending``: version, token id, generation, the token it
demotes), since a version of a secret cannot carry tags of its own. See docs/aws-lambda.md ("Adopting a secret").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from backends.base import BackendError, StagingState
from rotator.aws_lambda.errors import RotationFailed
from rotator.aws_lambda.event import RotationEvent
from rotator.aws_lambda.settings import LambdaSettings, RotationSetupError
from rotator.core.record import RecordError, SecretRecord
from rotator.core.shapes import Found, ShapeError, find_token
from rotator.core.target import target_name_for
from rotator.engine.documents import adopted_record, record_from_metadata, token_in_template_output
from rotator.engine.records import RetirePolicy, next_record
from rotator.engine.steps import RotationSteps
from rotator.jfrog.client import TokenResponse
from rotator.jfrog.errors import JFrogError, JFrogHTTPError

PENDING_TAG = "pending"


class StepContext(Protocol):
    """What these functions use of :class:`rotator.aws_lambda.steps.StepContext`."""

    settings: LambdaSettings
    event: RotationEvent
    arn: str
    staging: StagingState
    backend: Any
    engine: RotationSteps
    retire_policy: RetirePolicy
    container: Any

    def current_record(self) -> SecretRecord | None: ...


def pending_tag(version_id: str, record: SecretRecord, current: SecretRecord | None) -> str:
    demoted = current.token_id if current is not None else ""
    return "@".join((version_id, record.token_id, str(record.generation), demoted))  # '@' is a valid tag character


def pending_fields(tags: Mapping[str, str]) -> tuple[str, str, str, str] | None:
    """The :func:`pending_tag` in ``tags`` read back: (version id, token id, generation, demoted
    token id), or ``None`` when there is none (or it is not one)."""
    fields = (tags.get(PENDING_TAG) or "").split("@")
    return (fields[0], fields[1], fields[2], fields[3]) if len(fields) == 4 and fields[0] else None


def _pending_record(ctx: StepContext, found: Found, token_id: str, previous: SecretRecord | None,
                    name: str) -> SecretRecord:
    """The record createSecret built for the pending document holding ``found``, on ``previous``."""
    now = ctx.container.clock()
    retired = ctx.retire_policy.retired(previous, "recreate", token_id, now)
    return next_record(previous, TokenResponse(access_token=found.token, token_id=token_id), target=name,
                       url=ctx.settings.jfrog_url, now=now, retired=retired)


def current_document(ctx: StepContext, text: str, not_a_record: RecordError) -> tuple[SecretRecord, Found]:
    """The ``AWSCURRENT`` value that is not our record: rebuilt from its tags, or adopted."""
    found = _find(ctx, text, "AWSCURRENT", not_a_record)
    tags = _tags(ctx)
    name = tags.get("target") or target_name_for(ctx.staging.name)
    record = record_from_metadata(found, tags, target=name, url=ctx.settings.jfrog_url)
    if record is None:
        record = _promoted_without_tags(ctx, found, tags, name)
    if record is not None:
        return record, found
    try:
        me = ctx.engine.jfrog.get_me(token=found.token)
    except JFrogHTTPError as exc:
        raise RotationSetupError(f"the AWSCURRENT value of {ctx.arn} holds {found.describe()} whose token does not "
                                 f"work (GET /access/api/v1/tokens/me: {exc.status} {exc.first_message()}); it "
                                 "was left untouched") from None
    except JFrogError as exc:
        raise RotationFailed(f"{ctx.event.step}: checking the token of {ctx.arn} failed: {exc}") from None
    return adopted_record(found, me, target=name, url=ctx.settings.jfrog_url), found


def _promoted_without_tags(ctx: StepContext, found: Found, tags: dict[str, str], name: str) -> SecretRecord | None:
    """The document finishSecret promoted before a crash, its tags not written yet: the pending tag
    names the version now holding ``AWSCURRENT`` and its token. Its record is built as createSecret
    built it, on the version it demoted (``AWSPREVIOUS``, still described by the tags), so the
    token that one held stays listed as retired and is revoked when due, not lost."""
    fields = pending_fields(tags)
    if fields is None or fields[0] != ctx.staging.current:
        return None
    _, token_id, _generation, demoted = fields
    previous = _demoted_record(ctx, tags, name, demoted) if demoted else None
    return _pending_record(ctx, found, token_id, previous, name)


def _demoted_record(ctx: StepContext, tags: dict[str, str], name: str, demoted: str) -> SecretRecord | None:
    previous = next((v for v, labels in ctx.staging.versions.items() if "AWSPREVIOUS" in labels), None)
    try:
        text = ctx.backend.read_version(ctx.event.secret_id, previous) if previous else None
    except BackendError as exc:
        raise RotationFailed(f"{ctx.event.step}: {exc}") from None
    if text is None:
        return None
    try:
        record = SecretRecord.loads(text)
    except RecordError:
        found = find_token(text)
        if found is None:
            return None
        record = record_from_metadata(found, tags, target=name, url=ctx.settings.jfrog_url)
        if record is None:  # it was adopted: JFrog tells what the token is (it is not revoked yet)
            try:
                record = adopted_record(found, ctx.engine.jfrog.get_me(token=found.token), target=name,
                                        url=ctx.settings.jfrog_url)
            except JFrogError:
                return None
    return record if record.token_id == demoted else None


def pending_document(ctx: StepContext, text: str, not_a_record: RecordError) -> tuple[SecretRecord, str]:
    """The pending value that is a document: its token, and the bookkeeping createSecret left in the
    ``pending`` tag; returns the record and the token id it demotes (``""`` for the first)."""
    found = _find(ctx, text, "AWSPENDING", not_a_record)
    fields = pending_fields(_tags(ctx))
    if fields is None or fields[0] != ctx.event.token:
        raise RotationFailed(f"{ctx.event.step}: the pending version {ctx.event.token} of {ctx.arn} has no "
                             "bookkeeping tag (createSecret did not finish); the rotation starts over")
    _, token_id, _generation, demoted = fields
    current = ctx.current_record()
    name = current.target if current is not None else target_name_for(ctx.staging.name)
    return _pending_record(ctx, found, token_id, current, name), demoted


def _find(ctx: StepContext, text: str, stage: str, not_a_record: RecordError) -> Found:
    try:
        found = find_token(text)
        if found is None and ctx.settings.format == "template" and ctx.settings.template:
            found = token_in_template_output(text, ctx.settings.template)
    except ShapeError as exc:
        raise RotationSetupError(f"the {stage} value of {ctx.arn} is not a usable record ({not_a_record}) and "
                                 f"{exc}; it was left untouched") from None
    if found is None:
        raise RotationSetupError(f"the {stage} value of {ctx.arn} is not a usable record ({not_a_record}) and "
                                 "holds no JFrog token; it was left untouched: fix it, or put a valid record")
    return found


def _tags(ctx: StepContext) -> dict[str, str]:
    try:
        return dict(ctx.backend.read_metadata(ctx.event.secret_id) or {})
    except BackendError as exc:
        raise RotationFailed(f"{ctx.event.step}: {exc}") from None
