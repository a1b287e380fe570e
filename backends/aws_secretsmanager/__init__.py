"""AWS Secrets Manager backend: one secret per target, compare-and-set through staging labels.

A *path* is a secret name or ARN. The value is the record's JSON in ``SecretString``; the
*version* the engine compares is the ``VersionId`` holding the ``AWSCURRENT`` label; the
non-secret metadata lives in the secret's tags (``managed-by`` plus ``jfrog-rotator:<key>``), so
status and triggers never read the value.

How a compare-and-set write works (the same protocol the rotation Lambda uses)::

    PutSecretValue(ClientRequestToken=rotation_id, VersionStages=[AWSPENDING])       write_pending
    UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId=rotation_id,
                             RemoveFromVersionId=expected_version)                     promote
    UpdateSecretVersionStage(AWSPENDING, RemoveFromVersionId=rotation_id)              promote

The second call *is* the compare-and-set: Secrets Manager refuses to move ``AWSCURRENT`` when
``RemoveFromVersionId`` is not the version holding it. moto 5.2.5 enforces that too
(``InvalidParameterException: Version stage AWSCURRENT not found in version …``, checked in
``tests/backends/test_aws_backend.py``), so there is no read-then-move race on this path.
``AWSPENDING`` is removed afterwards: AWS would clean it up itself, but moto's inverted
"rotation in progress" rule would block the next ``RotateSecret`` (reference §2.5.1), and a
stuck ``AWSPENDING`` on a non-current version blocks rotations on AWS.

One case is a check followed by a write (two calls, a narrow but non-zero race window): the
first value of a secret that exists without ``AWSCURRENT`` (``expected_version == NO_CURRENT``
in :meth:`~SecretsManagerBackend.write` and :meth:`~SecretsManagerBackend.promote`): there is no
version to name in ``RemoveFromVersionId``, and moving ``AWSCURRENT`` without one crashes moto
(#9451), so we check ``VersionIdsToStages`` and then put the value with ``AWSCURRENT``.

This module is imported by the Lambda: it imports boto3/botocore and the small ``rotator``
helpers only (no hvac, yaml, apscheduler, never ``rotator.engine``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ProfileNotFound
from botocore.exceptions import ConnectionError as BotoConnectionError

from backends.base import BackendError, CASConflict, StagingState, StoredValue, Version, WriteOutcomeUnknown
from rotator.core.options import Options
from rotator.core.record import MANAGED_BY
from rotator.core.redact import REDACTED

log = logging.getLogger(__name__)

#: The version :meth:`SecretsManagerBackend.read` reports for a secret that exists but has no
#: ``AWSCURRENT`` value yet (created empty, or only an empty ``AWSPENDING`` placeholder).
#: Never a real VersionId (those are 32-64 characters of ``[A-Za-z0-9-]``).
NO_CURRENT = "(no AWSCURRENT)"

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"

MANAGED_BY_TAG = "managed-by"
TAG_PREFIX = "jfrog-rotator:"
_TAG_KEY_MAX = 128
_TAG_VALUE_MAX = 256
# AWS tag charset: letters, digits, spaces and _ . : / = + - @ (\w covers letters, digits, _).
_TAG_FORBIDDEN = re.compile(r"[^\w .:/=+\-@]")

# No answer (or a server fault) after botocore's retries: a write may have been applied.
_NO_ANSWER = (BotoConnectionError, HTTPClientError)

_NOT_FOUND = "ResourceNotFoundException"
_EXISTS = "ResourceExistsException"
# How Secrets Manager refuses a label move that does not match the labels (moto and, as far as
# emulators modelled on AWS tell, AWS: InvalidParameterException). The cause is always confirmed
# with DescribeSecret before we call it a conflict, so accepting both codes is safe.
_REFUSED = ("InvalidParameterException", "InvalidRequestException")


class AwsError(BackendError):
    """A Secrets Manager call failed; ``operation`` and ``code`` (the AWS error code) say how."""

    def __init__(self, message: str, *, backend: str, path: str, operation: str, code: str = "") -> None:
        super().__init__(message, backend=backend, path=path)
        self.operation = operation
        self.code = code


class SecretsManagerBackend:
    """AWS Secrets Manager through boto3; implements ``SecretBackend`` and ``StagingBackend``."""

    metadata_without_secret = True

    def __init__(self, name: str, *, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None, kms_key_id: str | None = None,
                 timeout: float = 30, max_attempts: int = 5, client: Any = None) -> None:
        self.name = name
        self.region = region or (client.meta.region_name if client is not None else None)
        self.profile = profile
        self.endpoint_url = (endpoint_url or (client.meta.endpoint_url if client is not None else None)
                             or os.environ.get("SECRETS_MANAGER_ENDPOINT") or None)
        self.kms_key_id = kms_key_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, options: Options) -> SecretsManagerBackend:
        """Build from ``backends.<name>``; errors name the key path. ``type`` is read by the registry."""
        profile = options.str("profile", None)
        region = options.str("region", None)
        endpoint_url = options.str("endpoint_url", None)
        kms_key_id = options.str("kms_key_id", None)
        timeout = options.duration("timeout", 30)
        if timeout <= 0:
            raise options.error("timeout", "must be more than 0 seconds")
        max_attempts = options.int("max_attempts", 5, minimum=1)
        if region is None:
            try:
                region = default_region(profile)
            except ProfileNotFound:
                raise options.error("profile", f"AWS profile {profile!r} is not in the AWS config files") from None
            if not region:
                raise options.error("region", "no AWS region: set it here, or AWS_REGION / AWS_DEFAULT_REGION, "
                                              "or region in the AWS profile")
        return cls(name, region=region, profile=profile, endpoint_url=endpoint_url, kms_key_id=kms_key_id,
                   timeout=timeout, max_attempts=max_attempts)

    # -- client ---------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 client, created on first use and reused (clients are thread-safe)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        try:
            region = self.region or default_region(self.profile)
        except ProfileNotFound:
            raise BackendError(f"AWS profile {self.profile!r} is not in the AWS config files",
                               backend=self.name) from None
        if not region:
            raise BackendError("no AWS region: configure region, or set AWS_REGION / AWS_DEFAULT_REGION",
                               backend=self.name)
        self.region = region
        # A session of our own: the default boto3 session is not safe to share between threads.
        session = boto3.session.Session(profile_name=self.profile, region_name=region)
        # total_max_attempts counts the first try (like AWS_MAX_ATTEMPTS); botocore's
        # retries["max_attempts"] would count retries only, one more call than configured.
        config = Config(retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                        connect_timeout=self.timeout, read_timeout=self.timeout)
        return session.client("secretsmanager", endpoint_url=self.endpoint_url, config=config)

    def close(self) -> None:
        """Close the HTTP connections of a client we created (a client passed in is the caller's)."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    # -- SecretBackend ----------------------------------------------------------------------
    def read(self, path: str) -> StoredValue:
        """``GetSecretValue(VersionStage=AWSCURRENT)``: one call; metadata is left empty.

        Always names the stage: moto answers a stage-less read from an internal default version
        that ``UpdateSecretVersionStage`` does not move. Only when the value is missing does a
        ``DescribeSecret`` tell "no such secret" (``StoredValue(None, None)``) from "secret
        without a current value" (``StoredValue(None, NO_CURRENT)``). Tags are not fetched: the
        engine needs text and version only; :meth:`read_metadata` gives them.
        """
        try:
            answer = self._api("GetSecretValue", path, SecretId=path, VersionStage=CURRENT)
        except AwsError as exc:
            if exc.code != _NOT_FOUND:
                raise
            return self._value_missing(path)
        return StoredValue(self._string(path, answer), answer["VersionId"])

    def _value_missing(self, path: str) -> StoredValue:
        try:
            versions = self.stages(path)
        except AwsError as exc:
            if exc.code == _NOT_FOUND:
                return StoredValue(None, None)
            raise
        holder = label_holder(versions, CURRENT)
        # AWSCURRENT on a version without a value (moto's rotate_secret without a Lambda does
        # that): a CAS write can still move the label away from it.
        return StoredValue(None, holder if holder else NO_CURRENT)

    def write(self, path: str, text: str, *, expected_version: Version, metadata: Mapping[str, str],
              rotation_id: str) -> Version:
        """Compare-and-set ``text`` over ``expected_version``; the new VersionId is ``rotation_id``.

        * ``None`` (no secret): ``CreateSecret`` with the tags; it exists already -> CASConflict.
        * ``NO_CURRENT``: ``DescribeSecret`` then ``PutSecretValue(VersionStages=[AWSCURRENT])``.
        * a VersionId: :meth:`write_pending` then the AWSCURRENT move, then ``TagResource``.

        Once the value is current, failing to drop AWSPENDING or to tag is logged, not raised:
        raising would make the engine revoke a token that consumers already read.
        """
        if expected_version is None:
            return self._create(path, text, metadata, rotation_id)
        if expected_version == NO_CURRENT:
            self._put_first_value(path, text, rotation_id)
        else:
            self.write_pending(path, text, rotation_id)
            self._move_current(path, rotation_id, expected_version, secret=text)
            self._best_effort("remove AWSPENDING", path, lambda: self._remove_pending(path, rotation_id))
        self._best_effort("tag", path, lambda: self.patch_metadata(path, {**metadata, "managed_by": MANAGED_BY}))
        return rotation_id

    def _create(self, path: str, text: str, metadata: Mapping[str, str], rotation_id: str) -> str:
        """``CreateSecret`` with value, tags and KMS key in one call (idempotent per token)."""
        params: dict[str, Any] = {"Name": path, "SecretString": text, "ClientRequestToken": rotation_id,
                                  "Tags": to_tags({**metadata, "managed_by": MANAGED_BY})}
        if self.kms_key_id:
            params["KmsKeyId"] = self.kms_key_id
        try:
            answer = self._api("CreateSecret", path, write=True, secret=text, **params)
        except AwsError as exc:
            if exc.code == _EXISTS:
                raise CASConflict("CreateSecret: the secret was created by someone else after we read it",
                                  backend=self.name, path=path) from None
            raise
        return answer.get("VersionId", rotation_id)

    def _put_first_value(self, path: str, text: str, rotation_id: str) -> None:
        """First value of a secret that has none: ``DescribeSecret``, then ``PutSecretValue`` AWSCURRENT.

        Not ``UpdateSecretVersionStage`` (moto #9451 crashes when no version holds AWSCURRENT).
        The check and the put are two calls: a writer in between would be overwritten.
        """
        try:
            holder = label_holder(self.stages(path), CURRENT)
        except AwsError as exc:
            if exc.code == _NOT_FOUND:
                raise CASConflict("the secret was deleted after we read it", backend=self.name, path=path) from None
            raise
        if holder == rotation_id:
            return  # our own earlier attempt went through
        if holder is not None:
            raise CASConflict(f"version {holder} became AWSCURRENT after we read the secret (it had none)",
                              backend=self.name, path=path)
        self._put(path, text, rotation_id, [CURRENT])

    # -- StagingBackend -----------------------------------------------------------------------
    def write_pending(self, path: str, text: str, rotation_id: str, *, rotation_token: str | None = None) -> None:
        """``PutSecretValue(ClientRequestToken=rotation_id, VersionStages=[AWSPENDING])``.

        Idempotent for the same text (AWS ignores an identical re-put). ``rotation_token`` is
        the Lambda event's ``RotationToken`` (assumed-role / cross-account rotation).
        """
        self._put(path, text, rotation_id, [PENDING], rotation_token=rotation_token)

    def read_pending(self, path: str, rotation_id: str) -> str | None:
        """``GetSecretValue(VersionId=rotation_id, VersionStage=AWSPENDING)``; ``None`` when it has no value.

        On AWS the placeholder Secrets Manager creates before ``createSecret`` has no value and
        answers ``ResourceNotFoundException``, as does an unknown version.
        """
        return self.read_version(path, rotation_id, PENDING)

    def promote(self, path: str, rotation_id: str, expected_version: Version) -> Version:
        """Make ``rotation_id`` AWSCURRENT if ``expected_version`` still is, then drop its AWSPENDING.

        ``UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId, RemoveFromVersionId)`` then
        ``UpdateSecretVersionStage(AWSPENDING, RemoveFromVersionId)``. Idempotent: when
        ``rotation_id`` already holds AWSCURRENT only the AWSPENDING removal is (re)done.
        ``expected_version == NO_CURRENT`` promotes the first value of a secret (bootstrap).
        Raises :class:`CASConflict` (after removing our AWSPENDING) when another version is current.
        """
        if expected_version == NO_CURRENT:
            self._promote_first_value(path, rotation_id)
        elif expected_version == rotation_id:
            # The caller read us as current already. Never "move" AWSCURRENT onto its holder:
            # moto then strips AWSPREVIOUS from the older version.
            self._require_current(path, rotation_id, expected_version)
        else:
            self._move_current(path, rotation_id, expected_version)
        self._remove_pending(path, rotation_id)
        return rotation_id

    def drop_pending(self, path: str, rotation_id: str) -> None:
        """Take ``AWSPENDING`` off version ``rotation_id`` (an abandoned rotation); no-op when it lacks it."""
        self._remove_pending(path, rotation_id)

    def _move_current(self, path: str, rotation_id: str, expected_version: Version, *, secret: str | None = None) -> None:
        """The compare-and-set: ``UpdateSecretVersionStage(AWSCURRENT, Move…, RemoveFrom…)``.

        Secrets Manager (and moto) refuse the move with ``InvalidParameterException`` when
        ``expected_version`` no longer holds AWSCURRENT; only then do we ``DescribeSecret`` to
        tell a retry of our own success from another writer's win.
        """
        try:
            self._api("UpdateSecretVersionStage", path, write=True, secret=secret, SecretId=path,
                      VersionStage=CURRENT, MoveToVersionId=rotation_id, RemoveFromVersionId=expected_version)
        except AwsError as exc:
            if exc.code not in _REFUSED:
                raise
            self._require_current(path, rotation_id, expected_version, refused=exc)

    def _require_current(self, path: str, rotation_id: str, expected_version: Version,
                         refused: AwsError | None = None) -> None:
        """Pass when ``rotation_id`` holds AWSCURRENT; CASConflict when another version does."""
        versions = self.stages(path)
        holder = label_holder(versions, CURRENT)
        if holder == rotation_id:
            return
        if rotation_id not in versions:
            raise refused or AwsError(f"version {rotation_id} does not exist", backend=self.name, path=path,
                                      operation="UpdateSecretVersionStage", code=_NOT_FOUND)
        if holder == expected_version and refused is not None:
            raise refused  # the label is where we expected: the refusal has another reason
        raise self._conflict(path, rotation_id, expected_version, holder, versions)

    def _conflict(self, path: str, rotation_id: str, expected_version: Version, holder: str | None,
                  versions: Mapping[str, list[str]]) -> CASConflict:
        """Drop our AWSPENDING (a stuck one blocks rotations on AWS) and describe who won."""
        self._best_effort("remove AWSPENDING", path, lambda: self._remove_pending(path, rotation_id, versions))
        expected = "no version" if expected_version == NO_CURRENT else f"version {expected_version}"
        return CASConflict(f"AWSCURRENT is on version {holder}, not on {expected} as read: another writer won; "
                           f"version {rotation_id} was not promoted", backend=self.name, path=path)

    def _promote_first_value(self, path: str, rotation_id: str) -> None:
        """Bootstrap: no version holds AWSCURRENT yet (created empty, or rotation enabled first).

        AWS accepts ``UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId)`` without
        ``RemoveFromVersionId`` here, but moto answers 500 (#9451). So re-put the pending value
        with the same token and ``VersionStages=[AWSCURRENT]`` (moto moves the label; AWS may
        ignore an identical re-put), and only if the label did not move, make that call.
        The check and the put are two calls: a writer in between would be overwritten.
        """
        versions = self.stages(path)
        holder = label_holder(versions, CURRENT)
        if holder == rotation_id:
            return
        if holder is not None:
            raise self._conflict(path, rotation_id, NO_CURRENT, holder, versions)
        text = self.read_pending(path, rotation_id)
        if text is None:
            raise BackendError(f"cannot promote version {rotation_id}: it has no pending value",
                               backend=self.name, path=path)
        self._put(path, text, rotation_id, [CURRENT])
        if label_holder(self.stages(path), CURRENT) != rotation_id:
            self._api("UpdateSecretVersionStage", path, write=True, SecretId=path, VersionStage=CURRENT,
                      MoveToVersionId=rotation_id)

    def _remove_pending(self, path: str, rotation_id: str, versions: Mapping[str, list[str]] | None = None) -> None:
        """``UpdateSecretVersionStage(AWSPENDING, RemoveFromVersionId=rotation_id)`` if it holds it."""
        if versions is not None and PENDING not in versions.get(rotation_id, []):
            return
        try:
            self._api("UpdateSecretVersionStage", path, write=True, SecretId=path, VersionStage=PENDING,
                      RemoveFromVersionId=rotation_id)
        except AwsError as exc:
            # Refused because the label is not (any more) on our version: AWS may clean it up
            # itself after the AWSCURRENT move, or a new rotation moved it. Nothing to do then.
            if exc.code not in _REFUSED or PENDING in self.stages(path).get(rotation_id, []):
                raise

    # -- metadata ---------------------------------------------------------------------------
    def read_metadata(self, path: str) -> dict[str, str] | None:
        """``DescribeSecret``: tags ``jfrog-rotator:<key>`` as ``<key>``, ``managed_by``, ``rotation_enabled``."""
        try:
            described = self.describe(path)
        except AwsError as exc:
            if exc.code == _NOT_FOUND:
                return None
            raise
        meta = from_tags(described.get("Tags") or [])
        meta["rotation_enabled"] = "true" if described.get("RotationEnabled") else "false"
        return meta

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """One ``TagResource`` with the sanitised updates. A ``None`` value empties the tag (read back
        as absent) instead of an extra ``UntagResource`` call on every rotation."""
        if updates:
            self._api("TagResource", path, SecretId=path,
                      Tags=to_tags(updates))

    def list_managed(self) -> list[str]:
        """Names of secrets tagged ``managed-by=jfrog-token-rotator`` (``ListSecrets``, paginated)."""
        names: list[str] = []
        pages = self.client.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "tag-key", "Values": [MANAGED_BY_TAG]}])
        try:
            for page in pages:
                for secret in page.get("SecretList", []):
                    # The filter matches the tag key only (and by prefix): check the value here.
                    tags = {t["Key"]: t.get("Value") for t in secret.get("Tags") or []}
                    if tags.get(MANAGED_BY_TAG) == MANAGED_BY:
                        names.append(secret["Name"])
        except (ClientError, BotoCoreError) as exc:
            raise self._translate("ListSecrets", "", exc) from None
        return sorted(names)

    def check(self) -> str:
        """``ListSecrets(MaxResults=1)``: endpoint reachable, credentials valid, listing allowed."""
        self._api("ListSecrets", "", MaxResults=1)
        endpoint = self.endpoint_url or "the regional AWS endpoint"
        return f"{self.name}: AWS Secrets Manager in {self.region} via {endpoint}: ListSecrets ok"

    # -- helpers for the Lambda ---------------------------------------------------------------
    def describe(self, path: str) -> dict[str, Any]:
        """The raw ``DescribeSecret`` answer (without ``ResponseMetadata``)."""
        answer = dict(self._api("DescribeSecret", path, SecretId=path))
        answer.pop("ResponseMetadata", None)
        return answer

    def staging(self, path: str) -> StagingState:
        """``DescribeSecret`` as a :class:`~backends.base.StagingState`."""
        answer = self.describe(path)
        versions = {k: tuple(v) for k, v in (answer.get("VersionIdsToStages") or {}).items()}
        return StagingState(arn=answer.get("ARN") or path, name=answer.get("Name") or path,
                            rotation_enabled=bool(answer.get("RotationEnabled")), versions=versions,
                            current=label_holder(versions, CURRENT), pending=label_holder(versions, PENDING))

    def stages(self, path: str) -> dict[str, list[str]]:
        """``DescribeSecret`` ``VersionIdsToStages``: ``{VersionId: [labels]}`` (empty when no versions)."""
        return dict(self.describe(path).get("VersionIdsToStages") or {})

    def read_version(self, path: str, version_id: str, stage: str | None = None) -> str | None:
        """``GetSecretValue(VersionId[, VersionStage])``; ``None`` on ``ResourceNotFoundException``."""
        params = {"VersionStage": stage} if stage else {}
        try:
            answer = self._api("GetSecretValue", path, SecretId=path, VersionId=version_id, **params)
        except AwsError as exc:
            if exc.code == _NOT_FOUND:
                return None
            raise
        return self._string(path, answer)

    # -- plumbing -----------------------------------------------------------------------------
    def _put(self, path: str, text: str, rotation_id: str, stages: list[str], *,
             rotation_token: str | None = None) -> None:
        """``PutSecretValue`` with ``ClientRequestToken=rotation_id`` (the new VersionId)."""
        params: dict[str, Any] = {"SecretId": path, "SecretString": text, "ClientRequestToken": rotation_id,
                                  "VersionStages": stages}
        if rotation_token:
            params["RotationToken"] = rotation_token
        self._api("PutSecretValue", path, write=True, secret=text, **params)

    def _string(self, path: str, answer: Mapping[str, Any]) -> str:
        text = answer.get("SecretString")
        if text is None:
            raise BackendError("the secret holds a binary value (SecretBinary), not a JSON text",
                               backend=self.name, path=path)
        return text

    def _api(self, operation: str, path: str, *, write: bool = False, secret: str | None = None,
             **params: Any) -> Any:
        """Call ``operation`` (e.g. ``"GetSecretValue"``); failures become :class:`BackendError`.

        ``write``: a call that changes the secret; no answer then means :class:`WriteOutcomeUnknown`.
        ``secret``: a value the message must never contain (AWS does not echo it; belt and braces).
        """
        try:
            return getattr(self.client, xform_name(operation))(**params)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(operation, path, exc, write=write, secret=secret) from None

    def _translate(self, operation: str, path: str, exc: Exception, *, write: bool = False,
                   secret: str | None = None) -> BackendError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or "Unknown"
            message = f"{operation} failed: {code}: {error.get('Message', '')}".rstrip(": ")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            unknown = write and status >= 500  # a server fault after retries: applied or not, who knows
        else:
            code = type(exc).__name__
            message = f"{operation} failed: {exc}"
            unknown = write and isinstance(exc, _NO_ANSWER)
        if secret:
            message = message.replace(secret, REDACTED)
        if unknown:
            err = WriteOutcomeUnknown(f"{message}; the write may or may not have been applied: re-read to decide",
                                      backend=self.name, path=path)
            err.operation, err.code = operation, code  # type: ignore[attr-defined]
            return err
        return AwsError(message, backend=self.name, path=path, operation=operation, code=code)

    def _best_effort(self, what: str, path: str, action: Callable[[], None]) -> None:
        """Run a follow-up of a committed write; a failure is logged (the value is stored already)."""
        try:
            action()
        except BackendError as exc:
            log.warning("%s: %s after the value was stored failed: %s", self.name, what, exc)

    def __repr__(self) -> str:
        return f"SecretsManagerBackend(name={self.name!r}, region={self.region!r}, endpoint_url={self.endpoint_url!r})"


# -- module helpers -----------------------------------------------------------------------------
def default_region(profile: str | None = None) -> str | None:
    """``AWS_REGION`` (set by Lambda, ignored by botocore), else the session's region
    (``AWS_DEFAULT_REGION``, then the profile's ``region``). ``ProfileNotFound`` for an unknown profile."""
    return os.environ.get("AWS_REGION") or boto3.session.Session(profile_name=profile).region_name


def label_holder(versions: Mapping[str, list[str]], label: str) -> str | None:
    """The VersionId carrying ``label`` in a ``VersionIdsToStages`` map (each label is on at most one)."""
    for version_id, labels in versions.items():
        if label in labels:
            return version_id
    return None


def tag_value(value: Any) -> str:
    """A tag value AWS accepts: forbidden characters -> ``_`` (``,`` -> space), at most 256 characters."""
    text = str(value).replace(",", " ")
    return _TAG_FORBIDDEN.sub("_", text)[:_TAG_VALUE_MAX]


def tag_key(key: str) -> str:
    """``managed_by`` -> ``managed-by``; any other key -> ``jfrog-rotator:<key>`` (sanitised, <= 128)."""
    if key in ("managed_by", MANAGED_BY_TAG):
        return MANAGED_BY_TAG
    return (TAG_PREFIX + _TAG_FORBIDDEN.sub("_", key))[:_TAG_KEY_MAX]


def to_tags(metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    """Metadata -> the ``Tags`` list of ``CreateSecret`` / ``TagResource`` (``None`` -> empty value)."""
    return [{"Key": tag_key(k), "Value": tag_value("" if v is None else v)} for k, v in metadata.items()]


def from_tags(tags: list[Mapping[str, str]]) -> dict[str, str]:
    """``Tags`` -> metadata: our ``jfrog-rotator:*`` tags and ``managed_by``; other tags are ignored."""
    meta: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if key == MANAGED_BY_TAG:
            meta["managed_by"] = value
        elif key.startswith(TAG_PREFIX) and value:  # an empty tag is a removed value
            meta[key[len(TAG_PREFIX):]] = value
    return meta


__all__ = [
    "AwsError",
    "CURRENT",
    "MANAGED_BY_TAG",
    "NO_CURRENT",
    "PENDING",
    "PREVIOUS",
    "SecretsManagerBackend",
    "TAG_PREFIX",
    "default_region",
    "from_tags",
    "label_holder",
    "tag_key",
    "tag_value",
    "to_tags",
]
