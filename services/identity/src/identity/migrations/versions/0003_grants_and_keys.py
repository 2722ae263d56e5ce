"""signing keys, browser sessions, consents, grants, codes, tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        # Unique: two replicas creating "the next key" at once cannot both win.
        sa.Column("generation", sa.Integer(), nullable=False, unique=True),
        sa.Column("algorithm", sa.String(8), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("activates_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(36), nullable=False, index=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("rotated_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "access_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(36), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_access_tokens_grant_id", "access_tokens", ["grant_id"])


def downgrade() -> None:
    op.drop_index("ix_access_tokens_grant_id", table_name="access_tokens")
    for table in (
        "access_tokens",
        "refresh_tokens",
        "authorization_codes",
        "grants",
        "consents",
        "browser_sessions",
        "signing_keys",
    ):
        op.drop_table(table)
