"""RFC 9457 problem details for every error a service answers.

One place maps exceptions to HTTP: handlers for the framework's own errors
(unknown route, wrong method, invalid input) and for :class:`Problem`, which
services raise for their own errors. An unexpected exception becomes a 500
problem that names the request id and nothing of the internals.
"""

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from servicekit import context

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(Response):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        import orjson

        return orjson.dumps(content)


class Problem(Exception):
    """An error a service answers deliberately, rendered as problem+json.

    ``type_`` is a URI reference naming the kind of problem (``about:blank``
    when the status says it all); ``extensions`` become extra members.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_body(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The members of a problem document, with the current request id."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    body["request_id"] = context.request_id.get()
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> ProblemResponse:
    """A problem+json response for ``status``."""
    return ProblemResponse(
        problem_body(status, detail, **members), status_code=status, headers=headers
    )


def describe_validation_errors(errors: Iterable[Any]) -> list[dict[str, str]]:
    """Field paths and reasons of pydantic errors, readable by a client."""
    described = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        # The first element says where the value came from (body, query, ...).
        field = ".".join(location[1:]) if len(location) > 1 else ".".join(location)
        described.append(
            {
                "field": field,
                "in": location[0] if location else "",
                "reason": error["msg"],
            }
        )
    return described


async def _handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
    return problem_response(
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 404:
        detail = f"No resource at {request.url.path!r}."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}."
    else:
        detail = str(exc.detail)
    return problem_response(
        exc.status_code, detail, instance=request.url.path, headers=exc.headers
    )


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = describe_validation_errors(exc.errors())
    summary = "; ".join(f"{e['field'] or e['in']}: {e['reason']}" for e in errors)
    return problem_response(
        422,
        f"The request is not valid: {summary}.",
        title="Invalid request",
        instance=request.url.path,
        errors=errors,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the application answers a problem+json document.

    Unexpected exceptions are answered by :class:`RequestContextMiddleware`,
    which still knows the request id.
    """
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
