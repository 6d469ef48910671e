"""Failed password guesses; folder passwords kept only as a slow salted hash of their MD5

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from argon2 import PasswordHasher

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# As satchel.core.passwords hashes them (a migration stays as it was written, whatever the
# application's code becomes; the hash string carries its own parameters).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    keep = {"table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    op.create_table(
        "failed_guesses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_failed_guesses_scope_at", "failed_guesses", ["scope", "at"])
    with op.batch_alter_table("folders", schema=None, **keep) as batch_op:
        batch_op.add_column(sa.Column("access_password_hash", sa.String(length=255), nullable=True))
    folders = sa.table(
        "folders",
        sa.column("id", sa.BigInteger),
        sa.column("access_password", sa.String),
        sa.column("access_password_hash", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(folders.c.id, folders.c.access_password).where(
            folders.c.access_password.is_not(None)
        )
    ).all()
    for folder_id, md5 in rows:
        conn.execute(
            folders.update()
            .where(folders.c.id == folder_id)
            .values(access_password_hash=_hasher.hash(str(md5).lower()))
        )
    with op.batch_alter_table("folders", schema=None, **keep) as batch_op:
        batch_op.drop_column("access_password")


def downgrade() -> None:
    # The MD5s cannot be recovered from their hashes: folders lose their passwords.
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_password", sa.String(length=32), nullable=True))
        batch_op.drop_column("access_password_hash")
    op.drop_index("ix_failed_guesses_scope_at", table_name="failed_guesses")
    op.drop_table("failed_guesses")
