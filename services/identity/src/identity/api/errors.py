"""Where identity's errors become HTTP responses, for every endpoint kind.

- token, revocation, introspection: RFC 6749 section 5.2 JSON bodies;
- userinfo: RFC 6750 section 3 (``WWW-Authenticate: Bearer``);
- the authorization endpoint renders its own: a redirect to the client with
  ``error``, ``state`` and ``iss``, or an error page when the client or the
  redirect URI cannot be trusted (:mod:`identity.api.authorize`).
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from identity.errors import (
    InsufficientScope,
    InvalidAccessToken,
    InvalidClientAuthentication,
    OAuthError,
    TemporarilyUnavailable,
)
from servicekit.tokens import www_authenticate

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClientAuthentication):
        headers["WWW-Authenticate"] = 'Basic realm="identity"'
    if isinstance(exc, TemporarilyUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, InvalidAccessToken | InsufficientScope):
        headers["WWW-Authenticate"] = www_authenticate(
            error=exc.error, description=exc.description
        )
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


async def _handle_oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for OAuthError only
    return oauth_error_response(exc)


def install_oauth_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, _handle_oauth_error)
