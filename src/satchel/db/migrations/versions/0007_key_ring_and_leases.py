"""The key ring's state, which key wrapped each data key, tus lease holders

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    keep = {"table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    op.create_table(
        "key_ring",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("primary_key_id", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("files", schema=None, **keep) as batch_op:
        batch_op.add_column(sa.Column("wrapped_by", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_files_wrapped_by", ["wrapped_by"])
    with op.batch_alter_table("tus_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrapped_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("busy_by", sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tus_uploads", schema=None) as batch_op:
        batch_op.drop_column("busy_by")
        batch_op.drop_column("wrapped_by")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_wrapped_by")
        batch_op.drop_column("wrapped_by")
    op.drop_table("key_ring")
