"""Users: the people who sign in, and the rules their attributes follow."""

from dataclasses import dataclass
from datetime import datetime

from identity.errors import InvalidUser

# RFC 5321 section 4.5.3.1: 64 octets of local part, 255 of domain; 320 in all
# is the common bound, and the column's size.
MAX_EMAIL_LENGTH = 320
# NIST SP 800-63B section 3.1.1.2: at least 8 characters, and a generous maximum
# (64 or more); the bound keeps one hash's cost predictable.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class User:
    """A person who can sign in; ``id`` is the OpenID Connect ``sub``."""

    id: str
    email: str
    email_verified: bool
    name: str | None
    given_name: str | None
    family_name: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UserProfile:
    """The attributes an administrator sets when creating a user."""

    email: str
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds C0/C1 control characters (NUL, newlines, ESC...).

    They have no place in an address or a name, break log lines and terminals,
    and PostgreSQL cannot store NUL at all.
    """
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)


def normalize_email(email: str) -> str:
    """The form e-mail addresses are compared in: trimmed and without case.

    Strictly the local part may be case-sensitive (RFC 5321 section 2.4), but no
    provider treats it so, and two accounts differing by case are a phishing aid.
    """
    return email.strip().casefold()


def check_email(email: str) -> str:
    """``email`` trimmed, or :class:`InvalidUser` saying what is wrong with it."""
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidUser("email", f"at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or domain.startswith("."):
        raise InvalidUser(
            "email", f"expected an address like name@example.com, got {email!r}"
        )
    if any(character.isspace() for character in email):
        raise InvalidUser("email", f"an address has no spaces, got {email!r}")
    if has_control_characters(email):
        raise InvalidUser("email", "an address has no control characters")
    return email


def check_password(password: str) -> None:
    """Raise :class:`InvalidUser` unless ``password`` has an acceptable length.

    The message never repeats the password.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser("password", f"at most {MAX_PASSWORD_LENGTH} characters")


def check_name(field: str, value: str | None) -> str | None:
    """A display name trimmed (None when empty), or :class:`InvalidUser`."""
    if value is None:
        return None
    value = value.strip()
    if has_control_characters(value):
        raise InvalidUser(field, "no control characters")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidUser(field, f"at most {MAX_NAME_LENGTH} characters")
    return value or None
