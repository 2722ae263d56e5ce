"""The command line every service has: ``serve`` (the default), ``migrate``, and
the one-off maintenance commands a service adds (``purge``, ``rotate-keys``)."""

import argparse
import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from starlette.types import ASGIApp

from servicekit.application import ServiceSettings
from servicekit.config import (
    ConfigurationError,
    exit_on_configuration_error,
    load_settings,
)
from servicekit.logs import configure_logging
from servicekit.server import serve
from servicekit.telemetry import configure_telemetry

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(
    service: str,
    settings_class: type[SettingsT],
    create_app: Callable[[SettingsT], ASGIApp],
    *,
    migrate: Callable[[SettingsT], None] | None = None,
    maintenance: Mapping[str, Callable[[SettingsT], None]] | None = None,
    argv: list[str] | None = None,
    proxy_headers: bool = True,
) -> None:
    """Parse the command line, load settings (or exit explaining why), and run.

    ``maintenance`` names one-off commands, each run with the settings and the
    service's logging instead of serving.
    """
    extra = dict(maintenance or {})
    commands = ["serve", *(["migrate"] if migrate else []), *extra]
    parser = argparse.ArgumentParser(prog=service)
    parser.add_argument("command", nargs="?", default="serve", choices=commands)
    args = parser.parse_args(argv)

    settings = load_settings(settings_class, service)
    configure_logging(service, settings.log_level)
    logger = logging.getLogger(service)

    if args.command == "migrate" and migrate is not None:
        migrate(settings)
        logger.info("database migrated")
        return
    if args.command in extra:
        extra[args.command](settings)
        return

    try:
        # Before the app, so that its engines and clients are instrumented.
        telemetry = configure_telemetry(service)
    except ConfigurationError as exc:
        exit_on_configuration_error(service, [str(exc)])
    serve(
        telemetry.instrument_app(create_app(settings)),
        host=settings.host,
        port=settings.port,
        trusted_proxies=settings.trusted_proxies,
        graceful_shutdown_seconds=settings.graceful_shutdown_seconds,
        proxy_headers=proxy_headers,
        metrics_port=settings.metrics_port,
        after_shutdown=[telemetry.shutdown],
    )
