"""The gateway's configuration, read from ``GATEWAY_*`` variables at start-up."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from gateway.auth import DEFAULT_CACHE_SIZE
from gateway.buckets import DEFAULT_MAX_KEYS
from gateway.cors import validate_origins
from gateway.routing import load_route_table
from servicekit.application import ServiceSettings

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent / "routes.yaml"


class Settings(ServiceSettings):
    """Everything the gateway needs to know before it serves a request."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = Field(8080, ge=1, le=65535, description="Port to listen on.")
    routes_file: Path = Field(
        DEFAULT_ROUTES_FILE, description="YAML file with the upstreams and routes."
    )
    issuer: str | None = Field(
        None,
        validate_default=True,
        description="The issuer tokens must carry; required when a route needs auth.",
    )
    jwks_url: str = Field(
        "http://127.0.0.1:8000/.well-known/jwks.json",
        description="identity's JWKS, by its internal URL.",
    )
    jwks_ttl_seconds: float = Field(
        300, gt=0, description="Age after which the JWKS is refreshed."
    )
    jwks_refetch_cooldown_seconds: float = Field(
        10, ge=0, description="Least time between refetches for unknown kids."
    )
    token_cache_size: int = Field(
        DEFAULT_CACHE_SIZE, ge=0, description="Verified tokens remembered."
    )
    cors_origins: list[str] = Field(
        default=[], description="Origins whose pages may call the API (JSON list)."
    )
    redis_url: str | None = Field(
        None, description="Redis for rate limits shared by every replica."
    )
    rate_limit_on_redis_failure: Literal["open", "closed"] = Field(
        "open", description="open: fall back to local buckets; closed: refuse (503)."
    )
    rate_limit_redis_timeout_seconds: float = Field(
        0.25,
        gt=0,
        le=5,
        description="Longest wait for Redis before the failure policy.",
    )
    rate_limit_max_keys: int = Field(
        DEFAULT_MAX_KEYS, ge=1, description="Buckets kept in memory per policy."
    )

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_url_is_unset(cls, value: object) -> object:
        # An optional Secret key that is absent renders as an empty variable.
        return None if value == "" else value

    @field_validator("routes_file")
    @classmethod
    def _routes_file_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"expected a readable YAML file, {str(value)!r} is none")
        load_route_table(value)
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_when_routes_need_tokens(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        routes_file = info.data.get("routes_file")
        if value or routes_file is None:
            return value
        table = load_route_table(routes_file)
        if table.audiences:
            raise ValueError(
                "expected the issuer URL tokens carry (e.g. "
                "'http://localhost:8080/auth'): routes of "
                f"{str(routes_file)!r} require auth"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        return validate_origins(value)
