"""The AWS Secrets Manager rotation Lambda for a JFrog access token: ``rotator.aws_lambda.handler``.

Secrets Manager creates an empty ``AWSPENDING`` version whose VersionId is the event's
``ClientRequestToken``, then calls the handler four times with it (reference §1.2):

``createSecret``  mint a token (description tagged ``jfrog-rotator:<target>:<ClientRequestToken>``)
                  and ``PutSecretValue`` the next record into the pending version. A retry finds the
                  value there and mints nothing. No ``AWSCURRENT`` value yet: mint the first token.
``setSecret``     nothing to push (JFrog holds the token already); the confused-deputy guard: the
                  pending and current records name the same JFrog URL, user and target.
``testSecret``    ``GET /access/api/v1/tokens/me`` with the pending token, retried for a bounded time.
``finishSecret``  move ``AWSCURRENT`` (``RemoveFromVersionId``: the compare-and-set), drop
                  ``AWSPENDING``, revoke what ``REVOKE_PREVIOUS`` says is due, sweep orphans.

Like AWS's template, every call first checks the secret: rotation enabled, the token is a version
of it, already ``AWSCURRENT`` -> nothing to do, not ``AWSPENDING`` -> error. Any failure raises, and
Secrets Manager retries the rotation; ``AWSCURRENT`` only moves in ``finishSecret``.

The stored value is the project's record (:class:`~rotator.core.record.SecretRecord`), so the daemon
(engine + ``SecretsManagerBackend``) and this Lambda can manage the same secret in turns:

* The target name (the middle of the tag) is the record's ``rotator.target``. A secret without a
  record gets one derived from its name: the name itself when it is letters, digits, ``.``, ``_``
  and ``-``, else those characters with a hash of the full name appended (``jfrog/ci`` ->
  ``jfrog-ci-1a2b3c4d``), so two secrets never share a tag and never sweep each other's tokens.
* ``rotator.retired`` tells the daemon's sweep what it may revoke and when. The record written in
  ``createSecret`` lists the token it demotes: with ``after-next`` and ``never`` until now +
  ``PREVIOUS_TOKEN_GRACE`` (default 90 days, capped at the token's own expiry), so the daemon never
  revokes it before this Lambda's next rotation would; with ``immediately`` until now. Entries
  carried over from the current record become due now with ``after-next`` and ``immediately`` (the
  token that was ``AWSPREVIOUS`` before this rotation), and ``finishSecret`` revokes every due entry
  (200 and 204 both mean done). ``never`` revokes nothing and carries entries until they expire.
* An entry that was already due when the current record was minted was handled by that rotation's
  ``finishSecret`` (or the daemon's sweep) and is dropped; if that revocation failed, the token is
  an unknown tagged token now and the orphan sweep revokes it.
* Orphan sweep: tokens tagged ``jfrog-rotator:<target>:*`` that the new record does not know. Those
  tagged with this rotation's token (a ``createSecret`` that died after minting and was retried)
  are revoked at once, others once older than ``ORPHAN_GRACE`` (a rotation may be in flight elsewhere).
* Per-secret token options: a ``rotator.token`` object in the record (the keys of the daemon
  config's ``token:``) overrides the environment; see :mod:`rotator.aws_lambda.settings`.

One boto3 client and one JFrog session per container, created on first use and reused; secret
versions are immutable, so values read or written are cached by VersionId for the later steps.
One JSON log line per step (secret ARN, step, token id, outcome, duration); never a token value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config

from backends.aws_secretsmanager import CURRENT, NO_CURRENT, PENDING, SecretsManagerBackend, label_holder
from backends.base import BackendError, CASConflict, WriteOutcomeUnknown
from rotator.core.tags import TAG_PREFIX, description_tag, tag_target
from rotator.engine import discard_token, next_record
from rotator.jfrog.client import AccessClient, RetryPolicy, TokenResponse
from rotator.jfrog.errors import JFrogConnectionError, JFrogError, JFrogHTTPError
from rotator.jfrog.jwt import InvalidTokenFormat
from rotator.aws_lambda.settings import OVERRIDES_KEY, LambdaSettings, RotationSetupError, check_spec, token_spec
from rotator.core.record import RecordError, RetiredToken, SecretRecord
from rotator.core.redact import register, scrub

log = logging.getLogger(__name__)
if log.level == logging.NOTSET:
    log.setLevel(logging.INFO)  # the Lambda runtime's root logger drops INFO

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ADMIN_CACHE_SECONDS = 300
_PRINTABLE = re.compile(r"[ -~]+")  # what AWS's template accepts in an event field
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=20)
# Well inside the Lambda timeout: a JFrog call takes at most ~3 x 20 s + 2 x 2 s.
_JFROG_RETRY = RetryPolicy(retries=2, backoff_factor=0.25, backoff_max=2.0)
_JFROG_TIMEOUT = (5.0, 20.0)

#: Injectable for tests: the pause between ``testSecret`` attempts, and the clock of record times.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # noqa: E731


class RotationFailed(RuntimeError):
    """A step could not complete: a remote call failed or a guard refused. Secrets Manager retries."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


# -- the handler -------------------------------------------------------------------------------
def handler(event: Any, context: Any = None) -> None:
    """Entry point: validate the event and the secret, then run one step (AWS's template order)."""
    started = time.monotonic()
    report = StepReport.of(event)
    try:
        request = RotationEvent.parse(event)
        rotation = Rotation(LambdaSettings.from_env(), request)
        report.secret = rotation.check_secret()
        if rotation.already_current:
            report.outcome = "already-current"
            return
        STEP_FUNCTIONS[request.step](rotation, report)
    except Exception as exc:
        report.failed(exc)
        raise
    finally:
        report.emit(time.monotonic() - started)


lambda_handler = handler


@dataclass(frozen=True)
class RotationEvent:
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


# -- the four steps ----------------------------------------------------------------------------
def create_secret(rot: Rotation, report: StepReport) -> None:
    """Mint the next token and store the next record as the pending version; a retry does nothing."""
    existing = rot.pending_text()
    if existing is not None:
        report.token_id = _token_id_of(existing)
        report.outcome = "pending-exists"
        return
    current = rot.current_record()
    if current is not None and current.url and current.url.rstrip("/") != rot.settings.jfrog_url:
        raise RotationSetupError(f"the AWSCURRENT record of {rot.arn} is for JFrog {current.url}, but JFROG_URL "
                                 f"is {rot.settings.jfrog_url}; refusing to replace it with another platform's token")
    target = current.target if current is not None and current.target else target_name(rot.name)
    spec = token_spec(rot.settings, current).with_description_tag(description_tag(target, rot.token))
    spec = check_spec(spec, where=OVERRIDES_KEY if current is not None else "environment")
    credential = rot.minting_credential(current)
    now = clock()  # before minting: entries made due now are due no later than the new token's issue time
    try:
        minted = rot.jfrog.create_token(spec.request_body(), token=credential)
    except JFrogError as exc:
        raise RotationFailed(f"createSecret: POST /access/api/v1/tokens failed: {exc}") from None
    report.token_id = minted.token_id
    retired = retired_after(current, policy=rot.settings.revoke_previous, now=now,
                            grace=rot.settings.previous_token_grace)
    try:
        record = next_record(current, minted, target=target, url=rot.settings.jfrog_url, now=now, retired=retired)
    except InvalidTokenFormat as exc:
        rot.discard(minted, credential, "it is not a JWT")
        raise RotationFailed(f"createSecret: the new access token is not a JWT: {exc}") from None
    text = record.dumps()
    try:
        rot.backend.write_pending(rot.secret_id, text, rot.token, rotation_token=rot.request.rotation_token)
    except WriteOutcomeUnknown as exc:  # it may have landed: a retry reads it back, or the sweep revokes it
        raise RotationFailed(f"createSecret: {exc}") from None
    except BackendError as exc:
        rot.discard(minted, credential, "it could not be stored")
        raise RotationFailed(f"createSecret: {exc}") from None
    rot.remember(rot.token, text)
    report.outcome = "minted-first" if current is None else "minted"
    report.details["generation"] = record.generation


def set_secret(rot: Rotation, report: StepReport) -> None:
    """Nothing to push: JFrog already holds the token. Check that pending and current name the same
    JFrog URL, user and target, so a tampered record cannot make us hand out another user's token."""
    pending = rot.pending_record()
    report.token_id = pending.token_id
    if pending.url.rstrip("/") != rot.settings.jfrog_url:
        raise RotationFailed(f"setSecret: the pending record is for JFrog {pending.url}, not JFROG_URL "
                             f"{rot.settings.jfrog_url}")
    current = rot.current_record()
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


def test_secret(rot: Rotation, report: StepReport) -> None:
    """``GET /access/api/v1/tokens/me`` with the pending token; new credentials can take a moment, so
    401/403/404 and connection errors are retried with backoff for ``TEST_SECRET_TIMEOUT``.

    ``RotateImmediately=false`` (CloudFormation's ``RotateImmediatelyOnUpdate: false``) runs this
    step alone on a copy of the current value; on a secret that has no value yet there is nothing
    to test, and the first rotation mints the first token."""
    if rot.pending_text() is None and rot.current_version is None:
        report.outcome = "nothing-to-test"
        return
    pending = rot.pending_record()
    report.token_id = pending.token_id
    started, waited = time.monotonic(), 0.0
    delay, attempts = 0.25, 0
    while True:
        attempts += 1
        try:
            me = rot.jfrog.get_me(token=pending.access_token)
            break
        except (JFrogHTTPError, JFrogConnectionError) as exc:
            retryable = isinstance(exc, JFrogConnectionError) or exc.status in (401, 403, 404)
            spent = max(waited, time.monotonic() - started)
            if not retryable or spent + delay > rot.settings.test_timeout:
                raise RotationFailed(f"testSecret: the pending token {pending.token_id} does not work "
                                     f"(attempt {attempts}): {exc}") from None
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
        except JFrogError as exc:
            raise RotationFailed(f"testSecret: GET /access/api/v1/tokens/me failed: {exc}") from None
    if me.get("token_id") and me["token_id"] != pending.token_id:
        raise RotationFailed(f"testSecret: GET /tokens/me answered for token {me['token_id']}, "
                             f"not {pending.token_id}")
    report.outcome = "verified"
    report.details["attempts"] = attempts


def finish_secret(rot: Rotation, report: StepReport) -> None:
    """Promote the pending version, then revoke the due previous tokens and this secret's orphans."""
    pending = rot.pending_record()
    report.token_id = pending.token_id
    holder = rot.current_version
    if not _built_on(pending, rot.current_record()):
        rot.abandon(pending, "AWSCURRENT changed after createSecret (another writer rotated the secret)")
    try:
        rot.backend.promote(rot.secret_id, rot.token, holder or NO_CURRENT)
    except CASConflict as exc:
        rot.abandon(pending, str(exc))
    except BackendError as exc:
        raise RotationFailed(f"finishSecret: {exc}") from None
    report.outcome = "promoted"
    credential = rot.cleanup_credential(pending)
    revoked, warnings = rot.revoke_due(pending, credential)
    orphans = rot.sweep_orphans(pending, credential, warnings)
    report.details.update(revoked=revoked, orphans_revoked=orphans)
    if warnings:  # the rotation itself succeeded; what is left is revoked by the next one
        report.details["warnings"] = warnings


STEP_FUNCTIONS: dict[str, Callable[[Rotation, StepReport], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


# -- bookkeeping -------------------------------------------------------------------------------
def retired_after(current: SecretRecord | None, *, policy: str, now: datetime, grace: int) -> tuple[RetiredToken, ...]:
    """The ``rotator.retired`` list of the record that replaces ``current`` (module docstring)."""
    if current is None:
        return ()
    carried = []
    for entry in current.retired:
        if entry.token_id == current.token_id or (entry.expires_at is not None and entry.expires_at <= now):
            continue  # nothing left to revoke
        if policy != "never":
            if entry.revoke_after <= current.issued_at:
                continue  # was due when ``current`` was minted: handled then (or an orphan now)
            entry = replace(entry, revoke_after=min(entry.revoke_after, now))
        carried.append(entry)
    if policy == "immediately":
        keep_until = now
    else:
        keep_until = now + timedelta(seconds=grace)
        if current.expires_at is not None:
            keep_until = min(keep_until, current.expires_at)
    return (*carried, RetiredToken(current.token_id, keep_until, current.expires_at))


def _built_on(pending: SecretRecord, current: SecretRecord | None) -> bool:
    """Was ``pending`` made from ``current``? Then it lists the token it demotes (none for the first)."""
    demoted = {r.token_id for r in pending.retired}
    return current.token_id in demoted if current is not None else not demoted


def target_name(secret_name: str) -> str:
    """A target name for a secret without a record: letters, digits, ``.``, ``_``, ``-`` only."""
    if _TARGET_NAME.fullmatch(secret_name):
        return secret_name
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", secret_name).strip("-._")[:90] or "secret"
    return f"{base}-{hashlib.sha256(secret_name.encode('utf-8')).hexdigest()[:8]}"


def _token_id_of(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get("token_id") if isinstance(data, dict) and isinstance(data.get("token_id"), str) else None


# -- one invocation ----------------------------------------------------------------------------
class Rotation:
    """What one step works on: the event, the settings, the container's clients and caches."""

    def __init__(self, settings: LambdaSettings, request: RotationEvent) -> None:
        self.settings = settings
        self.request = request
        self.secret_id = request.secret_id
        self.token = request.token
        self.backend = _state.backend(settings, request.secret_id)
        self.jfrog = _state.jfrog(settings)
        self.arn = request.secret_id
        self.name = request.secret_id
        self.versions: dict[str, list[str]] = {}
        self.already_current = False

    @property
    def current_version(self) -> str | None:
        return label_holder(self.versions, CURRENT)

    def check_secret(self) -> str:
        """AWS's template checks, on every step; returns the secret's ARN."""
        try:
            described = self.backend.describe(self.secret_id)
        except BackendError as exc:
            raise RotationFailed(f"{self.request.step}: {exc}") from None
        self.arn = described.get("ARN") or self.secret_id
        self.name = described.get("Name") or self.secret_id
        if not described.get("RotationEnabled"):
            raise RotationSetupError(f"Secret {self.arn} is not enabled for rotation")
        self.versions = dict(described.get("VersionIdsToStages") or {})
        stages = self.versions.get(self.token)
        if stages is None:
            raise RotationSetupError(f"Secret version {self.token} has no stage for rotation of secret {self.arn}")
        if CURRENT in stages:
            self.already_current = True  # a replay after success: nothing to do
        elif PENDING not in stages:
            raise RotationSetupError(f"Secret version {self.token} not set as AWSPENDING for rotation of "
                                     f"secret {self.arn}")
        return self.arn

    # -- values ---------------------------------------------------------------------------
    def pending_text(self) -> str | None:
        return self._read(self.token, PENDING)

    def pending_record(self) -> SecretRecord:
        text = self.pending_text()
        if text is None:
            raise RotationFailed(f"{self.request.step}: version {self.token} of {self.arn} has no value: "
                                 "createSecret has not stored one")
        return self._parse(text, "AWSPENDING")

    def current_record(self) -> SecretRecord | None:
        """The ``AWSCURRENT`` record, ``None`` when the secret has no current value (bootstrap)."""
        holder = self.current_version
        text = self._read(holder, CURRENT) if holder else None
        return self._parse(text, "AWSCURRENT") if text is not None else None

    def remember(self, version_id: str, text: str) -> None:
        _state.remember(self.arn, version_id, text)

    def _read(self, version_id: str, stage: str) -> str | None:
        cached = _state.recall(self.arn, version_id)
        if cached is not None:
            return cached
        try:
            text = self.backend.read_version(self.secret_id, version_id, stage)
        except BackendError as exc:
            raise RotationFailed(f"{self.request.step}: {exc}") from None
        if text is not None:
            self.remember(version_id, text)
        return text

    def _parse(self, text: str, stage: str) -> SecretRecord:
        try:
            return SecretRecord.loads(text)
        except RecordError as exc:
            raise RotationSetupError(f"the {stage} value of {self.arn} is not a usable record ({exc}); it was "
                                     "left untouched: fix it, or put a valid record") from None

    # -- JFrog credentials ----------------------------------------------------------------
    def minting_credential(self, current: SecretRecord | None) -> str:
        """The admin token from ``JFROG_ADMIN_SECRET_ARN``, else the current token itself (``self``)."""
        if self.settings.admin_secret_arn:
            return self.admin_token()
        if current is None:
            raise RotationSetupError(f"{self.arn} has no AWSCURRENT token to mint its successor with, and "
                                     "JFROG_ADMIN_SECRET_ARN is not set: store a first token, or set "
                                     "JFROG_ADMIN_SECRET_ARN to bootstrap")
        return current.access_token

    def cleanup_credential(self, pending: SecretRecord) -> str:
        if self.settings.admin_secret_arn:
            return self.admin_token()
        return pending.access_token

    def admin_token(self) -> str:
        arn = self.settings.admin_secret_arn or ""
        cached = _state.admin.get(arn)
        if cached is not None and time.monotonic() - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        try:
            text = self.backend.read(arn).text
        except BackendError as exc:
            raise RotationFailed(f"{self.request.step}: cannot read JFROG_ADMIN_SECRET_ARN {arn}: {exc}") from None
        token = _credential_in(text)
        if not token:
            raise RotationSetupError(f"JFROG_ADMIN_SECRET_ARN {arn} holds no token: store the admin token, "
                                     "or JSON with an access_token field")
        register(token)
        _state.admin[arn] = (time.monotonic(), token)
        return token

    # -- cleanup --------------------------------------------------------------------------
    def discard(self, minted: TokenResponse, credential: str | None, why: str) -> None:
        """Revoke a token we minted but will not store (with itself when we mint as ``self``)."""
        discard_token(self.jfrog, minted, owner=self.arn, why=why,
                      credential=credential if self.settings.admin_secret_arn else minted.access_token)

    def abandon(self, pending: SecretRecord, why: str) -> None:
        """Give this rotation up: drop our ``AWSPENDING`` and revoke its token, then raise."""
        try:
            self.backend.drop_pending(self.secret_id, self.token)
        except BackendError as exc:
            log.warning("%s: could not remove AWSPENDING from %s: %s", self.arn, self.token, exc)
        token = self.admin_token() if self.settings.admin_secret_arn else pending.access_token
        minted = TokenResponse(access_token=pending.access_token, token_id=pending.token_id)
        self.discard(minted, token, "the rotation was abandoned")
        raise RotationFailed(f"finishSecret: {why}; version {self.token} was not promoted and its token revoked")

    def revoke_due(self, record: SecretRecord, credential: str) -> tuple[list[str], list[str]]:
        """Revoke the retired tokens whose ``revoke_after`` has come (none with ``never``)."""
        revoked: list[str] = []
        warnings: list[str] = []
        if self.settings.revoke_previous == "never":
            return revoked, warnings
        now = clock()
        for entry in record.retired:
            if entry.revoke_after > now or (entry.expires_at is not None and entry.expires_at <= now):
                continue
            try:
                self.jfrog.revoke_token(entry.token_id, token=credential)
                revoked.append(entry.token_id)
            except JFrogError as exc:
                warnings.append(scrub(f"revoke {entry.token_id}: {exc}"))
        return revoked, warnings

    def sweep_orphans(self, record: SecretRecord, credential: str, warnings: list[str]) -> list[str]:
        """Revoke tokens tagged for this target that ``record`` does not know (module docstring)."""
        target = record.target
        try:
            tokens = self.jfrog.list_tokens(description=f"{TAG_PREFIX}:{target}:*", token=credential)
        except JFrogError as exc:
            warnings.append(scrub(f"list tokens: {exc}"))
            return []
        known = {record.token_id, *(r.token_id for r in record.retired)}
        ours = description_tag(target, self.token)
        cutoff = time.time() - self.settings.orphan_grace
        revoked = []
        for token in tokens:
            token_id = str(token.get("token_id") or "")
            description = str(token.get("description") or "")
            if not token_id or token_id in known or tag_target(description) != target:
                continue
            issued = token.get("issued_at")
            this_rotation = description.split(" ", 1)[0] == ours
            if not this_rotation and isinstance(issued, (int, float)) and issued > cutoff:
                continue  # may belong to a rotation in flight elsewhere
            try:
                self.jfrog.revoke_token(token_id, token=credential)
                revoked.append(token_id)
            except JFrogError as exc:
                warnings.append(scrub(f"revoke orphan {token_id}: {exc}"))
        return revoked


def _credential_in(text: str | None) -> str | None:
    """The token in the admin secret: the plain value, or ``access_token``/``token`` of a JSON object."""
    value = (text or "").strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            return None
        token = data.get("access_token") or data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token.strip() else None
    return value or None


# -- per-container state ------------------------------------------------------------------------
class _ContainerState:
    """Clients created once per container (per endpoint / JFrog URL) and the value caches."""

    MAX_VALUES = 32

    def __init__(self) -> None:
        self.secretsmanager: Any = None
        self._sm_key: tuple[str | None, str | None] | None = None
        self._backend: SecretsManagerBackend | None = None
        self._jfrog: AccessClient | None = None
        self.values: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.admin: dict[str, tuple[float, str]] = {}

    def backend(self, settings: LambdaSettings, secret_id: str) -> SecretsManagerBackend:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or _arn_region(secret_id)
        key = (region, settings.secrets_manager_endpoint)
        if self.secretsmanager is None or key != self._sm_key:
            self.secretsmanager = boto3.client("secretsmanager", region_name=region,
                                               endpoint_url=settings.secrets_manager_endpoint, config=_AWS_CONFIG)
            self._sm_key = key
            self._backend = SecretsManagerBackend("aws", client=self.secretsmanager)
        assert self._backend is not None
        return self._backend

    def jfrog(self, settings: LambdaSettings) -> AccessClient:
        if self._jfrog is None or self._jfrog.url != settings.jfrog_url:
            if self._jfrog is not None:
                self._jfrog.close()
            self._jfrog = AccessClient(settings.jfrog_url, retry=_JFROG_RETRY, timeout=_JFROG_TIMEOUT)
        return self._jfrog

    def remember(self, arn: str, version_id: str, text: str) -> None:
        self.values[(arn, version_id)] = text
        self.values.move_to_end((arn, version_id))
        while len(self.values) > self.MAX_VALUES:
            self.values.popitem(last=False)

    def recall(self, arn: str, version_id: str) -> str | None:
        return self.values.get((arn, version_id))


def _arn_region(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


_state = _ContainerState()


# -- logging ------------------------------------------------------------------------------------
@dataclass
class StepReport:
    """The one JSON log line of a step."""

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


__all__ = [
    "RotationEvent",
    "RotationFailed",
    "RotationSetupError",
    "STEPS",
    "handler",
    "lambda_handler",
    "retired_after",
    "target_name",
]
