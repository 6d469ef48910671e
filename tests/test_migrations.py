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
