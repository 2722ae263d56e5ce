"""Confidential clients' secrets: generated random, stored as a keyed hash.

A secret made here carries 256 random bits, so a slow password hash would add
nothing but latency on every token request (the issue quotes Hydra's 513 req/s
with bcrypt). The stored form is HMAC-SHA256 under a key derived with HKDF
(RFC 5869) from ``IDENTITY_KEY_ENCRYPTION_KEY``: a copy of the database alone
does not let anyone test guesses, not even against the weaker secrets an
operator may put in ``IDENTITY_CLIENT_SECRETS_FILE``. Comparison is constant
time (``hmac.compare_digest``).
"""

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32  # 256 bits
# HKDF's info binds the derived key to this one use (RFC 5869 section 3.2).
_HKDF_INFO = b"identity client-secret hmac v1"


def generate_client_secret() -> str:
    """A new secret of 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


class ClientSecretHasher:
    """Keyed hashes of client secrets under a key derived from the KEK."""

    def __init__(self, key_encryption_key: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO
        ).derive(key_encryption_key)
        # Compared when a client has no secret, so both paths do the same work.
        self._dummy = self.hash(generate_client_secret())

    def hash(self, secret: str) -> str:
        """The stored form of ``secret``: 64 hex digits."""
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, stored: str | None) -> bool:
        """Whether ``secret`` hashes to ``stored``, in constant time."""
        candidate = self.hash(secret)
        expected = self._dummy if stored is None else stored
        return hmac.compare_digest(candidate, expected) and stored is not None
