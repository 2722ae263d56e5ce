"""Client registrations as operators write them: the clients file and its secrets.

``IDENTITY_CLIENTS_FILE`` is YAML with a ``clients:`` list; each entry has the
fields of :class:`ClientRegistration` (the admin API takes the same body).
``IDENTITY_CLIENT_SECRETS_FILE`` is a YAML mapping of client_id to secret, kept
in a Kubernetes Secret rather than the ConfigMap that holds the clients file.
Both are read when the settings load, so a bad file stops start-up with a
message naming the client and the field, like any other bad setting.
"""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from identity.domain.clients import Client, check_client
from identity.errors import InvalidClientRegistration, InvalidClientsFile


class ClientRegistration(BaseModel):
    """One client as registered in the clients file or through the admin API.

    Omitted fields take defaults by type: a public client uses the
    authorization code (with PKCE) and refresh tokens and authenticates with
    ``none``; a confidential one uses client credentials and
    ``client_secret_basic``. ``scope`` and ``audience`` may be a space-separated
    string or a list; an omitted audience follows from the scopes
    (``orders:*`` -> ``orders``, ``users:*`` -> ``identity``).
    """

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_type: Literal["public", "confidential"]
    name: str | None = None
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    grant_types: list[str] | None = None
    scope: str | list[str] = ""
    audience: str | list[str] | None = None
    skip_consent: bool = False
    token_endpoint_auth_method: str | None = None

    def to_client(self) -> Client:
        """The domain client, or :class:`InvalidClientRegistration` naming the field."""
        public = self.client_type == "public"
        grant_types = self.grant_types
        if grant_types is None:
            grant_types = (
                ["authorization_code", "refresh_token"]
                if public
                else ["client_credentials"]
            )
        method = self.token_endpoint_auth_method or (
            "none" if public else "client_secret_basic"
        )
        return check_client(
            Client(
                client_id=self.client_id,
                client_type=self.client_type,
                name=self.name or self.client_id,
                redirect_uris=tuple(self.redirect_uris),
                post_logout_redirect_uris=tuple(self.post_logout_redirect_uris),
                grant_types=frozenset(grant_types),
                scope=frozenset(_tokens(self.scope)),
                audience=tuple(_tokens(self.audience or [])),
                skip_consent=self.skip_consent,
                token_endpoint_auth_method=method,
            )
        )


def _tokens(value: str | list[str]) -> list[str]:
    return value.split() if isinstance(value, str) else list(value)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidClientsFile(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # The parser's message says where; it quotes the file's text, which for
        # the secrets file could be a secret, so only the position is kept.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidClientsFile(f"{str(path)!r} is not valid YAML{where}") from None


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "entry"
    given = first.get("input")
    if isinstance(given, str | int | float | bool) and first["type"] != "missing":
        return f"{field}: {first['msg']}, got {given!r}"
    return f"{field}: {first['msg']}"


def read_clients_file(path: Path) -> list[Client]:
    """The clients ``path`` registers; :class:`InvalidClientsFile` names client and field."""
    document = _load_yaml(path)
    if document is None:
        return []
    if not isinstance(document, dict) or not isinstance(
        document.get("clients", []), list
    ):
        raise InvalidClientsFile("expected a mapping with a 'clients:' list")

    clients: dict[str, Client] = {}
    for index, entry in enumerate(document.get("clients") or []):
        where = f"clients[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("client_id"), str):
            where += f" (client_id {entry['client_id']!r})"
        try:
            client = ClientRegistration.model_validate(entry).to_client()
        except ValidationError as exc:
            raise InvalidClientsFile(f"{where}: {_describe(exc)}") from None
        except InvalidClientRegistration as exc:
            raise InvalidClientsFile(f"{where}: {exc}") from None
        if client.client_id in clients:
            raise InvalidClientsFile(f"{where}: client_id registered twice")
        clients[client.client_id] = client
    return list(clients.values())


def read_client_secrets_file(path: Path, clients: list[Client]) -> dict[str, str]:
    """client_id -> secret from ``path``; every id must be a confidential client.

    Messages never quote a secret.
    """
    document = _load_yaml(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidClientsFile("expected a mapping of client_id to secret")

    confidential = {c.client_id for c in clients if c.is_confidential}
    secrets: dict[str, str] = {}
    for client_id, secret in document.items():
        if not isinstance(secret, str) or not secret:
            raise InvalidClientsFile(
                f"{client_id!r}: expected the secret as a non-empty string"
            )
        if client_id not in confidential:
            raise InvalidClientsFile(
                f"{client_id!r}: not a confidential client of IDENTITY_CLIENTS_FILE"
            )
        secrets[str(client_id)] = secret
    return secrets
