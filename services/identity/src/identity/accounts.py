"""The accounts façade: users, clients, and the checks of their credentials.

Built once in ``app.py`` and kept on ``app.state.accounts``; the OAuth
endpoints and the admin API use it, never the repositories directly.
"""

import base64
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity import metrics
from identity.client_secrets import ClientSecretHasher, generate_client_secret
from identity.demo import seed_demo
from identity.domain.clients import Client, check_client
from identity.domain.users import (
    User,
    UserProfile,
    check_email,
    check_name,
    check_password,
    normalize_email,
)
from identity.errors import (
    ClientAuthenticationFailed,
    ClientHasNoSecret,
    ClientNotFound,
    ClientThrottled,
    LoginFailed,
    LoginThrottled,
    UserNotFound,
)
from identity.passwords import Passwords
from identity.registrations import read_client_secrets_file, read_clients_file
from identity.settings import Settings
from identity.storage.clients import ClientRepository, Source
from identity.storage.users import UserRepository
from identity.throttling import Throttle, ThrottleKind

logger = logging.getLogger(__name__)

UserDisabledListener = Callable[[str], Awaitable[None]]
ClientChangedListener = Callable[[str], None]


class _Unchanged:
    """Marks a field a partial update leaves alone (None means "clear it")."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


@dataclass(frozen=True)
class UserChanges:
    """What a partial update of a user changes; every field defaults to UNCHANGED."""

    email: str | _Unchanged = UNCHANGED
    email_verified: bool | _Unchanged = UNCHANGED
    name: str | _Unchanged | None = UNCHANGED
    given_name: str | _Unchanged | None = UNCHANGED
    family_name: str | _Unchanged | None = UNCHANGED
    password: str | _Unchanged = UNCHANGED


class Accounts:
    """Users and clients, their credentials, and the throttling around them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        on_user_disabled: UserDisabledListener | None = None,
        on_client_changed: ClientChangedListener | None = None,
    ) -> None:
        self.settings = settings
        self.on_user_disabled = on_user_disabled
        # Told the client_id whenever a registration or secret changes, so that
        # what this process remembers of the client can be forgotten.
        self.on_client_changed = on_client_changed
        self._sessions = sessions
        self._users = UserRepository(sessions)
        self._clients = ClientRepository(sessions)
        self._passwords = Passwords(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
        )
        key = settings.key_encryption_key
        if key is None:  # the settings' validator always provides one
            raise ValueError("IDENTITY_KEY_ENCRYPTION_KEY is required")
        self._secrets = ClientSecretHasher(base64.b64decode(key.get_secret_value()))
        self.throttle = Throttle(
            sessions, window_seconds=settings.throttle_window_seconds
        )

    async def start(self) -> None:
        """Register the clients of the clients file, and seed the demo if asked."""
        await self.throttle.purge()
        await self.register_clients_file()
        if self.settings.seed_demo:
            await seed_demo(self)

    async def find_user(self, user_id: str) -> User | None:
        """The user with this id (the OIDC ``sub``), or None."""
        return await self._users.get(user_id)

    async def find_user_by_email(self, email: str) -> User | None:
        """The user with this e-mail (without regard to case), or None."""
        stored = await self._users.by_email(email)
        return None if stored is None else stored.user

    async def authenticate_user(
        self, email: str, password: str, *, address: str | None
    ) -> User:
        """The user these credentials sign in.

        Raises :class:`LoginThrottled` when the account or the address failed
        too often recently, and :class:`LoginFailed` (one answer for unknown
        e-mail, wrong password and disabled account) otherwise.
        """
        account = normalize_email(email)
        keys = [(ThrottleKind.LOGIN_ACCOUNT, account)]
        if address:
            keys.append((ThrottleKind.LOGIN_ADDRESS, address))
        async with self._sessions() as session:
            state = await self.throttle.check(keys, session=session)
            if state.blocked_by is not None:
                metrics.login_attempts.labels(outcome="throttled").inc()
                metrics.throttled_requests.labels(kind=state.blocked_by.value).inc()
                raise LoginThrottled(state.retry_after_seconds)
            stored = await self._users.by_email(account, session=session)
        password_hash = None if stored is None else stored.password_hash
        verified = await self._passwords.verify(password_hash, password)
        if stored is None or not verified or stored.user.disabled:
            await self._record_login_failure(account, address)
            raise LoginFailed

        if ThrottleKind.LOGIN_ACCOUNT in state.counted:
            await self.throttle.reset(ThrottleKind.LOGIN_ACCOUNT, account)
        if self._passwords.needs_rehash(stored.password_hash):
            # The parameters changed since this hash was made (RFC 9106 section
            # 4): the password is at hand only now, so this is when to upgrade.
            new_hash = await self._passwords.hash(password)
            await self._users.update(stored.user.id, {"password_hash": new_hash})
            logger.info("password rehashed", extra={"user_id": stored.user.id})
        metrics.login_attempts.labels(outcome="success").inc()
        return stored.user

    async def _record_login_failure(self, account: str, address: str | None) -> None:
        metrics.login_attempts.labels(outcome="failure").inc()
        await self.throttle.record_failure(
            ThrottleKind.LOGIN_ACCOUNT,
            account,
            self.settings.login_failures_per_account,
        )
        if address:
            await self.throttle.record_failure(
                ThrottleKind.LOGIN_ADDRESS,
                address,
                self.settings.login_failures_per_address,
            )

    async def create_user(self, profile: UserProfile, password: str) -> User:
        """A new, enabled user; :class:`EmailTaken` when the e-mail is in use."""
        check_password(password)
        now = datetime.now(UTC)
        user = User(
            id=str(uuid.uuid4()),
            email=check_email(profile.email),
            email_verified=profile.email_verified,
            name=check_name("name", profile.name),
            given_name=check_name("given_name", profile.given_name),
            family_name=check_name("family_name", profile.family_name),
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        return await self._users.add(user, await self._passwords.hash(password))

    async def list_users(self, *, after: str | None, limit: int) -> list[User]:
        """A page of users ordered by id, after the id ``after``."""
        return await self._users.page(after=after, limit=limit)

    async def update_user(self, user_id: str, changes: UserChanges) -> User:
        """Apply ``changes``; :class:`UserNotFound`, :class:`EmailTaken`."""
        values: dict[str, object] = {}
        if not isinstance(changes.email, _Unchanged):
            values["email"] = check_email(changes.email)
        if not isinstance(changes.email_verified, _Unchanged):
            values["email_verified"] = changes.email_verified
        for field in ("name", "given_name", "family_name"):
            value = getattr(changes, field)
            if not isinstance(value, _Unchanged):
                values[field] = check_name(field, value)
        if not isinstance(changes.password, _Unchanged):
            check_password(changes.password)
            values["password_hash"] = await self._passwords.hash(changes.password)
        if not values:
            user = await self._users.get(user_id)
            if user is None:
                raise UserNotFound(user_id)
            return user
        return await self._users.update(user_id, values)

    async def set_user_disabled(self, user_id: str, disabled: bool) -> User:
        """Disable (revoking the user's tokens and sessions) or enable a user."""
        user = await self._users.update(user_id, {"disabled": disabled})
        if disabled:
            await self._revoke(user_id)
            logger.info("user disabled", extra={"user_id": user_id})
        return user

    async def delete_user(self, user_id: str) -> None:
        """Delete a user, after revoking their tokens and sessions."""
        if await self._users.get(user_id) is None:
            raise UserNotFound(user_id)
        await self._revoke(user_id)
        await self._users.delete(user_id)
        logger.info("user deleted", extra={"user_id": user_id})

    async def _revoke(self, user_id: str) -> None:
        if self.on_user_disabled is not None:
            await self.on_user_disabled(user_id)

    async def find_client(self, client_id: str) -> Client | None:
        """The registered client with this id, or None."""
        stored = await self._clients.get(client_id)
        return None if stored is None else stored.client

    async def authenticate_client(
        self, client_id: str, secret: str, *, address: str | None
    ) -> Client:
        """The confidential client that ``secret`` authenticates.

        Raises :class:`ClientThrottled` after too many recent failures for
        this client or address, else :class:`ClientAuthenticationFailed` for an
        unknown client, a public one, or a wrong secret (RFC 6749 section 5.2
        ``invalid_client`` in every case).
        """
        keys = [(ThrottleKind.CLIENT, client_id)]
        if address:
            keys.append((ThrottleKind.CLIENT_ADDRESS, address))
        async with self._sessions() as session:
            state = await self.throttle.check(keys, session=session)
            if state.blocked_by is not None:
                metrics.throttled_requests.labels(kind=state.blocked_by.value).inc()
                raise ClientThrottled(state.retry_after_seconds)
            stored = await self._clients.get(client_id, session=session)
        secret_hash = None if stored is None else stored.secret_hash
        if not self._secrets.matches(secret, secret_hash) or stored is None:
            await self._record_client_failure(client_id, address)
            raise ClientAuthenticationFailed

        # Only a client that failed before has a counter to clear; skipping the
        # write otherwise keeps the token endpoint's hot path read-only.
        if ThrottleKind.CLIENT in state.counted:
            await self.throttle.reset(ThrottleKind.CLIENT, client_id)
        return stored.client

    async def _record_client_failure(self, client_id: str, address: str | None) -> None:
        await self.throttle.record_failure(
            ThrottleKind.CLIENT, client_id, self.settings.client_failures_per_client
        )
        if address:
            await self.throttle.record_failure(
                ThrottleKind.CLIENT_ADDRESS,
                address,
                self.settings.client_failures_per_address,
            )

    async def register_client(
        self, client: Client, *, source: Source = "admin"
    ) -> tuple[Client, str | None]:
        """Register a new client; a confidential one gets a secret, returned once.

        :class:`ClientIdTaken` when the id is in use.
        """
        client = check_client(client)
        secret = generate_client_secret() if client.is_confidential else None
        secret_hash = None if secret is None else self._secrets.hash(secret)
        await self._clients.add(client, source, secret_hash)
        logger.info("client registered", extra={"client_id": client.client_id})
        return client, secret

    async def list_clients(self, *, after: str | None, limit: int) -> list[Client]:
        """A page of clients ordered by client_id, after ``after``."""
        return await self._clients.page(after=after, limit=limit)

    async def update_client(self, client: Client) -> tuple[Client, str | None]:
        """Replace a client's registration; returns a new secret if it became
        confidential (and had none), else None."""
        client = check_client(client)
        stored = await self._clients.get(client.client_id)
        if stored is None:
            raise ClientNotFound(client.client_id)
        await self._clients.replace(client)
        self._client_changed(client.client_id)
        secret = None
        if client.is_confidential and stored.secret_hash is None:
            secret = await self.rotate_client_secret(client.client_id)
        return client, secret

    async def delete_client(self, client_id: str) -> None:
        await self._clients.delete(client_id)
        self._client_changed(client_id)
        logger.info("client deleted", extra={"client_id": client_id})

    async def rotate_client_secret(self, client_id: str) -> str:
        """A new secret for a confidential client; the old one stops working."""
        stored = await self._clients.get(client_id)
        if stored is None:
            raise ClientNotFound(client_id)
        if not stored.client.is_confidential:
            raise ClientHasNoSecret(client_id)
        secret = generate_client_secret()
        await self._clients.set_secret(client_id, self._secrets.hash(secret))
        self._client_changed(client_id)
        logger.info("client secret rotated", extra={"client_id": client_id})
        return secret

    async def upsert_client(
        self, client: Client, *, source: Source, secret: str | None
    ) -> None:
        """Insert or overwrite a client from configuration (file or demo)."""
        client = check_client(client)
        secret_hash = None if secret is None else self._secrets.hash(secret)
        await self._clients.upsert(client, source, secret_hash)
        self._client_changed(client.client_id)

    def _client_changed(self, client_id: str) -> None:
        if self.on_client_changed is not None:
            self.on_client_changed(client_id)

    async def register_clients_file(self) -> list[Client]:
        """Upsert every client of ``IDENTITY_CLIENTS_FILE``; safe to repeat."""
        path = self.settings.clients_file
        if path is None:
            return []
        clients = read_clients_file(path)
        secrets_path = self.settings.client_secrets_file
        secrets = (
            {}
            if secrets_path is None
            else read_client_secrets_file(secrets_path, clients)
        )
        for client in clients:
            secret = secrets.get(client.client_id)
            if client.is_confidential and secret is None:
                logger.warning(
                    "confidential client has no secret in the secrets file",
                    extra={"client_id": client.client_id},
                )
            await self.upsert_client(client, source="file", secret=secret)
        logger.info("clients registered from file", extra={"clients": len(clients)})
        return clients
