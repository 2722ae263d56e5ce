"""orders' configuration, read from ``ORDERS_*`` variables at start-up."""

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from servicekit.application import ServiceSettings
from servicekit.database import async_database_url


class Settings(ServiceSettings):
    """Everything orders needs to know before it serves a request."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    port: int = Field(8001, ge=1, le=65535, description="Port to listen on.")
    database_url: str = Field(
        "sqlite:///.data/orders.db",
        description="postgresql://user:password@host/db or sqlite:///path",
    )
    issuer: str = Field(
        "http://localhost:8080/auth", description="The issuer tokens must carry."
    )
    jwks_url: str = Field(
        "http://127.0.0.1:8000/.well-known/jwks.json",
        description="identity's JWKS, on its internal address.",
    )
    audience: str = Field("orders", description="This API's identifier in `aud`.")
    token_leeway_seconds: float = Field(
        30, ge=0, le=300, description="Clock skew tolerated on exp, nbf and iat."
    )
    token_cache_size: int = Field(
        10_000,
        ge=0,
        description="Verified tokens remembered until they expire (0: none).",
    )
    idempotency_key_ttl_seconds: int = Field(
        86_400,
        ge=1,
        description="How long an Idempotency-Key replays its first response; "
        "after that the key is new again.",
    )
    purge_interval_seconds: float = Field(
        3600,
        ge=0,
        description="How often idempotency keys past their retention are "
        "deleted (0: never).",
    )
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest request body accepted (else 413)."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        async_database_url(value)
        return value
