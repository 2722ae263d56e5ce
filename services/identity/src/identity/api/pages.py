"""Server-rendered pages (login, consent, errors): rendering, headers and CSRF.

The pages work without JavaScript and load nothing from elsewhere. Every page
is sent with headers that keep it out of frames (clickjacking), out of caches
and out of Referer headers. Forms carry a CSRF token that must equal the one
in a cookie only this site can set (the double-submit pattern; the cookies
are SameSite=Lax, so a cross-site POST does not even carry them).
"""

import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from identity.provider import Provider

CSRF_COOKIE = "identity_csrf"
SESSION_COOKIE = "identity_session"

SECURITY_HEADERS = {
    # Inline styles only; no script, no frame, no plugin, no base rewriting.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

SCOPE_DESCRIPTIONS = {
    "openid": "know who you are",
    "profile": "see your name",
    "email": "see your e-mail address",
    "offline_access": "keep access while you are away",
    "orders:read": "see your orders",
    "orders:write": "create and change your orders",
    "orders:admin": "manage every order",
    "users:read": "see user accounts",
    "users:write": "change user accounts",
}

_templates = Environment(
    loader=PackageLoader("identity", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: the cookie's if it has one, else a new one."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    return secrets.token_urlsafe(32)


def csrf_is_valid(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def render(
    provider: Provider,
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page with the security headers and, for forms, the CSRF cookie."""
    token = csrf_token(request)
    body = _templates.get_template(template).render(csrf_token=token, **context)
    response = HTMLResponse(
        body, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )
    set_cookie(provider, response, CSRF_COOKIE, token, max_age=None)
    return response


def set_cookie(
    provider: Provider,
    response: HTMLResponse | Any,
    name: str,
    value: str,
    *,
    max_age: int | None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=provider.cookie_path,
        httponly=True,
        samesite="lax",
        secure=provider.secure_cookies,
    )


def error_page(
    provider: Provider, request: Request, message: str, status_code: int = 400
) -> HTMLResponse:
    """Shown instead of redirecting when the redirect URI cannot be trusted."""
    return render(
        provider, request, "error.html", status_code=status_code, message=message
    )
