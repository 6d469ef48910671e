"""A job lease names its holder's process (token@host:boot:pid:start), wider than a token

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_leases", schema=None) as batch_op:
        batch_op.alter_column(
            "owner", existing_type=sa.String(length=64), type_=sa.String(length=160)
        )


def downgrade() -> None:
    # A holder longer than a token is cut back to no holder: its lease still runs out.
    op.execute("UPDATE job_leases SET owner = NULL WHERE length(owner) > 64")
    with op.batch_alter_table("job_leases", schema=None) as batch_op:
        batch_op.alter_column(
            "owner", existing_type=sa.String(length=160), type_=sa.String(length=64)
        )
