"""The four steps of a Secrets Manager rotation, each a short function over the engine's steps.

Secrets Manager creates an empty ``AWSPENDING`` version whose VersionId is the event's
``ClientRequestToken``, then calls the handler four times with it
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html):

``createSecret``  READ the current record, MINT (tagged ``jfrog-rotator:<target>:<ClientRequestToken>``),
                  build the next record, store it as ``AWSPENDING``. A retry finds it there and
                  mints nothing. No ``AWSCURRENT`` value yet: mint the first token.
``setSecret``     nothing to push (JFrog holds the token already); the confused-deputy guard: the
                  pending and current records name the same JFrog URL, user and target.
``testSecret``    VERIFY the pending token (``GET /access/api/v1/tokens/me``, retried for a bounded time).
``finishSecret``  PROMOTE (move ``AWSCURRENT`` with ``RemoveFromVersionId``: the compare-and-set) and
                  write the same tags as any other door, revoke what ``REVOKE_PREVIOUS`` says is due,
                  sweep orphans.

Each step is idempotent; any failure raises and Secrets Manager retries the rotation;
``AWSCURRENT`` only moves in ``finishSecret``. See docs/aws-lambda.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from backends.aws_secretsmanager import NO_CURRENT, PENDING
from backends.base import BackendError, CASConflict, StagingState, WriteOutcomeUnknown
from rotator.aws_lambda.container import Container
from rotator.aws_lambda.documents import PENDING_TAG, current_document, pending_document, pending_fields, pending_tag
from rotator.aws_lambda.errors import RotationFailed
from rotator.aws_lambda.event import RotationEvent, StepReport
from rotator.aws_lambda.settings import OVERRIDES_KEY, LambdaSettings, RotationSetupError, token_spec
from rotator.core.record import RecordError, SecretRecord
from rotator.core.redact import scrub
from rotator.core.shapes import Found
from rotator.core.target import Target, target_name_for
from rotator.core.token_spec import TokenSpec
from rotator.engine import AdminCredential, AfterNextRotation, RotationError, RotationSteps
from rotator.engine.documents import keeps_record, render_value
from rotator.engine.records import rotation_metadata
from rotator.engine.stored_token import NoStoredToken, StoredToken
from rotator.jfrog.client import TokenResponse
from rotator.jfrog.errors import MintingCredentialError

log = logging.getLogger("rotator.aws_lambda")

LAST_REASON = "Secrets Manager rotation"


def create_secret(ctx: StepContext, report: StepReport) -> None:
    """Mint the next token and store the next record as the pending version; a retry does nothing."""
    existing = ctx.pending_text()
    if existing is not None:
        report.token_id = _token_id_of(existing)
        report.outcome = "pending-exists"
        return
    current = ctx.current_record()
    refuse_fan_out(ctx.arn, current)
    if current is not None and current.url and current.url.rstrip("/") != ctx.settings.jfrog_url:
        raise RotationSetupError(f"the AWSCURRENT record of {ctx.arn} is for JFrog {current.url}, but JFROG_URL "
                                 f"is {ctx.settings.jfrog_url}; refusing to replace it with another platform's token")
    if current is None and ctx.settings.minting == "self":
        raise RotationSetupError(f"{ctx.arn} has no AWSCURRENT token to mint its successor with, and "
                                 "JFROG_ADMIN_SECRET_ARN is not set: store a first token, or set "
                                 "JFROG_ADMIN_SECRET_ARN (or JFROG_AUTH=aws-iam) to bootstrap")
    target = ctx.target(current, minting=True)
    found = ctx.current_found()
    ctx.run(lambda: ctx.engine.check_room(target, current, found, ctx.retire_policy, reason=LAST_REASON,
                                          extra={PENDING_TAG: "planned"}))
    now = ctx.container.clock()  # before minting: entries made due now are due by the new token's issue time
    minted = ctx.run(lambda: ctx.engine.mint(target, current, ctx.event.token))
    report.token_id = minted.token.token_id
    try:
        record = ctx.engine.build_record(target, current, minted, ctx.retire_policy, now=now)
    except RotationError as exc:
        ctx.engine.discard(target, minted.token, "it is not a JWT")
        raise RotationFailed(f"createSecret: {exc.detail}") from None
    text = render_value(target, record, found, ctx.settings.jfrog_url)
    try:
        if not keeps_record(target, found):  # a document: its bookkeeping waits in a tag until finishSecret
            ctx.backend.patch_metadata(ctx.event.secret_id, {PENDING_TAG: pending_tag(ctx.event.token, record,
                                                                                     current)})
        ctx.backend.write_pending(ctx.event.secret_id, text, ctx.event.token, rotation_token=ctx.event.rotation_token)
    except WriteOutcomeUnknown as exc:  # it may have landed: a retry reads it back, or the sweep revokes it
        raise RotationFailed(f"createSecret: {exc}") from None
    except BackendError as exc:
        ctx.engine.discard(target, minted.token, "it could not be stored")
        raise RotationFailed(f"createSecret: {exc}") from None
    ctx.container.remember(ctx.arn, ctx.event.token, text)
    report.outcome = "minted-first" if current is None else "minted"
    report.details["generation"] = record.generation


def set_secret(ctx: StepContext, report: StepReport) -> None:
    """Nothing to push: JFrog already holds the token. Check that pending and current name the same
    JFrog URL, user and target, so a tampered record cannot make us hand out another user's token."""
    pending = ctx.pending_record()
    report.token_id = pending.token_id
    if pending.url.rstrip("/") != ctx.settings.jfrog_url:
        raise RotationFailed(f"setSecret: the pending record is for JFrog {pending.url}, not JFROG_URL "
                             f"{ctx.settings.jfrog_url}")
    current = ctx.current_record()
    if current is not None:
        override = current.rotator_extra.get("token")
        user = override.get("username") if isinstance(override, Mapping) and override.get("username") else None
        expected_user = (user or current.username or "").lower()
        for what, ours, theirs in (("JFrog URL", pending.url.rstrip("/"), current.url.rstrip("/")),
                                   ("username", pending.username.lower(), expected_user),
                                   ("target", pending.target, current.target or pending.target)):
            if theirs and ours != theirs:
                raise RotationFailed(f"setSecret: the pending token's {what} {ours!r} differs from the current "
                                     f"one's {theirs!r}; refusing the rotation")
    report.outcome = "checked"


def test_secret(ctx: StepContext, report: StepReport) -> None:
    """VERIFY the pending token; ``RotateImmediately=false`` (CloudFormation's
    ``RotateImmediatelyOnUpdate: false``) runs this step alone on a copy of the current value; on a
    secret that has no value yet there is nothing to test, and the first rotation mints it."""
    if ctx.pending_text() is None and ctx.staging.current is None:
        report.outcome = "nothing-to-test"
        return
    pending = ctx.pending_record()
    report.token_id = pending.token_id
    report.details["attempts"] = ctx.run(lambda: ctx.engine.verify(ctx.target(pending), pending))
    report.outcome = "verified"


def finish_secret(ctx: StepContext, report: StepReport) -> None:
    """PROMOTE the pending version (and write its tags), then revoke the due previous tokens and
    this target's orphans."""
    pending = ctx.pending_record()
    report.token_id = pending.token_id
    target = ctx.target(pending)
    if not ctx.pending_built_on_current(pending):
        ctx.abandon(target, pending, "AWSCURRENT changed after createSecret (another writer rotated the secret)")
    warnings: list[str] = []
    try:
        ctx.engine.promote(target, pending, ctx.event.token, ctx.staging.current or NO_CURRENT,
                           reason=LAST_REASON, warnings=warnings)
        if ctx.pending_demoted is not None:
            ctx.engine.write_metadata(target, ctx.backend, {PENDING_TAG: None}, warnings)
    except CASConflict as exc:
        ctx.abandon(target, pending, str(exc))
    except BackendError as exc:
        raise RotationFailed(f"finishSecret: {exc}") from None
    report.outcome = "promoted"
    revoked: list[str] = []
    if ctx.retire_policy.revokes:
        revoked, _ = ctx.engine.revoke_due(target, pending, warnings)
    orphans = ctx.engine.sweep_orphans(target, pending, warnings, this_rotation=ctx.event.token)
    report.details.update(revoked=revoked, orphans_revoked=orphans)
    if warnings:  # the rotation itself succeeded; what is left is repaired or revoked by the next one
        report.details["warnings"] = [scrub(w) for w in warnings]


def finish_replayed(ctx: StepContext, report: StepReport) -> None:
    """``finishSecret`` again on a version that is already current: a previous run promoted it and
    died before (or while) writing its tags. Repair the tags from the record, then do what that run
    could not (revoke what is due, sweep orphans); with tags in order there is nothing to do."""
    record = ctx.current_record()
    if record is None:
        return
    report.token_id = record.token_id
    target = ctx.target(record)
    try:
        if ctx.staging.pending == ctx.event.token:  # the run died between the two label moves
            ctx.backend.drop_pending(ctx.event.secret_id, ctx.event.token)
        metadata = ctx.backend.read_metadata(ctx.event.secret_id) or {}
    except BackendError as exc:
        raise RotationFailed(f"finishSecret: {exc}") from None
    if (pending := pending_fields(metadata)) is not None and pending[0] == ctx.event.token:
        # A document promoted by a run that died before its tags (or before clearing the pending
        # tag): the record was rebuilt from the pending tag; write the tags finishSecret writes.
        tags = {**rotation_metadata(record, reason=LAST_REASON, now=ctx.container.clock()),
                "rotator_version": str(ctx.staging.current), PENDING_TAG: None}
        ctx.engine.write_metadata(target, ctx.backend, tags, [])
        repaired: str | None = f"wrote the tags of version {ctx.event.token}, promoted before a crash"
    else:
        repaired = ctx.engine.repair_metadata(target, ctx.backend, record, metadata, ctx.staging.current)
    if repaired is None:
        return
    warnings: list[str] = []
    if ctx.retire_policy.revokes:
        report.details["revoked"], _ = ctx.engine.revoke_due(target, record, warnings)
    report.details["orphans_revoked"] = ctx.engine.sweep_orphans(target, record, warnings,
                                                                 this_rotation=ctx.event.token)
    report.details["repaired"] = repaired
    if warnings:
        report.details["warnings"] = [scrub(w) for w in warnings]


STEP_FUNCTIONS: dict[str, Callable[[StepContext, StepReport], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


def refuse_fan_out(arn: str, current: SecretRecord | None) -> None:
    """The Lambda writes one secret: it must not rotate one output of a fan-out target (the daemon's
    or the CLI's ``outputs:``), which would leave the target's other outputs behind with a token it
    then retires. See docs/aws-lambda.md ("One secret per function")."""
    if current is None:
        return
    if current.output_of:
        raise RotationSetupError(f"{arn} is an output of fan-out target {current.output_of!r}, written by the "
                                 "daemon or the CLI with the target's other outputs; the Lambda rotates one secret "
                                 "alone: turn off this secret's rotation and let the daemon (or the CLI) rotate it")
    if current.outputs:
        raise RotationSetupError(f"{arn} is the primary output of fan-out target {current.target!r} "
                                 f"({len(current.outputs)} other output(s)); the Lambda rotates one secret alone and "
                                 "would leave them behind: turn off this secret's rotation and let the daemon (or "
                                 "the CLI) rotate it")


def _token_id_of(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get("token_id") if isinstance(data, dict) and isinstance(data.get("token_id"), str) else None


class StepContext:
    """What one step works on: the event, the settings, the container's clients, and the engine's
    steps over this one secret."""

    def __init__(self, settings: LambdaSettings, event: RotationEvent, container: Container) -> None:
        self.settings = settings
        self.event = event
        self.container = container
        self.backend = container.backend(settings, event.secret_id)
        self.arn = event.secret_id
        self.staging = StagingState(event.secret_id, event.secret_id, False, {}, None, None)
        self.engine = RotationSteps(jfrog=container.jfrog(settings), backends={"aws": self.backend},
                                    admin=self.admin_credential(),
                                    clock=container.clock, sleep=container.sleep, verify_delay=0.25,
                                    verify_timeout=settings.test_timeout)
        self.retire_policy = AfterNextRotation(settings.revoke_previous, settings.previous_token_grace)
        self._current: tuple[SecretRecord | None, Found | None] | None = None
        self.pending_demoted: str | None = None  # a pending document's demoted token ("" for the first)

    def check_secret(self) -> bool:
        """AWS's template checks, on every step; true when the version is already current (a
        replay after success: nothing to do)."""
        try:
            self.staging = self.backend.staging(self.event.secret_id)
        except BackendError as exc:
            raise RotationFailed(f"{self.event.step}: {exc}") from None
        self.arn = self.staging.arn
        if not self.staging.rotation_enabled:
            raise RotationSetupError(f"Secret {self.arn} is not enabled for rotation")
        labels = self.staging.labels(self.event.token)
        if labels is None:
            raise RotationSetupError(f"Secret version {self.event.token} has no stage for rotation of "
                                     f"secret {self.arn}")
        if self.staging.current == self.event.token:
            return True
        if PENDING not in labels:
            self.discard_passed_over()
            raise RotationSetupError(f"Secret version {self.event.token} not set as AWSPENDING for rotation of "
                                     f"secret {self.arn}")
        return False

    def discard_passed_over(self) -> None:
        """Another writer (the daemon, the CLI) stored and promoted its own version after our
        createSecret, taking the ``AWSPENDING`` label: this rotation lost, so the token its version
        holds is revoked now (unless the secret still hands it out), not left to a sweep."""
        try:
            text = self._read(self.event.token)
            pending = SecretRecord.loads(text) if text else None
            current = self.current_record()
        except (RotationFailed, RecordError, BackendError):
            return  # nothing we can read as ours: the sweep finds a token left by its tag
        if pending is None or current is None:
            return
        if pending.token_id == current.token_id or pending.token_id in {r.token_id for r in current.retired}:
            return
        minted = TokenResponse(access_token=pending.access_token, token_id=pending.token_id)
        self.engine.discard(self.target(pending), minted, "another writer rotated the secret after createSecret")

    def target(self, record: SecretRecord | None, *, minting: bool = False) -> Target:
        """The engine's target for this secret: its record's target name (else one derived from the
        secret's name); when ``minting``, the token options of the environment and the overrides of
        ``record`` (the current one)."""
        name = record.target if record is not None and record.target else target_name_for(self.staging.name)
        spec = token_spec(self.settings, record) if minting else TokenSpec()
        return Target(name=name, backend="aws", path=self.event.secret_id, token=spec,
                      strategy="self" if self.settings.minting == "self" else "recreate",
                      orphan_grace=self.settings.orphan_grace, format=self.settings.format,
                      registry_hosts=self.settings.registry_hosts, template=self.settings.template)

    def run(self, step: Callable[[], Any]) -> Any:
        """Run an engine step; its failure becomes this Secrets Manager step's failure."""
        try:
            return step()
        except RotationError as exc:
            raise RotationFailed(f"{self.event.step}: {exc.detail}") from None

    # -- values ---------------------------------------------------------------------------
    def pending_text(self) -> str | None:
        return self._read(self.event.token)

    def pending_record(self) -> SecretRecord:
        text = self.pending_text()
        if text is None:
            raise RotationFailed(f"{self.event.step}: version {self.event.token} of {self.arn} has no value: "
                                 "createSecret has not stored one")
        try:
            return SecretRecord.loads(text)
        except RecordError as exc:
            return self._pending_document(text, exc)

    def pending_built_on_current(self, pending: SecretRecord) -> bool:
        """Was the pending value made from the current one? A record lists the token it demotes (none
        for the first); a document's pending tag names it."""
        current = self.current_record()
        if self.pending_demoted is not None:
            return self.pending_demoted == (current.token_id if current is not None else "")
        demoted = {r.token_id for r in pending.retired}
        return current.token_id in demoted if current is not None else not demoted

    def current_record(self) -> SecretRecord | None:
        """The ``AWSCURRENT`` record (ours, rebuilt from a document and its tags, or adopted), ``None``
        when the secret has no current value (bootstrap)."""
        return self._current_state()[0]

    def current_found(self) -> Found | None:
        """How the ``AWSCURRENT`` value holds its token when it is not our record."""
        return self._current_state()[1]

    def _current_state(self) -> tuple[SecretRecord | None, Found | None]:
        if self._current is None:
            holder = self.staging.current
            text = self._read(holder) if holder else None
            if text is None:
                self._current = (None, None)
            else:
                try:
                    self._current = (SecretRecord.loads(text), None)
                except RecordError as exc:
                    self._current = current_document(self, text, exc)
        return self._current

    def _pending_document(self, text: str, not_a_record: RecordError) -> SecretRecord:
        record, demoted = pending_document(self, text, not_a_record)
        self.pending_demoted = demoted
        return record

    def _read(self, version_id: str) -> str | None:
        cached = self.container.recall(self.arn, version_id)
        if cached is not None:
            return cached
        try:
            text = self.backend.read_version(self.event.secret_id, version_id)
        except BackendError as exc:
            raise RotationFailed(f"{self.event.step}: {exc}") from None
        if text is not None:
            self.container.remember(self.arn, version_id, text)
        return text

    # -- credentials and giving up ----------------------------------------------------------
    def admin_credential(self) -> AdminCredential | None:
        """What mints, by ``JFROG_AUTH``: the function's IAM role (exchanged, cached by the
        container), the admin secret (read when needed), or nothing (each token mints its successor)."""
        if self.settings.auth == "aws-iam":
            return AdminCredential(read=self.container.aws_iam(self.settings, self.event.secret_id).token)
        if self.settings.auth == "admin-secret":
            return AdminCredential(read=self.admin_token)
        return None

    def admin_token(self) -> str:
        arn = self.settings.admin_secret_arn or ""
        return self.container.admin_token(arn, lambda: self._read_admin(arn))

    def _read_admin(self, arn: str) -> str:
        """The admin token of ``JFROG_ADMIN_SECRET_ARN``, read as any stored admin token is."""
        try:
            return StoredToken(self.backend, arn).token()
        except NoStoredToken as exc:
            raise RotationSetupError(f"JFROG_ADMIN_SECRET_ARN: {exc}") from None
        except MintingCredentialError as exc:
            raise RotationFailed(f"{self.event.step}: JFROG_ADMIN_SECRET_ARN: {exc}") from None

    def abandon(self, target: Target, pending: SecretRecord, why: str) -> None:
        """Give this rotation up: drop our ``AWSPENDING`` and revoke its token, then raise."""
        try:
            self.backend.drop_pending(self.event.secret_id, self.event.token)
        except BackendError as exc:  # the token is revoked below all the same
            log.warning("%s: could not remove AWSPENDING from %s: %s", self.arn, self.event.token, exc)
        minted = TokenResponse(access_token=pending.access_token, token_id=pending.token_id)
        self.engine.discard(target, minted, "the rotation was abandoned")
        raise RotationFailed(f"finishSecret: {why}; version {self.event.token} was not promoted and its token revoked")


__all__ = ["OVERRIDES_KEY", "RotationFailed", "STEP_FUNCTIONS", "StepContext"]
