"""Key pairs and their public JWKs; ``kid`` is the RFC 7638 thumbprint."""

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# RFC 7638 section 3.2: only the required members, in lexicographic order.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_private_key(algorithm: str) -> PrivateKey:
    """A new key for ``algorithm`` (RS256: RSA 2048; ES256: P-256)."""
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported signing algorithm {algorithm!r}")


def public_jwk_members(private_key: PrivateKey) -> dict[str, Any]:
    """The public key's JWK members, without ``kid``, ``alg`` or ``use``."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        members: dict[str, Any] = json.loads(
            ECAlgorithm.to_jwk(private_key.public_key())
        )
    else:
        members = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {k: v for k, v in members.items() if k in ("kty", "n", "e", "crv", "x", "y")}


def thumbprint(members: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 JWK thumbprint, base64url without padding."""
    required = _THUMBPRINT_MEMBERS[members["kty"]]
    canonical = json.dumps(
        {name: members[name] for name in required}, separators=(",", ":")
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def private_key_pem(private_key: PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    loaded: PrivateKeyTypes = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("stored signing key is neither RSA nor EC")
    return loaded


@dataclass(frozen=True)
class SigningKey:
    """A key as the store knows it: schedule, public JWK, and private key."""

    kid: str
    algorithm: str
    generation: int
    public_jwk: dict[str, Any]
    activates_at: float
    created_at: float
    private_key: PrivateKey = field(repr=False, compare=False)

    @property
    def published_jwk(self) -> dict[str, Any]:
        return {**self.public_jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}
