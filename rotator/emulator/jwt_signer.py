"""RS256 access-token JWTs shaped like the ones JFrog Access issues, and the root certificate.

Claims as decoded from a real token in the JFrog Vault plugin's ``test_utils.go``
(https://github.com/jfrog/artifactory-secrets-plugin); https://jfrog.com/help/r/jfrog-rest-apis/get-root-certificate
(``GET /access/api/v1/cert/root`` returns the base64 DER certificate used to verify signatures).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    """Unpadded base64url, as used for JWT segments."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jackson_json(value: object) -> str:
    """Compact JSON with ``/`` written as ``\\/``, the way Access's Java serializer writes claims.

    Replacing after ``json.dumps`` is safe: a ``/`` can only occur inside a string literal, and
    ``\\/`` is a valid JSON escape for it.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def generate_signing_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key (~50 ms); pass one to several emulators to save that time in tests."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwtSigner:
    """Holds one RSA key (generated per instance unless given) and signs access tokens with it."""

    def __init__(self, issuer: str, key: rsa.RSAPrivateKey | None = None) -> None:
        self.issuer = issuer
        self._key = key or generate_signing_key()
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = b64url(hashlib.sha256(public_der).digest())
        self._header_segment = b64url(
            jackson_json({"ver": "2", "typ": "JWT", "alg": "RS256", "kid": self.kid}).encode()
        )
        self.certificate = self._self_signed_certificate()

    def _self_signed_certificate(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    def root_certificate_b64(self) -> str:
        """Body of ``GET /access/api/v1/cert/root``: standard base64 of the DER certificate."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return base64.b64encode(der).decode("ascii")

    def sign(self, claims: list[tuple[str, object]]) -> tuple[str, str]:
        """Sign ``claims`` (ordered, without ``jti``) with a fresh UUID4 ``jti``; return ``(jwt, jti)``."""
        jti = str(uuid.uuid4())
        segment = b64url(payload_json([*claims, ("jti", jti)]))
        signing_input = f"{self._header_segment}.{segment}".encode("ascii")
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{self._header_segment}.{segment}.{b64url(signature)}", jti

    def verify(self, token: str) -> dict | None:
        """The claims of ``token`` if this signer's key signed it, else ``None`` (no time checks)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
            self._key.public_key().verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"),
                                          padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (InvalidSignature, ValueError, UnicodeError):
            return None
        return claims if isinstance(claims, dict) else None


def payload_json(claims: list[tuple[str, object]]) -> bytes:
    """The payload bytes, chosen so their base64url form contains neither ``-`` nor ``_``.

    The JFrog CLI decodes the payload with Go's ``base64.RawStdEncoding``, so a
    base64url-only character breaks it. In base64 of bytes below 0x80, only ``>``, ``?``, ``~`` and
    DEL can yield those characters (as the third byte of a 3-byte group). Plain compact UTF-8 JSON,
    exactly what Access writes, is used whenever it is already clean, which is nearly always.
    Otherwise the offending characters, and all non-ASCII ones, are written as ``\\uXXXX`` JSON
    escapes: the decoded claims are identical and the encoding is then clean by construction.
    A new ``jti`` could never fix it (UUIDs are fixed-length hex and do not shift alignment).
    """
    text = "{" + ",".join(jackson_json(k) + ":" + jackson_json(v) for k, v in claims) + "}"
    raw = text.encode("utf-8")
    if "-" not in b64url(raw) and "_" not in b64url(raw):
        return raw
    escaped = "{" + ",".join(_ascii_json(k) + ":" + _ascii_json(v) for k, v in claims) + "}"
    return escaped.encode("ascii")


def _ascii_json(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    return text.translate(_ESCAPES)


# These only occur inside string literals, where a \uXXXX escape means the same character.
_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in ">?~\x7f"}
