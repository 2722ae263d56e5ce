"""Request and response bodies of the admin API."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from identity.domain.clients import Client
from identity.domain.users import User
from identity.registrations import ClientRegistration

MAX_PAGE_SIZE = 100


class NewUser(BaseModel):
    """A user to create; the password is hashed and never shown again."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(repr=False)
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class UserPatch(BaseModel):
    """The fields to change; absent fields stay, ``null`` clears a name."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    password: str | None = Field(None, repr=False)
    email_verified: bool | None = None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class UserOut(BaseModel):
    """A user as the admin API shows it (never the password hash)."""

    id: str
    email: str
    email_verified: bool
    name: str | None
    given_name: str | None
    family_name: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls(**user.__dict__)


class UserPage(BaseModel):
    """One page of users; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[UserOut]
    next_cursor: str | None


class ClientPatch(BaseModel):
    """The registration fields to change; absent fields stay."""

    model_config = ConfigDict(extra="forbid")

    client_type: Literal["public", "confidential"] | None = None
    name: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    grant_types: list[str] | None = None
    scope: str | list[str] | None = None
    audience: str | list[str] | None = None
    skip_consent: bool | None = None
    token_endpoint_auth_method: str | None = None

    def applied_to(self, client: Client) -> ClientRegistration:
        """The whole registration: ``client`` with this patch's fields."""
        current = ClientRegistration(
            client_id=client.client_id,
            client_type=client.client_type,
            name=client.name,
            redirect_uris=list(client.redirect_uris),
            post_logout_redirect_uris=list(client.post_logout_redirect_uris),
            grant_types=sorted(client.grant_types),
            scope=sorted(client.scope),
            audience=list(client.audience),
            skip_consent=client.skip_consent,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
        )
        changes = self.model_dump(exclude_unset=True)
        if "client_type" in changes and "token_endpoint_auth_method" not in changes:
            # The method follows the type unless given: none <-> secret_basic.
            changes["token_endpoint_auth_method"] = None
        return current.model_copy(update=changes)


class ClientOut(BaseModel):
    """A client as the admin API shows it (never its secret's hash)."""

    client_id: str
    client_type: str
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scope: str
    audience: list[str]
    skip_consent: bool
    token_endpoint_auth_method: str

    @classmethod
    def of(cls, client: Client) -> "ClientOut":
        return cls(
            client_id=client.client_id,
            client_type=client.client_type,
            name=client.name,
            redirect_uris=list(client.redirect_uris),
            post_logout_redirect_uris=list(client.post_logout_redirect_uris),
            grant_types=sorted(client.grant_types),
            scope=" ".join(sorted(client.scope)),
            audience=list(client.audience),
            skip_consent=client.skip_consent,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
        )


class ClientWithSecret(ClientOut):
    """A client just created: the only answer that carries its secret."""

    client_secret: str | None = None


class ClientPage(BaseModel):
    """One page of clients; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ClientOut]
    next_cursor: str | None


class ClientSecretOut(BaseModel):
    """A confidential client's new secret, shown this once."""

    client_id: str
    client_secret: str
