"""identity's one exception tree.

Every error identity raises on purpose derives from :class:`IdentityError`.
OAuth errors carry their RFC 6749 / OpenID Connect ``error`` code and HTTP
status; the API layer renders them (JSON body, redirect, or error page) in one
place per endpoint kind.
"""


class IdentityError(Exception):
    """Base of every error identity raises deliberately."""


class KeyDecryptionFailed(IdentityError):
    """A signing key's private part does not decrypt with the configured KEK."""

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"signing key {kid!r} does not decrypt with IDENTITY_KEY_ENCRYPTION_KEY; "
            "was the key-encryption key changed?"
        )
        self.kid = kid


class OAuthError(IdentityError):
    """An error answered with an RFC 6749 section 5.2 (or 4.1.2.1) body."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidRequest(OAuthError):
    """A parameter is missing, repeated, or malformed."""


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 section 5.2)."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    """The code or refresh token is invalid, expired, revoked or not this client's."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client may not use this grant type or response type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 section 2: the ``resource`` is not one this server issues for."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class LoginRequired(OAuthError):
    """OpenID Connect Core 3.1.2.6: ``prompt=none`` and nobody is signed in."""

    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InvalidAccessToken(OAuthError):
    """RFC 6750 section 3.1: the bearer token is not (or no longer) valid."""

    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class TemporarilyUnavailable(OAuthError):
    """Too many attempts: the client should retry after ``retry_after`` seconds."""

    error = "temporarily_unavailable"
    status = 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after
