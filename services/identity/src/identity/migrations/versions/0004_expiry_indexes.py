"""Indexes for the purge of expired rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column) the purge selects by (identity.storage.retention): expiry
# times, and the grant references it checks before deleting a grant. Without
# them each batch of a purge scans its whole table.
INDEXED = (
    ("browser_sessions", "expires_at"),
    ("browser_sessions", "ended_at"),
    ("authorization_codes", "expires_at"),
    ("authorization_codes", "grant_id"),
    ("access_tokens", "expires_at"),
    ("grants", "created_at"),
)


def upgrade() -> None:
    for table, column in INDEXED:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXED):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
