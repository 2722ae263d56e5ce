"""accounts: users' profile columns, clients, client secrets, throttles

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(
            sa.Column(
                "email_verified",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        users.add_column(sa.Column("name", sa.String(200), nullable=True))
        users.add_column(sa.Column("given_name", sa.String(200), nullable=True))
        users.add_column(sa.Column("family_name", sa.String(200), nullable=True))
        # SQLite cannot add a column whose default is not a constant; existing
        # rows take their creation time, new rows are stamped by the service.
        users.add_column(
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE users SET updated_at = created_at")
    with op.batch_alter_table("users") as users:
        users.alter_column(
            "updated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )

    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("client_type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("skip_consent", sa.Boolean(), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "client_secrets",
        sa.Column(
            "client_id",
            sa.String(100),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "throttles",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("throttles")
    op.drop_table("client_secrets")
    op.drop_table("clients")
    with op.batch_alter_table("users") as users:
        for column in ("updated_at", "family_name", "given_name", "name"):
            users.drop_column(column)
        users.drop_column("email_verified")
