"""orders' errors as HTTP: the one place where a domain error gets a status.

Every answer is RFC 9457 problem+json; input errors list the offending
``field``, where it was (``body``, ``query``, ``header``) and the ``reason``,
the same shape servicekit gives schema validation errors.
"""

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from orders.domain.errors import (
    ConflictingState,
    IdempotencyKeyReused,
    InvalidHeader,
    InvalidInput,
    NeedsAdministrator,
    OrderNotFound,
    OrdersError,
    PreconditionFailed,
    PreconditionRequired,
)
from servicekit.bearer import insufficient_scope
from servicekit.problems import problem_response

REALM = "orders"
PROBLEM_TYPES = "tag:platform.local,2026:orders/"


def _status(exc: OrdersError) -> int:
    if isinstance(exc, InvalidHeader):
        return 400
    if isinstance(exc, InvalidInput):
        return 400 if exc.where == "query" else 422
    if isinstance(exc, OrderNotFound):
        return 404
    if isinstance(exc, ConflictingState):
        return 409
    if isinstance(exc, PreconditionFailed):
        return 412
    if isinstance(exc, PreconditionRequired):
        return 428
    if isinstance(exc, IdempotencyKeyReused):
        return 422
    return 400


def _slug(exc: OrdersError) -> str:
    name = type(exc).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


async def _handle_orders_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OrdersError):
        raise exc
    if isinstance(exc, NeedsAdministrator):
        problem = insufficient_scope(exc.scope, realm=REALM)
        return problem_response(
            403,
            exc.detail,
            headers=problem.headers,
            instance=request.url.path,
            **problem.extensions,
        )

    members: dict[str, Any] = {}
    headers: dict[str, str] = {}
    detail = exc.detail
    if isinstance(exc, InvalidInput):
        members["errors"] = [
            {"field": exc.field, "in": exc.where, "reason": exc.reason}
        ]
        detail = f"The request is not valid: {exc.field}: {exc.reason}."
    if isinstance(exc, PreconditionFailed):
        headers["ETag"] = exc.current_etag
    return problem_response(
        _status(exc),
        detail,
        headers=headers,
        type_=PROBLEM_TYPES + _slug(exc),
        instance=request.url.path,
        **members,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every :class:`OrdersError` as its problem."""
    app.add_exception_handler(OrdersError, _handle_orders_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``statuses``, each a problem+json."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDocument"}
                }
            },
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Malformed request: a bad header, cursor, or a token in the query string "
    "(RFC 6750 invalid_request).",
    401: "No valid access token (RFC 6750 invalid_token); see WWW-Authenticate.",
    403: "The token lacks the scope needed (RFC 6750 insufficient_scope).",
    404: "No such order, or not one of the caller's.",
    409: "The order's status does not allow this change.",
    412: "If-Match names a version that is no longer current; ETag has the current.",
    413: "The request body is larger than the limit.",
    422: "The body breaks a rule: each failing field and why.",
    428: "The change needs an If-Match header with the order's ETag.",
    503: "The issuer's keys are not available yet; retry after Retry-After.",
}
