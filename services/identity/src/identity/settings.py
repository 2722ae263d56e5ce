"""identity's configuration, read from ``IDENTITY_*`` variables at start-up."""

from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

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
