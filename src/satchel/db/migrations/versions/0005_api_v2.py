"""api v2: key pairs, access tokens, download tokens, folder sharing, URL imports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("v2_key1", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("v2_key2_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_users_v2_key1", ["v2_key1"])
    # A batch on SQLite rebuilds the table, and the rebuilt one must keep AUTOINCREMENT.
    sqlite = op.get_context().dialect.name == "sqlite"
    keep = {"table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    with op.batch_alter_table("folders", schema=None, **keep) as batch_op:
        batch_op.add_column(
            sa.Column("is_public", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("access_password", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("share_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_folders_share_code", ["share_code"])

    op.create_table(
        "v2_tokens",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "download_tokens",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_download_tokens_file_id", "download_tokens", ["file_id"])
    op.create_index("ix_download_tokens_expires_at", "download_tokens", ["expires_at"])
    op.create_table(
        "url_imports",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("total_size", sa.BigInteger(), nullable=True),
        sa.Column("downloaded", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_url_imports_user_id", "url_imports", ["user_id"])
    op.create_index("ix_url_imports_status", "url_imports", ["status"])


def downgrade() -> None:
    op.drop_index("ix_url_imports_status", table_name="url_imports")
    op.drop_index("ix_url_imports_user_id", table_name="url_imports")
    op.drop_table("url_imports")
    op.drop_index("ix_download_tokens_expires_at", table_name="download_tokens")
    op.drop_index("ix_download_tokens_file_id", table_name="download_tokens")
    op.drop_table("download_tokens")
    op.drop_table("v2_tokens")
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_folders_share_code", type_="unique")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("share_code")
        batch_op.drop_column("access_password")
        batch_op.drop_column("is_public")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_v2_key1", type_="unique")
        batch_op.drop_column("v2_key2_hash")
        batch_op.drop_column("v2_key1")
