"""The clients and client_secrets tables."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity.domain.clients import Client
from identity.errors import ClientIdTaken, ClientNotFound
from identity.storage.models import ClientRow, ClientSecretRow, storable
from identity.storage.sessions import reusing

Source = Literal["file", "admin", "demo"]


@dataclass(frozen=True)
class StoredClient:
    """A client with the keyed hash of its secret (None for public clients)."""

    client: Client
    secret_hash: str | None


def _client(row: ClientRow) -> Client:
    return Client(
        client_id=row.client_id,
        client_type="public" if row.client_type == "public" else "confidential",
        name=row.name,
        redirect_uris=tuple(row.redirect_uris),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
        grant_types=frozenset(row.grant_types),
        scope=frozenset(row.scope.split()),
        audience=tuple(row.audience),
        skip_consent=row.skip_consent,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
    )


def _columns(client: Client) -> dict[str, object]:
    return {
        "client_type": client.client_type,
        "name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": sorted(client.grant_types),
        "scope": " ".join(sorted(client.scope)),
        "audience": list(client.audience),
        "skip_consent": client.skip_consent,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    }


def _insert_for(
    session: AsyncSession, table: type[ClientRow] | type[ClientSecretRow]
) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class ClientRepository:
    """Reads and writes registered clients and their secrets' hashes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(
        self, client_id: str, *, session: AsyncSession | None = None
    ) -> StoredClient | None:
        if not storable(client_id):
            return None
        async with reusing(self._sessions, session) as session:
            found = (
                await session.execute(
                    select(ClientRow, ClientSecretRow.secret_hash)
                    .outerjoin(
                        ClientSecretRow,
                        ClientSecretRow.client_id == ClientRow.client_id,
                    )
                    .where(ClientRow.client_id == client_id)
                )
            ).first()
        if found is None:
            return None
        row, secret_hash = found
        return StoredClient(_client(row), secret_hash)

    async def add(
        self, client: Client, source: Source, secret_hash: str | None
    ) -> None:
        """Insert a new client; :class:`ClientIdTaken` when its id is in use."""
        now = datetime.now(UTC)
        try:
            async with self._sessions.begin() as session:
                session.add(
                    ClientRow(
                        client_id=client.client_id,
                        source=source,
                        created_at=now,
                        updated_at=now,
                        **_columns(client),
                    )
                )
                await session.flush()
                if secret_hash is not None:
                    session.add(
                        ClientSecretRow(
                            client_id=client.client_id,
                            secret_hash=secret_hash,
                            created_at=now,
                        )
                    )
        except IntegrityError as exc:
            raise ClientIdTaken(client.client_id) from exc

    async def upsert(
        self, client: Client, source: Source, secret_hash: str | None
    ) -> None:
        """Insert or overwrite ``client`` (start-up registration, two replicas safe).

        A ``secret_hash`` of None keeps the stored secret of a confidential
        client and drops it for a public one.
        """
        now = datetime.now(UTC)
        columns = _columns(client)
        async with self._sessions.begin() as session:
            insert = _insert_for(session, ClientRow).values(
                client_id=client.client_id,
                source=source,
                created_at=now,
                updated_at=now,
                **columns,
            )
            await session.execute(
                insert.on_conflict_do_update(
                    index_elements=[ClientRow.client_id],
                    set_={**columns, "source": source, "updated_at": now},
                )
            )
            if secret_hash is not None:
                await self._store_secret(session, client.client_id, secret_hash, now)
            elif not client.is_confidential:
                await session.execute(
                    delete(ClientSecretRow).where(
                        ClientSecretRow.client_id == client.client_id
                    )
                )

    async def replace(self, client: Client) -> None:
        """Overwrite an existing client's registration (not its secret)."""
        async with self._sessions.begin() as session:
            row = await session.get(ClientRow, client.client_id)
            if row is None:
                raise ClientNotFound(client.client_id)
            for name, value in _columns(client).items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            if not client.is_confidential:
                await session.execute(
                    delete(ClientSecretRow).where(
                        ClientSecretRow.client_id == client.client_id
                    )
                )

    async def set_secret(self, client_id: str, secret_hash: str) -> None:
        if not storable(client_id):
            raise ClientNotFound(client_id)
        async with self._sessions.begin() as session:
            if await session.get(ClientRow, client_id) is None:
                raise ClientNotFound(client_id)
            await self._store_secret(session, client_id, secret_hash, datetime.now(UTC))

    async def _store_secret(
        self, session: AsyncSession, client_id: str, secret_hash: str, now: datetime
    ) -> None:
        insert = _insert_for(session, ClientSecretRow).values(
            client_id=client_id, secret_hash=secret_hash, created_at=now
        )
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=[ClientSecretRow.client_id],
                set_={"secret_hash": secret_hash, "created_at": now},
            )
        )

    async def delete(self, client_id: str) -> None:
        if not storable(client_id):
            raise ClientNotFound(client_id)
        async with self._sessions.begin() as session:
            # The secret goes first: SQLite enforces ON DELETE CASCADE only with
            # PRAGMA foreign_keys, which a connection might not have set.
            await session.execute(
                delete(ClientSecretRow).where(ClientSecretRow.client_id == client_id)
            )
            result = await session.execute(
                delete(ClientRow).where(ClientRow.client_id == client_id)
            )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise ClientNotFound(client_id)

    async def page(self, *, after: str | None, limit: int) -> list[Client]:
        """Up to ``limit`` clients ordered by client_id, after ``after``."""
        query = select(ClientRow).order_by(ClientRow.client_id).limit(limit)
        if after is not None:
            query = query.where(ClientRow.client_id > after)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_client(row) for row in rows]
