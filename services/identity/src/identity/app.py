"""Builds the identity application: accounts, keys, grants, and the routers."""

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware import Middleware

from identity import __version__
from identity.accounts import Accounts
from identity.api import admin, authorize, discovery, oauth
from identity.api.cors import CorsMiddleware
from identity.api.errors import install_oauth_error_handler
from identity.client_cache import ClientAuthenticationCache
from identity.keys.encryption import KeyEncryption, development_key_file
from identity.keys.schedule import RotationPolicy
from identity.keys.store import KeyStore
from identity.provider import Provider
from identity.settings import Settings
from identity.storage.grants import GrantStore
from identity.storage.retention import Retention
from identity.tokens import LocalAccessTokens, TokenIssuer
from servicekit.application import add_routes, service_app
from servicekit.database import create_engine, ping
from servicekit.purging import PeriodicPurge

logger = logging.getLogger(__name__)

# The admin API's audience (platform contract).
ADMIN_AUDIENCE = "identity"


def rotation_policy(settings: Settings) -> RotationPolicy:
    return RotationPolicy(
        rotation_period=settings.signing_key_rotation_seconds,
        jwks_max_age=settings.jwks_max_age_seconds,
        # A replica notices a key another one created within this long.
        refresh_interval=max(1.0, min(60.0, settings.jwks_max_age_seconds / 2)),
        longest_token_lifetime=max(
            settings.access_token_lifetime_seconds, settings.id_token_lifetime_seconds
        ),
    )


def key_store(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> KeyStore:
    if settings.key_encryption_key is None:  # the settings' validator provides one
        raise ValueError("IDENTITY_KEY_ENCRYPTION_KEY is required")
    encryption = KeyEncryption(
        base64.b64decode(settings.key_encryption_key.get_secret_value())
    )
    return KeyStore(
        sessions, encryption, rotation_policy(settings), settings.signing_algorithm
    )


def _warn_about_development_key(settings: Settings) -> None:
    path = development_key_file(settings.database_url)
    if path is None or not path.exists() or settings.key_encryption_key is None:
        return
    if path.read_text().strip() == settings.key_encryption_key.get_secret_value():
        logger.warning(
            "development key-encryption key in use",
            extra={
                "path": str(path),
                "hint": "set IDENTITY_KEY_ENCRYPTION_KEY for any real deployment",
            },
        )


def build_provider(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Provider:
    """Every part of the provider, wired; nothing started yet."""
    keys = key_store(settings, sessions)
    grants = GrantStore(
        sessions, reuse_grace=settings.refresh_token_reuse_grace_seconds
    )
    accounts = Accounts(sessions, settings, on_user_disabled=grants.revoke_user)
    tokens = TokenIssuer(
        keys,
        issuer=settings.issuer,
        access_token_lifetime=settings.access_token_lifetime_seconds,
        id_token_lifetime=settings.id_token_lifetime_seconds,
    )
    cache = ClientAuthenticationCache(settings.client_authentication_cache_seconds)
    accounts.on_client_changed = cache.forget
    return Provider(settings, accounts, keys, grants, tokens, cache)


def create_app(settings: Settings) -> FastAPI:
    """The identity ASGI application for ``settings``."""
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    provider = build_provider(settings, sessions)
    retention = Retention(sessions, provider.accounts.throttle)
    purge = PeriodicPurge(retention.purge, interval=settings.purge_interval_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.provider = provider
        app.state.purge = purge
        app.state.accounts = provider.accounts
        app.state.access_tokens = LocalAccessTokens(provider.tokens, ADMIN_AUDIENCE)
        _warn_about_development_key(settings)
        await provider.keys.maintain()
        await provider.accounts.start()
        provider.keys.start()
        purge.start()
        try:
            yield
        finally:
            await purge.stop()
            await provider.keys.stop()
            await engine.dispose()

    async def database_answers() -> None:
        await ping(engine)

    app = service_app(
        title="identity",
        version=__version__,
        description="OAuth 2.1 and OpenID Connect provider of the platform.",
        lifespan=lifespan,
        readiness={"database": database_answers},
        inner_middleware=[Middleware(CorsMiddleware, origins=settings.cors_origins)],
    )
    install_oauth_error_handler(app)
    # First: FastAPI tries routes in order, and the token endpoint is the one
    # that is called most (client credentials in bursts).
    add_routes(
        app,
        oauth.router,
        discovery.router,
        authorize.router,
        admin.users,
        admin.clients,
    )
    return app
