"""The users table: users, their password hashes, and keyset pagination."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity.domain.users import User, normalize_email
from identity.errors import EmailTaken, UserNotFound
from identity.storage.models import UserRow, storable
from identity.storage.sessions import reusing


@dataclass(frozen=True)
class StoredUser:
    """A user with the password hash that only the login path reads."""

    user: User
    password_hash: str


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        email_verified=row.email_verified,
        name=row.name,
        given_name=row.given_name,
        family_name=row.family_name,
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class UserRepository:
    """Reads and writes users; e-mail uniqueness is the database's index."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, user_id: str) -> User | None:
        if not storable(user_id):
            return None
        async with self._sessions() as session:
            row = await session.get(UserRow, user_id)
        return None if row is None else _user(row)

    async def by_email(
        self, email: str, *, session: AsyncSession | None = None
    ) -> StoredUser | None:
        """The user whose e-mail equals ``email`` without regard to case."""
        if not storable(email):
            return None
        async with reusing(self._sessions, session) as session:
            row = await session.scalar(
                select(UserRow).where(
                    UserRow.email_normalized == normalize_email(email)
                )
            )
        return None if row is None else StoredUser(_user(row), row.password_hash)

    async def add(self, user: User, password_hash: str) -> User:
        """Insert ``user``; :class:`EmailTaken` when its e-mail is in use."""
        row = UserRow(
            id=user.id,
            email=user.email,
            email_normalized=normalize_email(user.email),
            password_hash=password_hash,
            disabled=user.disabled,
            email_verified=user.email_verified,
            name=user.name,
            given_name=user.given_name,
            family_name=user.family_name,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as exc:
            raise EmailTaken(user.email) from exc
        return _user(row)

    async def update(self, user_id: str, values: dict[str, Any]) -> User:
        """Change the columns in ``values``; the e-mail's normal form follows it."""
        if not storable(user_id):
            raise UserNotFound(user_id)
        values = {**values, "updated_at": datetime.now(UTC)}
        if "email" in values:
            values["email_normalized"] = normalize_email(values["email"])
        try:
            async with self._sessions.begin() as session:
                result = await session.execute(
                    update(UserRow)
                    .where(UserRow.id == user_id)
                    .values(**values)
                    .returning(UserRow)
                )
                row = result.scalar_one_or_none()
        except IntegrityError as exc:
            raise EmailTaken(str(values.get("email"))) from exc
        if row is None:
            raise UserNotFound(user_id)
        return _user(row)

    async def delete(self, user_id: str) -> None:
        if not storable(user_id):
            raise UserNotFound(user_id)
        async with self._sessions.begin() as session:
            result = await session.execute(delete(UserRow).where(UserRow.id == user_id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UserNotFound(user_id)

    async def page(self, *, after: str | None, limit: int) -> list[User]:
        """Up to ``limit`` users ordered by id, starting after the id ``after``.

        Keyset pagination: stable while users are added or removed, and each
        page costs one index range scan however deep it is.
        """
        query = select(UserRow).order_by(UserRow.id).limit(limit)
        if after is not None:
            query = query.where(UserRow.id > after)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_user(row) for row in rows]
