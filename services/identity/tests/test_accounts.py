"""Accounts against real databases: users, logins, clients and their secrets."""

from dataclasses import replace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from identity.accounts import Accounts, UserChanges
from identity.domain.clients import Client
from identity.domain.users import UserProfile
from identity.errors import (
    ClientAuthenticationFailed,
    ClientHasNoSecret,
    ClientIdTaken,
    EmailTaken,
    InvalidUser,
    LoginFailed,
    UserNotFound,
)
from identity.storage.models import ClientSecretRow, UserRow

from .conftest import accounts_settings

PASSWORD = "correct horse battery"

SERVICE = Client(
    client_id="reports",
    client_type="confidential",
    name="Reports",
    redirect_uris=(),
    post_logout_redirect_uris=(),
    grant_types=frozenset({"client_credentials"}),
    scope=frozenset({"orders:read"}),
    audience=(),
    skip_consent=False,
    token_endpoint_auth_method="client_secret_basic",
)


async def new_user(accounts: Accounts, email: str = "Ada@Example.com"):
    return await accounts.create_user(UserProfile(email=email, name="Ada"), PASSWORD)


async def test_a_user_signs_in_with_the_email_in_any_case(accounts):
    created = await new_user(accounts)

    user = await accounts.authenticate_user(
        "  ADA@example.COM", PASSWORD, address="10.0.0.1"
    )

    assert user.id == created.id
    assert user.email == "Ada@Example.com"
    assert await accounts.find_user(created.id) == created


async def test_emails_are_unique_without_regard_to_case(accounts):
    await new_user(accounts, "ada@example.com")

    with pytest.raises(EmailTaken) as raised:
        await new_user(accounts, "ADA@EXAMPLE.COM")

    assert str(raised.value) == (
        "a user with the e-mail address 'ADA@EXAMPLE.COM' already exists"
    )


async def test_changing_the_email_to_another_users_fails_and_changes_nothing(
    accounts,
):
    await new_user(accounts, "ada@example.com")
    grace = await new_user(accounts, "grace@example.com")

    with pytest.raises(EmailTaken):
        await accounts.update_user(grace.id, UserChanges(email="Ada@example.com"))

    assert (await accounts.find_user(grace.id)).email == "grace@example.com"


async def test_the_password_is_stored_as_an_argon2id_hash(accounts, sessions):
    user = await new_user(accounts)

    async with sessions() as session:
        stored = await session.scalar(
            select(UserRow.password_hash).where(UserRow.id == user.id)
        )

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("case", ["unknown e-mail", "wrong password", "disabled"])
async def test_every_failed_login_gets_the_same_answer(accounts, case):
    user = await new_user(accounts)
    email, password = "ada@example.com", "wrong password!"
    if case == "unknown e-mail":
        email, password = "nobody@example.com", PASSWORD
    if case == "disabled":
        await accounts.set_user_disabled(user.id, True)
        password = PASSWORD

    with pytest.raises(LoginFailed) as raised:
        await accounts.authenticate_user(email, password, address=None)

    assert str(raised.value) == "the e-mail address or the password is wrong"


async def test_an_unknown_email_costs_an_argon2_verification_too(accounts):
    await new_user(accounts)
    verified: list[str | None] = []
    real_verify = accounts._passwords.verify

    async def counting(password_hash, password):
        verified.append(password_hash)
        return await real_verify(password_hash, password)

    accounts._passwords.verify = counting

    for email in ("ada@example.com", "nobody@example.com"):
        with pytest.raises(LoginFailed):
            await accounts.authenticate_user(email, "wrong password!", address=None)

    assert len(verified) == 2
    # The unknown address was checked against the dummy hash, not skipped.
    assert verified[1] is None


async def test_a_login_rehashes_a_password_hashed_with_old_parameters(
    sessions, migrated_url
):
    old = Accounts(sessions, accounts_settings(migrated_url, password_time_cost=1))
    user = await new_user(old)
    new = Accounts(sessions, accounts_settings(migrated_url, password_time_cost=2))

    async def stored_hash():
        async with sessions() as session:
            return await session.scalar(
                select(UserRow.password_hash).where(UserRow.id == user.id)
            )

    before = await stored_hash()
    await new.authenticate_user("ada@example.com", PASSWORD, address=None)
    after = await stored_hash()

    assert ",t=1," in before
    assert ",t=2," in after
    assert PasswordHasher().verify(after, PASSWORD)
    # The next login finds nothing to upgrade.
    await new.authenticate_user("ada@example.com", PASSWORD, address=None)
    assert await stored_hash() == after


async def test_disabling_a_user_revokes_and_stops_logins_until_enabled(
    accounts, disabled_users
):
    user = await new_user(accounts)

    disabled = await accounts.set_user_disabled(user.id, True)
    assert disabled.disabled
    assert disabled_users == [user.id]
    with pytest.raises(LoginFailed):
        await accounts.authenticate_user("ada@example.com", PASSWORD, address=None)

    await accounts.set_user_disabled(user.id, False)
    assert (
        await accounts.authenticate_user("ada@example.com", PASSWORD, address=None)
    ).id == user.id
    assert disabled_users == [user.id]


async def test_deleting_a_user_revokes_first_and_forgets_them(accounts, disabled_users):
    user = await new_user(accounts)

    await accounts.delete_user(user.id)

    assert disabled_users == [user.id]
    assert await accounts.find_user(user.id) is None
    with pytest.raises(UserNotFound, match=repr(user.id)):
        await accounts.delete_user(user.id)


async def test_a_password_change_takes_effect_and_the_old_one_stops(accounts):
    user = await new_user(accounts)

    await accounts.update_user(user.id, UserChanges(password="a new passphrase"))

    with pytest.raises(LoginFailed):
        await accounts.authenticate_user("ada@example.com", PASSWORD, address=None)
    signed_in = await accounts.authenticate_user(
        "ada@example.com", "a new passphrase", address=None
    )
    assert signed_in.id == user.id


async def test_updates_change_only_what_they_name(accounts):
    user = await new_user(accounts)

    updated = await accounts.update_user(
        user.id, UserChanges(given_name="Ada", email_verified=True)
    )

    assert (updated.name, updated.given_name, updated.email_verified) == (
        "Ada",
        "Ada",
        True,
    )
    assert updated.updated_at >= user.updated_at
    cleared = await accounts.update_user(user.id, UserChanges(name=None))
    assert cleared.name is None
    assert cleared.given_name == "Ada"


async def test_a_short_password_is_refused_before_anything_is_stored(accounts):
    with pytest.raises(InvalidUser, match="password: at least 8 characters"):
        await accounts.create_user(UserProfile(email="ada@example.com"), "short")

    assert await accounts.list_users(after=None, limit=10) == []


async def test_users_page_by_id_without_gaps_or_repeats(accounts):
    created = [await new_user(accounts, f"user{i}@example.com") for i in range(5)]

    first = await accounts.list_users(after=None, limit=2)
    second = await accounts.list_users(after=first[-1].id, limit=2)
    third = await accounts.list_users(after=second[-1].id, limit=2)

    assert [u.id for u in first + second + third] == sorted(u.id for u in created)
    assert len(third) == 1


async def test_a_confidential_client_gets_a_random_secret_stored_as_a_keyed_hash(
    accounts, sessions
):
    client, secret = await accounts.register_client(SERVICE)

    assert secret is not None
    assert len(secret) >= 43  # 256 bits in URL-safe base64
    async with sessions() as session:
        stored = await session.scalar(
            select(ClientSecretRow.secret_hash).where(
                ClientSecretRow.client_id == "reports"
            )
        )
    assert stored is not None
    assert len(stored) == 64
    assert secret not in stored
    authenticated = await accounts.authenticate_client("reports", secret, address=None)
    assert authenticated == client
    assert client.audience == ("orders",)


async def test_two_registrations_never_share_a_secret(accounts):
    _, first = await accounts.register_client(SERVICE)
    _, second = await accounts.register_client(replace(SERVICE, client_id="other"))

    assert first != second


@pytest.mark.parametrize("case", ["wrong secret", "unknown client", "public client"])
async def test_client_authentication_fails_the_same_way_in_every_case(accounts, case):
    _, secret = await accounts.register_client(SERVICE)
    await accounts.register_client(
        replace(
            SERVICE,
            client_id="spa",
            client_type="public",
            grant_types=frozenset({"authorization_code"}),
            redirect_uris=("https://spa.example.com/cb",),
            token_endpoint_auth_method="none",
        )
    )
    client_id, given = {
        "wrong secret": ("reports", secret + "x"),
        "unknown client": ("nobody", secret),
        "public client": ("spa", secret),
    }[case]

    with pytest.raises(ClientAuthenticationFailed) as raised:
        await accounts.authenticate_client(client_id, given, address=None)

    assert str(raised.value) == "client authentication failed"


async def test_rotating_a_secret_retires_the_old_one(accounts):
    _, old = await accounts.register_client(SERVICE)

    new = await accounts.rotate_client_secret("reports")

    assert new != old
    with pytest.raises(ClientAuthenticationFailed):
        await accounts.authenticate_client("reports", old, address=None)
    assert (
        await accounts.authenticate_client("reports", new, address=None)
    ).client_id == "reports"


async def test_a_public_client_has_no_secret_to_rotate(accounts):
    spa = replace(
        SERVICE,
        client_id="spa",
        client_type="public",
        grant_types=frozenset({"authorization_code"}),
        redirect_uris=("https://spa.example.com/cb",),
        token_endpoint_auth_method="none",
    )
    _, secret = await accounts.register_client(spa)

    assert secret is None
    with pytest.raises(ClientHasNoSecret):
        await accounts.rotate_client_secret("spa")


async def test_a_client_id_registers_once(accounts):
    await accounts.register_client(SERVICE)

    with pytest.raises(ClientIdTaken, match="'reports' already exists"):
        await accounts.register_client(SERVICE)


async def test_a_deleted_client_no_longer_authenticates(accounts):
    _, secret = await accounts.register_client(SERVICE)

    await accounts.delete_client("reports")

    assert await accounts.find_client("reports") is None
    with pytest.raises(ClientAuthenticationFailed):
        await accounts.authenticate_client("reports", secret, address=None)


async def test_credentials_with_a_nul_fail_like_any_wrong_ones(accounts):
    await new_user(accounts)
    await accounts.register_client(SERVICE)

    with pytest.raises(LoginFailed):
        await accounts.authenticate_user("ada\x00@example.com", PASSWORD, address=None)
    with pytest.raises(ClientAuthenticationFailed):
        await accounts.authenticate_client("reports\x00", "x", address=None)
    assert await accounts.find_client("\x00") is None
    assert await accounts.find_user("\x00") is None
