"""The gateway's configuration, read from ``GATEWAY_*`` variables at start-up."""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

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

    @field_validator("routes_file")
    @classmethod
    def _routes_file_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"expected a readable YAML file, {str(value)!r} is none")
        load_route_table(value)
        return value
