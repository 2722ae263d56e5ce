"""identity's configuration, read from ``IDENTITY_*`` variables at start-up."""

import base64
import binascii
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from identity.registrations import read_client_secrets_file, read_clients_file
from servicekit.application import ServiceSettings
from servicekit.database import async_database_url


class Settings(ServiceSettings):
    """Everything identity needs to know before it serves a request."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    issuer: str = Field(
        "http://localhost:8080/auth",
        description="The public issuer URL; never derived from request headers.",
    )
    database_url: str = Field(
        "sqlite:///.data/identity.db",
        description="postgresql://user:password@host/db or sqlite:///path",
    )

    # Protocol settings (keys, tokens, sessions); see the README for each.
    key_encryption_key: SecretStr | None = Field(
        None,
        validate_default=True,
        description="Base64 of 32 random bytes; encrypts the signing keys' "
        "private parts. Required with PostgreSQL; with SQLite a development "
        "key is generated next to the database file when it is not given.",
    )
    signing_algorithm: Literal["RS256", "ES256"] = Field(
        "RS256", description="Algorithm of new signing keys."
    )
    signing_key_rotation_seconds: int = Field(
        7 * 24 * 3600, ge=10, description="How long one key signs before the next."
    )
    jwks_max_age_seconds: int = Field(
        300, ge=1, le=86400, description="Cache-Control max-age of the JWKS."
    )
    access_token_lifetime_seconds: int = Field(600, ge=10, le=86400)
    id_token_lifetime_seconds: int = Field(600, ge=10, le=86400)
    authorization_code_lifetime_seconds: int = Field(60, ge=5, le=600)
    refresh_token_lifetime_seconds: int = Field(30 * 24 * 3600, ge=60)
    session_lifetime_seconds: int = Field(8 * 3600, ge=60)
    client_authentication_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How long a confidential client's successful authentication "
        "is remembered in memory (0: never); a rotated secret or a disabled "
        "client keeps working this long.",
    )
    refresh_token_reuse_grace_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="A rotated refresh token replayed within this many seconds "
        "is refused without revoking its family (concurrent tabs, retries).",
    )
    purge_interval_seconds: float = Field(
        3600,
        ge=0,
        description="How often expired sessions, codes, tokens, throttling "
        "counters and finished grants are deleted (0: never).",
    )
    cors_origins: list[str] = Field(
        default=[],
        description="Origins allowed by CORS on token, userinfo, revocation, "
        "introspection, JWKS and discovery; never on the authorization endpoint.",
    )

    # Accounts settings (users, clients, throttling); see the README for each.
    clients_file: Path | None = Field(
        None, description="YAML file of registered clients, upserted at start-up."
    )
    client_secrets_file: Path | None = Field(
        None, description="YAML mapping client_id -> secret, for confidential clients."
    )
    seed_demo: bool = Field(
        False, description="Create the demo user and clients and print them."
    )
    password_time_cost: int = Field(3, ge=1, le=20, description="Argon2id passes.")
    password_memory_kib: int = Field(
        65536, ge=64, le=4 * 1024 * 1024, description="Argon2id memory in KiB."
    )
    password_parallelism: int = Field(4, ge=1, le=16, description="Argon2id lanes.")
    login_failures_per_account: int = Field(5, ge=1)
    login_failures_per_address: int = Field(50, ge=1)
    client_failures_per_client: int = Field(10, ge=1)
    client_failures_per_address: int = Field(50, ge=1)
    throttle_window_seconds: int = Field(
        900,
        ge=1,
        description="Failures count within this window; a throttled "
        "key waits this long after the failure that reached its limit.",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_plain_url(cls, value: str) -> str:
        # OpenID Connect Discovery 1.0 section 3: https (http only for local
        # development), no query and no fragment; compared as exact strings.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("an issuer has no query and no fragment")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        async_database_url(value)
        return value

    @field_validator("key_encryption_key")
    @classmethod
    def _key_encryption_key(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None:
            from identity.keys.encryption import development_key_encryption_key

            if "database_url" not in info.data:
                return None  # the database URL's own error says enough
            database_url = info.data["database_url"]
            generated = development_key_encryption_key(database_url)
            if generated is None:
                raise ValueError(
                    "required with PostgreSQL: base64 of 32 random bytes "
                    "(openssl rand -base64 32)"
                )
            return SecretStr(generated)
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("expected base64 of 32 random bytes") from None
        if len(raw) != 32:
            raise ValueError(f"expected 32 bytes once decoded, got {len(raw)}")
        return value

    @field_validator("clients_file")
    @classmethod
    def _clients_file_is_valid(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_clients_file(value)
        return value

    @field_validator("client_secrets_file")
    @classmethod
    def _client_secrets_match_clients(
        cls, value: Path | None, info: ValidationInfo
    ) -> Path | None:
        if value is None:
            return value
        clients_file = info.data.get("clients_file")
        clients = read_clients_file(clients_file) if clients_file else []
        read_client_secrets_file(value, clients)
        return value
