"""tus uploads, and the E2E format of a file

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A batch on SQLite rebuilds the table, and the rebuilt one must keep AUTOINCREMENT.
    sqlite = op.get_context().dialect.name == "sqlite"
    keep = {"table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    with op.batch_alter_table("files", schema=None, **keep) as batch_op:
        batch_op.add_column(sa.Column("e2e_format", sa.String(length=8), nullable=True))
    op.create_table(
        "tus_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("uploader_ip", sa.String(length=45), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata_header", sa.String(length=8192), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("prefix", sa.LargeBinary(), nullable=False),
        sa.Column("tail", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("busy_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("blob_key"),
    )
    op.create_index("ix_tus_uploads_owner_id", "tus_uploads", ["owner_id"])
    op.create_index("ix_tus_uploads_state", "tus_uploads", ["state"])
    op.create_index("ix_tus_uploads_expires_at", "tus_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_tus_uploads_expires_at", table_name="tus_uploads")
    op.drop_index("ix_tus_uploads_state", table_name="tus_uploads")
    op.drop_index("ix_tus_uploads_owner_id", table_name="tus_uploads")
    op.drop_table("tus_uploads")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("e2e_format")
