"""The staging-label protocol of Secrets Manager: write pending, promote with a compare-and-set.

A new value is written under the rotation id as ``AWSPENDING``, then ``AWSCURRENT`` is moved onto
it, naming the version the writer read as current (the protocol the rotation Lambda follows, see
``docs/aws-lambda.md`` and https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html)::

    PutSecretValue(ClientRequestToken=rotation_id, VersionStages=[AWSPENDING])       write_pending
    UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId=rotation_id,
                             RemoveFromVersionId=expected_version)                     promote
    UpdateSecretVersionStage(AWSPENDING, RemoveFromVersionId=rotation_id)              promote

The second call *is* the compare-and-set: Secrets Manager refuses to move ``AWSCURRENT`` when
``RemoveFromVersionId`` is not the version holding it. moto 5.2.5 enforces that too
(``InvalidParameterException: Version stage AWSCURRENT not found in version …``, checked in
``tests/backends/test_aws_backend.py``), so there is no read-then-move race on this path.
``AWSPENDING`` is removed afterwards: AWS would clean it up itself, but moto refuses the next
``RotateSecret`` while ``AWSPENDING`` sits on the ``AWSCURRENT`` version (the reverse of AWS's
rule, which accepts exactly that), and a stuck ``AWSPENDING`` on a non-current version blocks
rotations on AWS.

One case is a check followed by a write (two calls, a narrow but non-zero race window): the
first value of a secret that exists without ``AWSCURRENT`` (``expected_version == NO_CURRENT``).
There is no version to name in ``RemoveFromVersionId``, and moving ``AWSCURRENT`` without one
crashes moto (https://github.com/getmoto/moto/issues/9451), so the labels are checked with
``DescribeSecret`` and then the value is put with ``AWSCURRENT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from backends.aws_secretsmanager.transport import NOT_FOUND, REFUSED, AwsError, best_effort
from backends.base import BackendError, CASConflict, StagingState, Version

#: The version a read reports for a secret that exists but has no ``AWSCURRENT`` value yet
#: (created empty, or only an empty ``AWSPENDING`` placeholder). Never a real VersionId
#: (those are 32-64 characters of ``[A-Za-z0-9-]``).
NO_CURRENT = "(no AWSCURRENT)"

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class ApiCall(Protocol):
    """One Secrets Manager call for one backend (:func:`~backends.aws_secretsmanager.transport.call`
    with the client and the backend name bound)."""

    def __call__(self, operation: str, path: str, *, write: bool = False, secret: str | None = None,
                 **params: Any) -> Any: ...


def label_holder(versions: Mapping[str, Any], label: str) -> str | None:
    """The VersionId carrying ``label`` in a ``VersionIdsToStages`` map (each label is on at most one)."""
    for version_id, labels in versions.items():
        if label in labels:
            return version_id
    return None


class StagingLabels:
    """The label protocol on the secrets of one backend; every AWS call goes through ``api``.

    Errors name ``backend`` and the secret; :class:`CASConflict` means another writer's version
    holds ``AWSCURRENT`` and ours was not promoted.
    """

    def __init__(self, backend: str, api: ApiCall) -> None:
        self.backend = backend
        self._api = api

    # -- reading ------------------------------------------------------------------------------
    def describe(self, path: str) -> dict[str, Any]:
        """The ``DescribeSecret`` answer without ``ResponseMetadata``
        (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html)."""
        answer = dict(self._api("DescribeSecret", path, SecretId=path))
        answer.pop("ResponseMetadata", None)
        return answer

    def versions(self, path: str) -> dict[str, list[str]]:
        """``VersionIdsToStages``: ``{VersionId: [labels]}`` (empty when the secret has no versions)."""
        return dict(self.describe(path).get("VersionIdsToStages") or {})

    def state(self, path: str) -> StagingState:
        """``DescribeSecret`` as a :class:`~backends.base.StagingState`."""
        answer = self.describe(path)
        versions = {k: tuple(v) for k, v in (answer.get("VersionIdsToStages") or {}).items()}
        return StagingState(arn=answer.get("ARN") or path, name=answer.get("Name") or path,
                            rotation_enabled=bool(answer.get("RotationEnabled")), versions=versions,
                            current=label_holder(versions, CURRENT), pending=label_holder(versions, PENDING))

    def get_value(self, path: str, *, version_id: str | None = None,
                  stage: str | None = None) -> tuple[str, str] | None:
        """``GetSecretValue``: ``(text, VersionId)``, ``None`` on ``ResourceNotFoundException``: no such
        secret or version, or a version without a value, like the placeholder AWS makes before
        ``createSecret`` (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).

        Name a stage or a version: moto answers a read with neither from an internal default
        version that ``UpdateSecretVersionStage`` does not move.
        """
        params = {"VersionId": version_id, "VersionStage": stage}
        try:
            answer = self._api("GetSecretValue", path, SecretId=path,
                               **{k: v for k, v in params.items() if v is not None})
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise
        text = answer.get("SecretString")
        if text is None:
            raise BackendError("the secret holds a binary value (SecretBinary), not a JSON text",
                               backend=self.backend, path=path)
        return text, answer["VersionId"]

    def read_version(self, path: str, version_id: str, stage: str | None = None) -> str | None:
        """The value of version ``version_id`` (which must also hold ``stage`` when one is named);
        ``None`` when it has none."""
        found = self.get_value(path, version_id=version_id, stage=stage)
        return found[0] if found is not None else None

    # -- writing ------------------------------------------------------------------------------
    def put(self, path: str, text: str, rotation_id: str, stages: list[str], *,
            rotation_token: str | None = None) -> None:
        """``PutSecretValue`` with ``ClientRequestToken=rotation_id`` (the new VersionId)
        (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html)."""
        params: dict[str, Any] = {"SecretId": path, "SecretString": text, "ClientRequestToken": rotation_id,
                                  "VersionStages": stages}
        if rotation_token:
            params["RotationToken"] = rotation_token
        self._api("PutSecretValue", path, write=True, secret=text, **params)

    def write_pending(self, path: str, text: str, rotation_id: str, *, rotation_token: str | None = None) -> None:
        """``PutSecretValue(ClientRequestToken=rotation_id, VersionStages=[AWSPENDING])``.

        Idempotent for the same text (AWS ignores an identical re-put). ``rotation_token`` is
        the Lambda event's ``RotationToken`` (assumed-role / cross-account rotation).
        """
        self.put(path, text, rotation_id, [PENDING], rotation_token=rotation_token)

    def put_first_value(self, path: str, text: str, rotation_id: str) -> None:
        """First value of a secret that has none: ``DescribeSecret``, then ``PutSecretValue`` AWSCURRENT.

        Not ``UpdateSecretVersionStage`` (moto #9451 crashes when no version holds AWSCURRENT).
        The check and the put are two calls: a writer in between would be overwritten.
        """
        try:
            holder = label_holder(self.versions(path), CURRENT)
        except AwsError as exc:
            if exc.code == NOT_FOUND:
                raise CASConflict("the secret was deleted after we read it", backend=self.backend,
                                  path=path) from None
            raise
        if holder == rotation_id:
            return  # our own earlier attempt went through
        if holder is not None:
            raise CASConflict(f"version {holder} became AWSCURRENT after we read the secret (it had none)",
                              backend=self.backend, path=path)
        self.put(path, text, rotation_id, [CURRENT])

    # -- promoting ----------------------------------------------------------------------------
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
            self.move_current(path, rotation_id, expected_version)
        self.drop_pending(path, rotation_id)
        return rotation_id

    def move_current(self, path: str, rotation_id: str, expected_version: Version, *,
                     secret: str | None = None) -> None:
        """The compare-and-set: ``UpdateSecretVersionStage(AWSCURRENT, Move…, RemoveFrom…)``
        (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html).

        Secrets Manager (and moto) refuse the move with ``InvalidParameterException`` when
        ``expected_version`` no longer holds AWSCURRENT; only then is ``DescribeSecret`` asked to
        tell a retry of our own success from another writer's win.
        """
        try:
            self._api("UpdateSecretVersionStage", path, write=True, secret=secret, SecretId=path,
                      VersionStage=CURRENT, MoveToVersionId=rotation_id, RemoveFromVersionId=expected_version)
        except AwsError as exc:
            if exc.code not in REFUSED:
                raise
            self._require_current(path, rotation_id, expected_version, refused=exc)

    def drop_pending(self, path: str, rotation_id: str, versions: Mapping[str, list[str]] | None = None) -> None:
        """``UpdateSecretVersionStage(AWSPENDING, RemoveFromVersionId=rotation_id)`` if it holds it.

        The version itself stays, unlabelled. No-op when it lacks the label (``versions``, when
        given, is what ``DescribeSecret`` said just before, which saves the call).
        """
        if versions is not None and PENDING not in versions.get(rotation_id, []):
            return
        try:
            self._api("UpdateSecretVersionStage", path, write=True, SecretId=path, VersionStage=PENDING,
                      RemoveFromVersionId=rotation_id)
        except AwsError as exc:
            # Refused because the label is not (any more) on our version: AWS may clean it up
            # itself after the AWSCURRENT move, or a new rotation moved it. Nothing to do then.
            if exc.code not in REFUSED or PENDING in self.versions(path).get(rotation_id, []):
                raise

    def _require_current(self, path: str, rotation_id: str, expected_version: Version,
                         refused: AwsError | None = None) -> None:
        """Pass when ``rotation_id`` holds AWSCURRENT; CASConflict when another version does."""
        versions = self.versions(path)
        holder = label_holder(versions, CURRENT)
        if holder == rotation_id:
            return
        if rotation_id not in versions:
            raise refused or AwsError(f"version {rotation_id} does not exist", backend=self.backend, path=path,
                                      operation="UpdateSecretVersionStage", code=NOT_FOUND)
        if holder == expected_version and refused is not None:
            raise refused  # the label is where we expected: the refusal has another reason
        raise self._conflict(path, rotation_id, expected_version, holder, versions)

    def _conflict(self, path: str, rotation_id: str, expected_version: Version, holder: str | None,
                  versions: Mapping[str, list[str]]) -> CASConflict:
        """Drop our AWSPENDING (a stuck one blocks rotations on AWS) and describe who won."""
        best_effort(self.backend, "remove AWSPENDING", lambda: self.drop_pending(path, rotation_id, versions))
        expected = "no version" if expected_version == NO_CURRENT else f"version {expected_version}"
        return CASConflict(f"AWSCURRENT is on version {holder}, not on {expected} as read: another writer won; "
                           f"version {rotation_id} was not promoted", backend=self.backend, path=path)

    def _promote_first_value(self, path: str, rotation_id: str) -> None:
        """Bootstrap: no version holds AWSCURRENT yet (created empty, or rotation enabled first).

        AWS accepts ``UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId)`` without
        ``RemoveFromVersionId`` here, but moto answers 500 (#9451). So re-put the pending value
        with the same token and ``VersionStages=[AWSCURRENT]`` (moto moves the label; AWS may
        ignore an identical re-put), and only if the label did not move, make that call.
        The check and the put are two calls: a writer in between would be overwritten.
        """
        versions = self.versions(path)
        holder = label_holder(versions, CURRENT)
        if holder == rotation_id:
            return
        if holder is not None:
            raise self._conflict(path, rotation_id, NO_CURRENT, holder, versions)
        text = self.read_version(path, rotation_id, PENDING)
        if text is None:
            raise BackendError(f"cannot promote version {rotation_id}: it has no pending value",
                               backend=self.backend, path=path)
        self.put(path, text, rotation_id, [CURRENT])
        if label_holder(self.versions(path), CURRENT) != rotation_id:
            self._api("UpdateSecretVersionStage", path, write=True, SecretId=path, VersionStage=CURRENT,
                      MoveToVersionId=rotation_id)


__all__ = ["ApiCall", "CURRENT", "NO_CURRENT", "PENDING", "PREVIOUS", "StagingLabels", "label_holder"]
