"""identity's one exception tree.

Every error identity raises on purpose derives from :class:`IdentityError`.
OAuth errors carry their RFC 6749 / OpenID Connect ``error`` code and HTTP
status; the API layer renders them (JSON body, redirect, or error page) in one
place per endpoint kind.
"""


class IdentityError(Exception):
    """Base of every error identity raises deliberately."""


# Accounts: users, clients and their throttling (identity.accounts).


class LoginFailed(IdentityError):
    """The e-mail and password do not sign anyone in.

    One error for an unknown e-mail, a wrong password and a disabled account,
    so that the answer does not reveal which accounts exist (RFC 9700 section
    4.16 on enumeration; OWASP authentication guidance).
    """

    def __init__(self) -> None:
        super().__init__("the e-mail address or the password is wrong")


class Throttled(IdentityError):
    """Too many recent failures; the caller may try again after a while."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class LoginThrottled(Throttled):
    """Too many failed logins for this account or from this address."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many failed logins; try again in {retry_after_seconds} s",
            retry_after_seconds,
        )


class ClientAuthenticationFailed(IdentityError):
    """The client is unknown, has no secret, or gave the wrong secret.

    RFC 6749 section 5.2 ``invalid_client``; one error for all three cases.
    """

    def __init__(self) -> None:
        super().__init__("client authentication failed")


class ClientThrottled(Throttled):
    """Too many failed authentications for this client or from this address."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "too many failed client authentications; "
            f"try again in {retry_after_seconds} s",
            retry_after_seconds,
        )


class NotFound(IdentityError):
    """The user or client named does not exist."""


class UserNotFound(NotFound):
    """No user has this id."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user has the id {user_id!r}")
        self.user_id = user_id


class ClientNotFound(NotFound):
    """No client has this client_id."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client has the client_id {client_id!r}")
        self.client_id = client_id


class Conflict(IdentityError):
    """The change would break a uniqueness rule."""


class EmailTaken(Conflict):
    """Another user already has this e-mail address (compared without case)."""

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with the e-mail address {email!r} already exists")
        self.email = email


class ClientIdTaken(Conflict):
    """Another client already has this client_id."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"a client with the client_id {client_id!r} already exists")
        self.client_id = client_id


class ClientHasNoSecret(Conflict):
    """A public client has no secret to rotate."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"the client {client_id!r} is public and has no secret")
        self.client_id = client_id


class InvalidField(IdentityError):
    """A value breaks a rule of the domain; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidUser(InvalidField):
    """A user's attribute is not acceptable (e-mail form, password length)."""


class InvalidClientRegistration(InvalidField):
    """A client registration is not acceptable (redirect URI, grant types...)."""


class InvalidClientsFile(IdentityError, ValueError):
    """The clients file or the client secrets file cannot be used.

    A ValueError too, so that raised while the settings load it becomes one
    line naming the variable (:mod:`servicekit.config`).
    """


# OAuth protocol errors (the protocol engineer's part of the tree).


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


class InvalidClientAuthentication(OAuthError):
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


class UntrustedAuthorizationRequest(OAuthError):
    """The client or its redirect URI is unknown: show an error, never redirect.

    OAuth 2.1 section 4.1.2.1: redirecting to an unverified URI would make the
    server an open redirector and could hand a code to an attacker.
    """
