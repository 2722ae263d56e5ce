"""The OpenID provider's parts, built once per process and shared by the routers.

Kept on ``app.state.provider``; routers reach it through :func:`provider`.
"""

from dataclasses import dataclass, field
from typing import Annotated, cast
from urllib.parse import urlsplit

from fastapi import Depends, Request

from identity.accounts import Accounts
from identity.client_cache import ClientAuthenticationCache
from identity.keys.store import KeyStore
from identity.settings import Settings
from identity.storage.grants import GrantStore
from identity.tokens import TokenIssuer


@dataclass
class Provider:
    settings: Settings
    accounts: Accounts
    keys: KeyStore
    grants: GrantStore
    tokens: TokenIssuer
    client_cache: ClientAuthenticationCache = field(repr=False)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def url(self, path: str) -> str:
        """An absolute URL of ours: always under the configured issuer."""
        return f"{self.settings.issuer}{path}"

    @property
    def cookie_path(self) -> str:
        return urlsplit(self.settings.issuer).path or "/"

    @property
    def secure_cookies(self) -> bool:
        return self.settings.issuer.startswith("https://")


async def _provider(request: Request) -> Provider:
    return cast(Provider, request.app.state.provider)


ProviderDep = Annotated[Provider, Depends(_provider)]
