"""Reading OAuth parameters and client credentials from a request.

OAuth 2.1 section 3.1 and 3.2: parameters sent without a value are treated as
absent, unknown ones are ignored, and none may be repeated (RFC 8707's
``resource`` is the one parameter that may appear more than once).
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from fastapi import Request
from starlette.datastructures import FormData, QueryParams

from identity.errors import InvalidClientAuthentication, InvalidRequest

REPEATABLE = frozenset({"resource"})


@dataclass(frozen=True)
class Parameters:
    """Single-valued parameters, plus the list of ``resource`` values."""

    values: Mapping[str, str]
    resource: list[str]
    repeated: frozenset[str]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def require(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            raise InvalidRequest(f"the {name} parameter is required")
        return value

    def reject_repeated(self, *, ignore: frozenset[str] = frozenset()) -> None:
        repeated = sorted(self.repeated - ignore)
        if repeated:
            raise InvalidRequest(f"the {repeated[0]} parameter is repeated")


def parameters_of(
    source: QueryParams | FormData | list[tuple[str, str]],
) -> Parameters:
    values: dict[str, str] = {}
    repeated: set[str] = set()
    resource: list[str] = []
    items = source if isinstance(source, list) else source.multi_items()
    for name, raw in items:
        if not isinstance(raw, str) or raw == "":
            continue
        if name in REPEATABLE:
            resource.append(raw)
        elif name in values:
            repeated.add(name)
        else:
            values[name] = raw
    return Parameters(values, resource, frozenset(repeated))


async def form_parameters(request: Request) -> Parameters:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise InvalidRequest(
            "the body must be application/x-www-form-urlencoded (RFC 6749 section 3.2)"
        )
    # The body of an OAuth request is a flat form: parse_qsl does it in a
    # fraction of the time of the general multipart machinery.
    body = await request.body()
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=100)
    except UnicodeDecodeError:
        raise InvalidRequest("the form is not UTF-8") from None
    except ValueError:
        raise InvalidRequest("the form has more than 100 fields") from None
    return parameters_of(fields)


@dataclass(frozen=True)
class ClientCredentials:
    """What the request says about its client (RFC 6749 section 2.3.1)."""

    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none


def client_credentials(request: Request, params: Parameters) -> ClientCredentials:
    """Basic or body credentials, or a bare ``client_id`` for a public client."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClientAuthentication("use HTTP Basic client authentication")
        if params.get("client_secret") is not None:
            raise InvalidRequest("use one client authentication method, not two")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClientAuthentication(
                "the Basic credentials are not base64"
            ) from None
        basic_id, colon, basic_secret = decoded.partition(":")
        if not colon:
            raise InvalidClientAuthentication("the Basic credentials have no secret")
        # RFC 6749 section 2.3.1: both are form-urlencoded before base64.
        return ClientCredentials(
            unquote(basic_id.replace("+", " ")),
            unquote(basic_secret.replace("+", " ")),
            "client_secret_basic",
        )
    client_id = params.get("client_id")
    if client_id is None:
        raise InvalidClientAuthentication("the client is not identified")
    secret = params.get("client_secret")
    return ClientCredentials(
        client_id, secret, "client_secret_post" if secret else "none"
    )
