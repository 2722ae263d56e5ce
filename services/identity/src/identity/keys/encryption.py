"""The key-encryption key (KEK) and AES-GCM encryption of private keys at rest.

The KEK comes from ``IDENTITY_KEY_ENCRYPTION_KEY`` (a Secret in Kubernetes and
compose). Only for an embedded SQLite database (``make run``) may it be left
out: a development KEK is then generated once into a file beside the database,
readable by its owner only, and identity warns at every start that it uses it.
A PostgreSQL deployment without the variable refuses to start, so production
can never silently run on a key lying next to its data.
"""

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import make_url

from identity.errors import KeyDecryptionFailed

_NONCE_BYTES = 12
_FORMAT = b"v1"


def development_key_file(database_url: str) -> Path | None:
    """Where the development KEK lives for a SQLite URL; None for other databases."""
    try:
        url = make_url(database_url)
    except Exception:
        return None
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    if url.database == ":memory:":
        return None
    return Path(url.database).with_name(Path(url.database).name + ".kek")


def development_key_encryption_key(database_url: str) -> str | None:
    """The development KEK for a SQLite database, created on first use."""
    path = development_key_file(database_url)
    if path is None:
        return None
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    # O_EXCL: two processes starting together keep the first one's key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


class KeyEncryption:
    """AES-256-GCM with the KEK; the key id is bound as associated data."""

    def __init__(self, key_encryption_key: bytes) -> None:
        self._aead = AESGCM(key_encryption_key)

    @classmethod
    def from_base64(cls, value: str) -> "KeyEncryption":
        return cls(base64.b64decode(value))

    def encrypt(self, plaintext: bytes, *, kid: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, ciphertext: bytes, *, kid: str) -> bytes:
        if not ciphertext.startswith(_FORMAT):
            raise KeyDecryptionFailed(kid)
        body = ciphertext[len(_FORMAT) :]
        nonce, sealed = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, kid.encode())
        except InvalidTag as exc:
            raise KeyDecryptionFailed(kid) from exc
