"""Uploads in progress, counted for concurrent_uploads across workers and instances

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upload_slots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("who", sa.String(length=96), nullable=False),
        sa.Column("holder", sa.String(length=160), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_upload_slots_who", "upload_slots", ["who"])


def downgrade() -> None:
    op.drop_index("ix_upload_slots_who", table_name="upload_slots")
    op.drop_table("upload_slots")
