"""How often each counted download of a file with a limit was resumed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "download_resumes",
        sa.Column("file_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("download", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("resumes", sa.Integer(), nullable=False),
        sa.Column("last_start", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "download"),
    )
    op.create_index("ix_download_resumes_expires_at", "download_resumes", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_download_resumes_expires_at", table_name="download_resumes")
    op.drop_table("download_resumes")
