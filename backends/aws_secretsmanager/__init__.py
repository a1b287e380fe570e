"""AWS Secrets Manager backend: one secret per target, compare-and-set through staging labels.

A *path* is a secret name or ARN. The value is the record's JSON in ``SecretString``; the
*version* the engine compares is the ``VersionId`` holding the ``AWSCURRENT`` label; the
non-secret metadata lives in the secret's tags (``managed-by`` plus ``jfrog-rotator:<key>``), so
status and triggers never read the value. Configuration: ``docs/configuration.md``.

The package, one idea a module:

* :mod:`.staging`: the label protocol (write pending, promote with ``RemoveFromVersionId`` as the
  compare-and-set, drop pending, the first value of a secret without ``AWSCURRENT``, conflicts);
* :mod:`.tags`: metadata <-> tags;
* :mod:`.coordination`: the daemon replicas' leader lease and per-rotation claims;
* :mod:`.transport`: the boto3 client, the call wrapper and the typed errors.

The rotation Lambda imports this package: it imports boto3/botocore and the small ``rotator.core``
helpers only (no hvac, yaml, apscheduler, never ``rotator.engine``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ProfileNotFound

from backends.aws_secretsmanager.coordination import AwsCoordination
from backends.aws_secretsmanager.staging import CURRENT, NO_CURRENT, PENDING, PREVIOUS, StagingLabels, label_holder
from backends.aws_secretsmanager.tags import (
    MANAGED_BY_TAG,
    MAX_TAGS,
    TAG_KEY_PREFIX,
    TagLimitExceeded,
    from_tags,
    tag_key,
    tag_plan,
    tag_value,
    to_tags,
)
from backends.aws_secretsmanager.transport import (
    EXISTS,
    NOT_FOUND,
    AwsError,
    best_effort,
    call,
    default_region,
    make_client,
    pages,
)
from backends.base import BackendError, CASConflict, LeaseRecord, StagingState, StoredValue, Version
from rotator.core.options import Options
from rotator.core.record import MANAGED_BY


class SecretsManagerBackend:
    """AWS Secrets Manager through boto3; implements ``SecretBackend``, ``StagingBackend``,
    ``LeaderLease`` and ``RotationClaims``
    (``backends.base``; API: https://docs.aws.amazon.com/secretsmanager/latest/apireference/Welcome.html)."""

    metadata_without_secret = True
    lease_expires = True  # backends.base.LeaderLease: AWSCURRENT moved by its holder at every renewal

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
        self._labels = StagingLabels(name, self._api)
        self._coordination = AwsCoordination(name, self._api, self._labels, kms_key_id)

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
                    client = make_client(self.name, region=self.region, profile=self.profile,
                                         endpoint_url=self.endpoint_url, timeout=self.timeout,
                                         max_attempts=self.max_attempts)
                    self.region = client.meta.region_name
                    self._client = client
        return self._client

    def close(self) -> None:
        """Close the HTTP connections of a client we created (a client passed in is the caller's)."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    # -- SecretBackend ----------------------------------------------------------------------
    def read(self, path: str) -> StoredValue:
        """``GetSecretValue(VersionStage=AWSCURRENT)``: one call; metadata is left empty.

        Only when the value is missing does a ``DescribeSecret`` tell "no such secret"
        (``StoredValue(None, None)``) from "secret without a current value"
        (``StoredValue(None, NO_CURRENT)``). Tags are not fetched: the engine needs text and
        version only; :meth:`read_metadata` gives them.
        """
        found = self._labels.get_value(path, stage=CURRENT)
        if found is None:
            return self._value_missing(path)
        return StoredValue(*found)

    def _value_missing(self, path: str) -> StoredValue:
        try:
            versions = self._labels.versions(path)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return StoredValue(None, None)
            raise
        holder = label_holder(versions, CURRENT)
        # AWSCURRENT on a version without a value (moto's rotate_secret without a Lambda does
        # that): a CAS write can still move the label away from it.
        return StoredValue(None, holder if holder else NO_CURRENT)

    def write(self, path: str, text: str, *, expected_version: Version, metadata: Mapping[str, str | None],
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
            self._labels.put_first_value(path, text, rotation_id)
        else:
            self._labels.write_pending(path, text, rotation_id)
            self._labels.move_current(path, rotation_id, expected_version, secret=text)
            best_effort(self.name, "remove AWSPENDING", lambda: self._labels.drop_pending(path, rotation_id))
        # rotator_version: the version these tags describe (read_metadata reports current_version beside it)
        tags = {**metadata, "managed_by": MANAGED_BY, "rotator_version": rotation_id}
        best_effort(self.name, "tag", lambda: self.patch_metadata(path, tags))
        return rotation_id

    def _create(self, path: str, text: str, metadata: Mapping[str, str | None], rotation_id: str) -> str:
        """``CreateSecret`` with value, tags and KMS key in one call (idempotent per token)
        (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html)."""
        params: dict[str, Any] = {"Name": path, "SecretString": text, "ClientRequestToken": rotation_id,
                                  "Tags": tag_plan([], {**metadata, "managed_by": MANAGED_BY,
                                                        "rotator_version": rotation_id})}
        if self.kms_key_id:
            params["KmsKeyId"] = self.kms_key_id
        try:
            answer = self._api("CreateSecret", path, write=True, secret=text, **params)
        except AwsError as exc:
            if exc.code == EXISTS:
                raise CASConflict("CreateSecret: the secret was created by someone else after we read it",
                                  backend=self.name, path=path) from None
            raise
        return answer.get("VersionId", rotation_id)

    def keeps_metadata_apart(self) -> bool:
        """backends.base.DocumentStore: the tags live beside any SecretString."""
        return True

    def read_metadata(self, path: str) -> dict[str, str] | None:
        """``DescribeSecret``: tags ``jfrog-rotator:<key>`` as ``<key>``, ``managed_by``, ``rotation_enabled``,
        and ``current_version`` (the VersionId holding AWSCURRENT)."""
        try:
            described = self._labels.describe(path)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise
        meta = from_tags(described.get("Tags") or [])
        meta["rotation_enabled"] = "true" if described.get("RotationEnabled") else "false"
        current = label_holder(described.get("VersionIdsToStages") or {}, CURRENT)
        if current is not None:
            meta["current_version"] = current
        return meta

    def patch_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """``DescribeSecret`` then one ``TagResource`` with what changes (:func:`.tags.tag_plan`): a
        ``None`` value empties a tag the secret has (read back as absent) instead of an
        ``UntagResource`` call, and is skipped where it has none; :class:`BackendError` when the
        secret would carry more than 50 tags, nothing written then
        (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_TagResource.html)."""
        if not updates:
            return
        tags = self._tag_plan(path, updates)
        if tags:
            self._api("TagResource", path, SecretId=path, Tags=tags)

    def check_metadata(self, path: str, updates: Mapping[str, str | None]) -> None:
        """backends.base.BoundedMetadata: would ``updates`` fit beside the secret's tags? A secret that
        does not exist yet has no tags of anyone else."""
        try:
            self._tag_plan(path, updates)
        except AwsError as exc:
            if exc.code != NOT_FOUND:
                raise

    def _tag_plan(self, path: str, updates: Mapping[str, str | None]) -> list[dict[str, str]]:
        existing = self._labels.describe(path).get("Tags") or []
        try:
            return tag_plan(existing, updates)
        except TagLimitExceeded as exc:
            raise BackendError(f"TagResource: {exc}", backend=self.name, path=path) from None

    def list_managed(self) -> list[str]:
        """Names of secrets tagged ``managed-by=jfrog-token-rotator`` (``ListSecrets``, paginated)."""
        names: list[str] = []
        for page in pages(self.client, "ListSecrets", backend=self.name,
                          Filters=[{"Key": "tag-key", "Values": [MANAGED_BY_TAG]}]):
            for secret in page.get("SecretList", []):
                # The filter matches the tag key only (and by prefix): check the value here.
                tags = {t["Key"]: t.get("Value") for t in secret.get("Tags") or []}
                if tags.get(MANAGED_BY_TAG) == MANAGED_BY:
                    names.append(secret["Name"])
        return sorted(names)

    def check(self) -> str:
        """``ListSecrets(MaxResults=1)``: endpoint reachable, credentials valid, listing allowed."""
        self._api("ListSecrets", "", MaxResults=1)
        endpoint = self.endpoint_url or "the regional AWS endpoint"
        return f"{self.name}: AWS Secrets Manager in {self.region} via {endpoint}: ListSecrets ok"

    # -- StagingBackend (see .staging) -----------------------------------------------------------
    def staging(self, path: str) -> StagingState:
        """``DescribeSecret`` as a :class:`~backends.base.StagingState`."""
        return self._labels.state(path)

    def write_pending(self, path: str, text: str, rotation_id: str, *, rotation_token: str | None = None) -> None:
        """``PutSecretValue(ClientRequestToken=rotation_id, VersionStages=[AWSPENDING])`` (idempotent)."""
        self._labels.write_pending(path, text, rotation_id, rotation_token=rotation_token)

    def read_pending(self, path: str, rotation_id: str) -> str | None:
        """``GetSecretValue(VersionId=rotation_id, VersionStage=AWSPENDING)``; ``None`` when it has no value.

        On AWS the placeholder Secrets Manager creates before ``createSecret`` has no value and
        answers ``ResourceNotFoundException``, as does an unknown version.
        """
        return self._labels.read_version(path, rotation_id, PENDING)

    def read_version(self, path: str, version_id: str, stage: str | None = None) -> str | None:
        """``GetSecretValue(VersionId[, VersionStage])``; ``None`` on ``ResourceNotFoundException``."""
        return self._labels.read_version(path, version_id, stage)

    def promote(self, path: str, rotation_id: str, expected_version: Version) -> Version:
        """Make ``rotation_id`` AWSCURRENT if ``expected_version`` still is, then drop its AWSPENDING
        (:class:`CASConflict` when another version is current; :meth:`StagingLabels.promote`)."""
        return self._labels.promote(path, rotation_id, expected_version)

    def drop_pending(self, path: str, rotation_id: str) -> None:
        """Take ``AWSPENDING`` off version ``rotation_id`` (an abandoned rotation); no-op when it lacks it."""
        self._labels.drop_pending(path, rotation_id)

    # -- LeaderLease and RotationClaims (see .coordination) ------------------------------------------
    def read_lease(self, path: str) -> LeaseRecord:
        return self._coordination.read_lease(path)

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> Version:
        return self._coordination.take_lease(path, holder, fields, expected=expected)

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> Version:
        return self._coordination.renew_lease(path, holder, fields, held=held)

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        self._coordination.release_lease(path, holder, held=held)

    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        return self._coordination.claim_rotation(path, version, holder=holder, rotation_id=rotation_id, ttl=ttl)

    def release_claim(self, path: str, version: Version, *, holder: str) -> None:
        self._coordination.release_claim(path, version, holder=holder)

    # -- plumbing -----------------------------------------------------------------------------
    def _api(self, operation: str, path: str, *, write: bool = False, secret: str | None = None,
             **params: Any) -> Any:
        """One call on this backend's client (:func:`.transport.call`)."""
        return call(self.client, operation, backend=self.name, path=path, write=write, secret=secret, **params)

    def __repr__(self) -> str:
        return f"SecretsManagerBackend(name={self.name!r}, region={self.region!r}, endpoint_url={self.endpoint_url!r})"


__all__ = [
    "AwsError",
    "CURRENT",
    "MANAGED_BY_TAG",
    "MAX_TAGS",
    "NO_CURRENT",
    "PENDING",
    "PREVIOUS",
    "SecretsManagerBackend",
    "TAG_KEY_PREFIX",
    "default_region",
    "from_tags",
    "label_holder",
    "tag_key",
    "tag_value",
    "to_tags",
]
