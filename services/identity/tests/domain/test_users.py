import pytest

from identity.domain.users import (
    check_email,
    check_name,
    check_password,
    normalize_email,
)
from identity.errors import InvalidUser


def test_emails_compare_without_case_and_surrounding_spaces():
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("alice", "expected an address like name@example.com, got 'alice'"),
        (
            "@example.com",
            "expected an address like name@example.com, got '@example.com'",
        ),
        (
            "alice@localhost",
            "expected an address like name@example.com, got 'alice@localhost'",
        ),
        ("al ice@example.com", "an address has no spaces, got 'al ice@example.com'"),
        ("a" * 320 + "@example.com", "at most 320 characters"),
    ],
    ids=["no-at", "no-local-part", "no-dot-in-domain", "space", "too-long"],
)
def test_a_malformed_email_is_refused_naming_the_field(email, reason):
    with pytest.raises(InvalidUser) as raised:
        check_email(email)

    assert raised.value.field == "email"
    assert raised.value.reason == reason


def test_a_valid_email_is_kept_as_written_but_trimmed():
    assert check_email(" Alice@Example.com ") == "Alice@Example.com"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "at least 8 characters"), ("x" * 1025, "at most 1024 characters")],
    ids=["too-short", "too-long"],
)
def test_a_password_of_the_wrong_length_is_refused_without_repeating_it(
    password, reason
):
    with pytest.raises(InvalidUser) as raised:
        check_password(password)

    assert str(raised.value) == f"password: {reason}"
    assert password not in str(raised.value)


def test_names_are_trimmed_and_empty_ones_become_none():
    assert check_name("name", "  Ada ") == "Ada"
    assert check_name("name", "   ") is None
    with pytest.raises(InvalidUser, match="given_name: at most 200 characters"):
        check_name("given_name", "x" * 201)
