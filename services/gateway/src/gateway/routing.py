"""The route table: which upstream serves a request path.

Routes come from a YAML file. A file that is not valid stops start-up with a
message naming the route and the field, as every other bad setting does.
"""

import ssl
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.auth import AuthPolicy
from gateway.circuit import CircuitBreakerPolicy
from gateway.rate_limit import RateLimitPolicy
from gateway.retries import RetryPolicy, Timeouts
from servicekit.config import ConfigurationError

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class Upstream(BaseModel):
    """A service the gateway forwards to, over a pool of kept-alive connections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    # Below the upstream's own keep-alive timeout (servicekit's uvicorn keeps
    # 15 s), so that the gateway, not the upstream, closes an idle connection:
    # a request sent on a connection the upstream is closing is lost.
    idle_timeout_seconds: float = Field(4.0, gt=0)
    max_connections: int = Field(0, ge=0, description="0: no limit.")
    circuit_breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()
    # The CA certificates (PEM) that sign an https:// upstream's certificate,
    # such as a cluster's private CA; they replace the system's trust store
    # for this upstream.
    ca_file: FilePath | None = None
    # The gateway's own certificate (chain) and key, in PEM, for an upstream
    # that asks for one (mutual TLS).
    client_certificate_file: FilePath | None = None
    client_key_file: FilePath | None = None

    @field_validator("ca_file", "client_certificate_file", "client_key_file")
    @classmethod
    def _https_only(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        url = info.data.get("url")
        if value is not None and url is not None and url.scheme != "https":
            raise ValueError("applies only to an https:// upstream")
        return value

    @model_validator(mode="after")
    def _tls_files_usable(self) -> "Upstream":
        if (self.client_certificate_file is None) != (self.client_key_file is None):
            raise ValueError("client_certificate_file and client_key_file go together")
        if self.tls_files:
            # Loaded once here, so that a bad file stops start-up rather than
            # failing every call.
            self.tls_context()
        return self

    @property
    def tls_files(self) -> tuple[Path, ...]:
        """The TLS files this upstream names; none: the system's trust store."""
        files = (self.ca_file, self.client_certificate_file, self.client_key_file)
        return tuple(path for path in files if path is not None)

    def tls_context(self) -> ssl.SSLContext:
        """How to verify this https:// upstream and prove the gateway to it.

        Raises ValueError, naming the field, when a file does not load.
        """
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None
            )
        except ssl.SSLError as exc:
            raise ValueError(
                f"ca_file: {str(self.ca_file)!r} holds no CA certificate in PEM ({exc})"
            ) from exc
        if self.client_certificate_file is not None:
            try:
                context.load_cert_chain(
                    str(self.client_certificate_file), str(self.client_key_file)
                )
            except ssl.SSLError as exc:
                raise ValueError(
                    "client_certificate_file, client_key_file: not a certificate "
                    f"in PEM and its private key ({exc})"
                ) from exc
        return context


class Route(BaseModel):
    """Requests whose path starts with ``prefix`` go to ``upstream``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$")]
    upstream: str
    strip_prefix: bool = False
    auth: AuthPolicy = AuthPolicy()
    rate_limit: str | None = None
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=0)

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_none(cls, value: object) -> object:
        # `auth: none` reads as the issue words it; it is the omitted block.
        return {} if value == "none" else value

    @property
    def path_format(self) -> str:
        """The route's label in logs and metrics."""
        return f"{self.prefix}/*"

    def matches(self, path: str) -> bool:
        """Whether ``path`` is the prefix itself or lies below it."""
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")

    def upstream_path(self, path: str) -> str:
        """The path to request upstream."""
        if not self.strip_prefix:
            return path
        return path[len(self.prefix.rstrip("/")) :] or "/"


class RouteTable(BaseModel):
    """Upstreams and the routes that lead to them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limits: dict[str, RateLimitPolicy] = {}
    upstreams: dict[str, Upstream]
    routes: list[Route]

    @model_validator(mode="after")
    def _routes_name_known_names(self) -> "RouteTable":
        for index, route in enumerate(self.routes):
            if route.upstream not in self.upstreams:
                raise ValueError(
                    f"routes[{index}] ({route.prefix}): upstream {route.upstream!r} "
                    f"is not one of {sorted(self.upstreams)}"
                )
            if (
                route.rate_limit is not None
                and route.rate_limit not in self.rate_limits
            ):
                raise ValueError(
                    f"routes[{index}] ({route.prefix}).rate_limit: policy "
                    f"{route.rate_limit!r} is not one of {sorted(self.rate_limits)}"
                )
        return self

    @property
    def audiences(self) -> frozenset[str]:
        """The audiences routes that need a token ask for."""
        return frozenset(
            route.auth.audience
            for route in self.routes
            if route.auth.required and route.auth.audience
        )

    def route_for(self, path: str) -> Route | None:
        """The route with the longest prefix that matches ``path``."""
        best: Route | None = None
        for route in self.routes:
            if route.matches(path) and (
                best is None or len(route.prefix) > len(best.prefix)
            ):
                best = route
        return best


def _describe(exc: ValidationError, document: object) -> str:
    problems = []
    for error in exc.errors():
        location = error["loc"]
        where = ".".join(str(part) for part in location)
        if (
            len(location) >= 2
            and location[0] == "routes"
            and isinstance(document, dict)
        ):
            routes = document.get("routes")
            index = location[1]
            if (
                isinstance(routes, list)
                and isinstance(index, int)
                and index < len(routes)
            ):
                prefix = (
                    routes[index].get("prefix")
                    if isinstance(routes[index], dict)
                    else None
                )
                where = f"routes[{index}] ({prefix})" + "".join(
                    f".{part}" for part in location[2:]
                )
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def load_route_table(path: Path) -> RouteTable:
    """Read and validate the route file at ``path``."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"cannot read routes file {str(path)!r}: {exc}"
        ) from exc

    try:
        return RouteTable.model_validate(document)
    except ValidationError as exc:
        raise ConfigurationError(
            f"invalid routes file {str(path)!r}: {_describe(exc, document)}"
        ) from exc
