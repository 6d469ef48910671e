"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from satchel.db.models import Base


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_sqlite_tables_never_reuse_ids(sqlite_template: Path) -> None:
    """PostgreSQL's sequences never hand out an id twice; SQLite needs AUTOINCREMENT, which a
    table rebuilt by a batch migration loses unless the migration keeps it."""
    engine = create_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type='table'"))
        tables: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
    engine.dispose()
    for table in ("files", "folders", "url_imports"):
        assert "AUTOINCREMENT" in tables[table], table


def test_folder_passwords_become_hashes_of_their_md5(tmp_path: Path) -> None:
    """0008 keeps the folders' passwords working while dropping the bare MD5s."""
    from alembic import command

    from satchel.core.passwords import verify_password
    from satchel.db.migrations_runner import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0007")
    md5 = "d9729feb74992cc3482b350163a1a010"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, username_key, password_hash, package, is_admin,"
                " is_disabled, api_enabled, created_at) VALUES (1, 'a', 'a', 'x', 'free', 0, 0, 1,"
                " '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO folders (id, owner_id, name, created_at, is_public, access_password)"
                " VALUES (1, 1, 'f', '2026-01-01 00:00:00', 1, :md5), (2, 1, 'g',"
                " '2026-01-01 00:00:00', 1, NULL)"
            ),
            {"md5": md5.upper()},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, access_password_hash FROM folders")).all())
        columns = [row[1] for row in conn.execute(text("PRAGMA table_info(folders)"))]
    engine.dispose()
    assert "access_password" not in columns
    assert rows[2] is None
    assert rows[1].startswith("$argon2")
    assert verify_password(rows[1], md5)
