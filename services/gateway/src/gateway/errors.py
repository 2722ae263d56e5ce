"""The gateway's own refusals, each with its status, mapped to HTTP in one place.

:func:`send_problem` is that place: every error the pipeline raises becomes an
RFC 9457 problem+json answer with the request id, plus the headers the error
carries (``WWW-Authenticate``, ``Retry-After``).
"""

import orjson
from starlette.types import Send

from servicekit.problems import PROBLEM_MEDIA_TYPE, problem_body

_PROBLEM_CONTENT_TYPE = (b"content-type", PROBLEM_MEDIA_TYPE.encode())


class GatewayError(Exception):
    """A request the gateway answers itself, with ``status`` and ``detail``."""

    status = 500

    def __init__(
        self, detail: str, *, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or []


class BadRequest(GatewayError):
    """The request cannot be forwarded as it is (RFC 9110 section 15.5.1)."""

    status = 400


class Unauthorized(GatewayError):
    """No acceptable credentials (RFC 6750 section 3.1, ``invalid_token``)."""

    status = 401


class Forbidden(GatewayError):
    """Valid credentials without the scope the route needs (``insufficient_scope``)."""

    status = 403


class PayloadTooLarge(GatewayError):
    """The request body is larger than the route allows."""

    status = 413


class HeadersTooLarge(GatewayError):
    """The request's header fields are larger than the gateway accepts."""

    status = 431


class BadGateway(GatewayError):
    """The upstream could not be reached or answered with a broken response."""

    status = 502


class ServiceUnavailable(GatewayError):
    """The gateway will not call the upstream now (breaker open, keys missing)."""

    status = 503


class GatewayTimeout(GatewayError):
    """The upstream did not answer within the route's timeouts."""

    status = 504


async def send_problem(send: Send, error: GatewayError) -> None:
    """Answer with ``error`` as a problem+json document."""
    body = orjson.dumps(problem_body(error.status, error.detail))
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                _PROBLEM_CONTENT_TYPE,
                (b"content-length", str(len(body)).encode()),
                *error.headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
