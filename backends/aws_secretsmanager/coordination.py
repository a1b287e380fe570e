"""Daemon replicas coordinating through Secrets Manager: the leader lease and per-rotation claims.

Both rest on Secrets Manager's own guarantees, and neither makes a version per renewal (AWS
advises against ``PutSecretValue`` more than once every 10 minutes: versions younger than a day
are never cleaned up, https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).

**The lease** is the secret ``<daemon.leader.path>``. Each holder has two versions of its own,
whose VersionIds are derived from (path, holder, ``a``/``b``) and whose value names the holder;
each is put once, under the label ``jfrog-rotator-lease`` (so ``AWSCURRENT`` stays where it is).
Taking the lease moves ``AWSCURRENT`` onto the holder's version with ``RemoveFromVersionId=<the
version read>``; each renewal moves it to the holder's other version the same way. Secrets
Manager refuses the move when ``AWSCURRENT`` is no longer on the version named: that refusal is
the compare-and-set (:mod:`.staging`). So the VersionId holding ``AWSCURRENT`` changes at every
renewal, which is what standbys watch, and a holder that was taken over finds out at its next
move. A clean stop moves ``AWSCURRENT`` to a shared "released" version (``{"holder": ""}``).

**A claim** is a version of the target's own secret: ``PutSecretValue`` with a
``ClientRequestToken`` derived from (path, the version read, attempt), under the label
``jfrog-rotator-claim``, whose value names the claimer and the attempt. A token makes one version;
putting it again with another value is refused (``ResourceExistsException``). So of two replicas
claiming a rotation from the same version, one creates the claim and the other mints nothing.
The label moves onto each new claim, so the latest is one read away: a claim of ours from the
same version is kept (a retry costs no version), and one that is free (released by a rotation
that failed, or older than its TTL) is passed by the next attempt's token. Consumers read
``AWSCURRENT`` only, so a claim version is never handed out.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from backends.aws_secretsmanager.staging import CURRENT, NO_CURRENT, ApiCall, StagingLabels
from backends.aws_secretsmanager.transport import EXISTS, NOT_FOUND, AwsError
from backends.base import BackendError, CASConflict, LeaseRecord, Version, live_claim_holder

LEASE_LABEL = "jfrog-rotator-lease"
CLAIM_LABEL = "jfrog-rotator-claim"
RELEASED = json.dumps({"holder": ""})
MAX_CLAIM_ATTEMPTS = 8  # stale claims passed over before giving up

# Fixed: the same (path, holder, slot) gives the same VersionId on every replica and every run.
_NAMESPACE = uuid.UUID("6f1d3c5e-8a47-4b0e-9d36-2f5a1c7e9b40")


def version_id(*parts: str) -> str:
    """A VersionId (ClientRequestToken: 32-64 characters) derived from ``parts``."""
    return str(uuid.uuid5(_NAMESPACE, "\n".join(parts)))


class AwsCoordination:
    """The lease and the claims of one backend; every call goes through ``api`` and ``labels``."""

    def __init__(self, backend: str, api: ApiCall, labels: StagingLabels, kms_key_id: str | None = None) -> None:
        self.backend = backend
        self._api = api
        self._labels = labels
        self.kms_key_id = kms_key_id
        self._put: set[tuple[str, str]] = set()  # (path, VersionId) of our lease versions already put

    # -- the leader lease -----------------------------------------------------------------------
    def read_lease(self, path: str) -> LeaseRecord:
        """``GetSecretValue(VersionStage=AWSCURRENT)``: the holder and the VersionId, one call."""
        found = self._labels.get_value(path, stage=CURRENT)
        if found is None:
            try:
                versions = self._labels.versions(path)
            except AwsError as exc:
                if exc.code == NOT_FOUND:
                    return LeaseRecord(None, None)
                raise
            return LeaseRecord(None, NO_CURRENT if versions else None)
        text, current = found
        data = _object(text)
        return LeaseRecord(str(data.get("holder") or "") or None, current,
                           {str(k): str(v) for k, v in data.items() if k != "holder"})

    def take_lease(self, path: str, holder: str, fields: Mapping[str, str], *, expected: Version) -> str:
        mine = version_id(path, holder, "a")
        text = _holder_value(holder, fields, "a")
        if expected is None:
            self._create(path, text, mine)
        elif expected == NO_CURRENT:
            self._labels.put_first_value(path, text, mine)
        else:
            self._put_once(path, text, mine)
            self._labels.move_current(path, mine, expected)
        return mine

    def renew_lease(self, path: str, holder: str, fields: Mapping[str, str], *, held: Version) -> str:
        slot = "b" if held == version_id(path, holder, "a") else "a"
        other = version_id(path, holder, slot)
        self._put_once(path, _holder_value(holder, fields, slot), other)
        self._labels.move_current(path, other, held)
        return other

    def release_lease(self, path: str, holder: str, *, held: Version) -> None:
        released = version_id(path, "released")
        try:
            self._put_once(path, RELEASED, released)
            self._labels.move_current(path, released, held)
        except CASConflict:
            pass  # taken over already

    def _put_once(self, path: str, text: str, version: str) -> None:
        """``PutSecretValue`` of one of our lease versions, the first time only (AWS would ignore
        an identical re-put, at the cost of a call)."""
        if (path, version) not in self._put:
            self._labels.put(path, text, version, [LEASE_LABEL])
            self._put.add((path, version))

    def _create(self, path: str, text: str, version: str) -> None:
        params: dict[str, Any] = {"Name": path, "SecretString": text, "ClientRequestToken": version}
        if self.kms_key_id:
            params["KmsKeyId"] = self.kms_key_id
        try:
            self._api("CreateSecret", path, write=True, **params)
        except AwsError as exc:
            if exc.code == EXISTS:
                raise CASConflict("CreateSecret: the lease secret was created by someone else first",
                                  backend=self.backend, path=path) from None
            raise
        self._put.add((path, version))

    # -- claims -----------------------------------------------------------------------------------
    def claim_rotation(self, path: str, version: Version, *, holder: str, rotation_id: str, ttl: float) -> str:
        """The latest claim (``GetSecretValue`` by its label), then one ``PutSecretValue`` of the next
        token when it is free; none when it is ours already (a retry of this replica's rotation)."""
        if version is None:
            return holder  # no secret yet: CreateSecret refuses the second creator by itself
        now = time.time()
        latest = self._latest_claim(path)
        start = 0
        if str(latest.get("version")) == str(version):
            if latest.get("holder") == holder:
                return holder  # ours, from this version: claimed again without a version more
            other = live_claim_holder(latest, version, holder, ttl, now)
            if other:
                return other
            start = _attempt(latest) + 1
        for attempt in range(start, start + MAX_CLAIM_ATTEMPTS):
            token = version_id(path, str(version), str(attempt))
            claim = json.dumps({"holder": holder, "version": str(version), "rotation_id": rotation_id,
                                "at": f"{now:.3f}", "attempt": attempt})
            try:
                self._labels.put(path, claim, token, [CLAIM_LABEL])
                return holder  # the first free token: ours, and nobody else's
            except AwsError as exc:
                if exc.code != EXISTS:
                    raise
            found = _object(self._labels.read_version(path, token))
            other = live_claim_holder(found, version, holder, ttl, now)
            nxt = version_id(path, str(version), str(attempt + 1))
            if other and self._labels.read_version(path, nxt) is None:
                return other  # the latest claim, live, someone else's
            # stale, released, ours, or passed over by a later claim: the next token decides
        raise BackendError(f"claim rotation: {MAX_CLAIM_ATTEMPTS} stale claims on version {version}",
                           backend=self.backend, path=path)

    def release_rotation(self, path: str, version: Version, *, holder: str) -> None:
        """When the latest claim is still ours from ``version``: the next token, naming nobody."""
        latest = self._latest_claim(path)
        if latest.get("holder") != holder or str(latest.get("version")) != str(version):
            return
        attempt = _attempt(latest) + 1
        text = json.dumps({"holder": "", "version": str(version), "released_by": holder, "at": f"{time.time():.3f}",
                           "attempt": attempt})
        try:
            self._labels.put(path, text, version_id(path, str(version), str(attempt)), [CLAIM_LABEL])
        except AwsError as exc:
            if exc.code != EXISTS:
                raise  # EXISTS: claimed again by someone else meanwhile, not ours to free

    def _latest_claim(self, path: str) -> dict[str, Any]:
        """The claim holding the label (``PutSecretValue`` moves it onto each new claim)."""
        found = self._labels.get_value(path, stage=CLAIM_LABEL)
        return _object(found[0]) if found is not None else {}


def _attempt(claim: Mapping[str, Any]) -> int:
    """Which token of its version a claim was put under (-1 when it does not say: walk from 0)."""
    try:
        return int(claim.get("attempt", -1))
    except (TypeError, ValueError):
        return -1


def _holder_value(holder: str, fields: Mapping[str, str], slot: str) -> str:
    """The value of a holder's lease version: the same text every time (a re-put must match)."""
    return json.dumps({"holder": holder, "replica": fields.get("replica", ""), "slot": slot}, sort_keys=True)


def _object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
