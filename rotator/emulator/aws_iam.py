"""AWS IAM role exchange (``POST /access/api/v1/aws/token``): the AWS identities the emulator
knows, the check of the signed STS ``GetCallerIdentity`` request the caller sends, and the answer.

The caller signs ``GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15``
with SigV4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html)
and sends the signed headers instead of a JFrog credential. Real JFrog asks STS who signed; the
emulator knows the test secret keys of its identities and recomputes the signature with botocore's
own signer over the same canonical request. docs/emulator.md shows how a test sets one up.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rotator.emulator.model import AccessModel
from rotator.emulator.users import USER_SCOPE
from rotator.emulator.validation import TokenRequest, forbidden, unauthorized

STS_PARAMS = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Za-z0-9]{1,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})"
    r"/sts/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*), ?Signature=(?P<signature>[0-9a-f]{64})"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
INVALID_SIGNATURE = "The AWS signature of the GetCallerIdentity request does not match"


@dataclass(frozen=True)
class AwsIdentity:
    """An AWS identity the emulator accepts: its (test) keys, its role, and the JFrog user that
    role is mapped to (``None``: a real AWS identity whose role JFrog does not map)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    role_arn: str
    username: str | None
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SignedIdentity:
    """The SigV4 parts of the request headers: who claims to sign, where, when, and what."""

    access_key_id: str
    region: str
    amz_date: str
    signed_headers: tuple[str, ...]
    signature: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SignedIdentity:
        """401 for a missing or malformed ``Authorization``/``X-Amz-Date`` (never echoing either)."""
        match = _AUTHORIZATION.fullmatch((headers.get("Authorization") or "").strip())
        if match is None:
            raise unauthorized("Expected the SigV4-signed headers of an STS GetCallerIdentity request "
                               "(Authorization: AWS4-HMAC-SHA256 Credential=.../sts/aws4_request, ...)")
        amz_date = (headers.get("X-Amz-Date") or "").strip()
        if not _AMZ_DATE.fullmatch(amz_date) or amz_date[:8] != match["date"]:
            raise unauthorized("X-Amz-Date is missing or does not match the date of the credential scope")
        return cls(match["key"], match["region"], amz_date, tuple(match["signed"].split(";")), match["signature"])


class AwsIamExchange:
    """The identities (by access key id) and the exchange itself, over one :class:`AccessModel`."""

    def __init__(self, model: AccessModel) -> None:
        self.model = model
        self._identities: dict[str, AwsIdentity] = {}
        self._lock = threading.Lock()

    def add(self, identity: AwsIdentity) -> None:
        with self._lock:
            self._identities[identity.access_key_id] = identity

    def exchange(self, identity: AwsIdentity, params: Mapping[str, object]) -> dict:
        """Mint a token for the user ``identity``'s role is mapped to (after :meth:`verify`): 403
        for a role no JFrog user is mapped to, 400 for a bad ``expires_in``."""
        if identity.username is None:
            raise forbidden(f"AWS role '{identity.role_arn}' is not mapped to a JFrog user")
        expires_in = TokenRequest.from_params({"expires_in": params.get("expires_in")}).expires_in
        # force_revocable: the token is a normal token of the model, which can be revoked by id.
        record = self.model.issue(identity.username, TokenRequest(scope=USER_SCOPE, expires_in=expires_in,
                                                                  force_revocable=True))
        out: dict[str, object] = {"access_token": record.access_token, "username": identity.username,
                                  "token_id": record.token_id}
        if record.expiry is not None:
            out["expires_in"] = record.lifetime
        out.update(scope=record.scope, token_type="Bearer")
        return out

    def verify(self, headers: Mapping[str, str], region: str | None) -> AwsIdentity:
        """The identity whose secret key made the signature of ``headers``; 401 otherwise."""
        signed = SignedIdentity.from_headers(headers)
        with self._lock:
            identity = self._identities.get(signed.access_key_id)
        if identity is None:
            raise unauthorized("The AWS access key id in the signature is not known to STS")
        token = (headers.get("X-Amz-Security-Token") or "").strip() or None
        if token != identity.session_token or (token is not None) != ("x-amz-security-token" in signed.signed_headers):
            raise unauthorized("The AWS security token of the request is invalid")
        expected = _signature(identity, signed, region or signed.region, headers)
        if expected is None or not hmac.compare_digest(expected, signed.signature):
            raise unauthorized(INVALID_SIGNATURE)
        return identity


def _signature(identity: AwsIdentity, signed: SignedIdentity, region: str, headers: Mapping[str, str]) -> str | None:
    """SigV4 of ``GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15``
    with the signed headers' values (``host`` is the STS host: the caller sent its JFrog host),
    computed by botocore; ``None`` when a signed header is missing or botocore would sign others."""
    request = AWSRequest(method="GET", url=f"https://sts.{region}.amazonaws.com/", params=dict(STS_PARAMS))
    for name in signed.signed_headers:
        if name == "host":
            continue
        value = headers.get(name)
        if value is None:
            return None
        request.headers[name] = value
    request.context["timestamp"] = signed.amz_date  # the signer's time, not ours
    auth = SigV4Auth(Credentials(identity.access_key_id, identity.secret_access_key, identity.session_token),
                     "sts", signed.region)
    if auth.signed_headers(auth.headers_to_sign(request)) != ";".join(signed.signed_headers):
        return None
    return auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
