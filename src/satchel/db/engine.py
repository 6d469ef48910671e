"""Engine and sessions: SQLite (WAL) by default, PostgreSQL through the database URL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from satchel.errors import DatabaseUnavailable, InsufficientStorage

# SQLite reports both a busy database and a missing table as OperationalError: only these
# mean "try again later" (or, the last one, a full disk).
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o")
_SQLITE_FULL = "database or disk is full"


class Database:
    def __init__(
        self, url: str, statement_timeout: float = 5.0, connect_timeout: float = 3.0
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _make_engine(url, statement_timeout, connect_timeout)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and its busy handler waits by sleeping (1, 2, 5,
        # 10 ms …): threads of one process queue on a mutex instead, which is fair and prompt.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _unavailable_as_domain_error(), self._sessions() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection for reads on hot paths."""
        with _unavailable_as_domain_error(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success; on SQLite it takes the write lock up front,
        so two writers wait for each other instead of failing with "database is locked"."""
        with _unavailable_as_domain_error(), self._write_lock, self._sessions() as session:
            if self.is_sqlite:
                session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction: for hot paths where the ORM costs too much."""
        with _unavailable_as_domain_error(), self._write_lock, self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn

    def migrate(self) -> None:
        from satchel.db.migrations_runner import upgrade_to_head  # Alembic only when needed

        if self.is_sqlite:
            upgrade_to_head(self.engine)
            return
        # Without the request timeouts: a migration may rewrite a large table.
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            upgrade_to_head(engine)
        finally:
            engine.dispose()

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _unavailable_as_domain_error() -> Iterator[None]:
    """A database that refuses connections, times out or is locked answers 503, not 500."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        text_ = str(getattr(exc, "orig", exc)).lower()
        if isinstance(exc, sa_exc.OperationalError) and _is_sqlite_error(exc):
            if _SQLITE_FULL in text_:
                raise InsufficientStorage("Server storage is full") from exc
            if not any(word in text_ for word in _SQLITE_UNAVAILABLE):
                raise
        raise DatabaseUnavailable() from exc


def _is_sqlite_error(exc: sa_exc.DBAPIError) -> bool:
    return type(exc.orig).__module__.startswith("sqlite3")


def _make_engine(url: str, statement_timeout: float, connect_timeout: float) -> Engine:
    if not url.startswith("sqlite"):
        # Fail fast rather than hold the request: a refused or unreachable server within
        # connect_timeout, a statement (a lock wait included) within statement_timeout.
        milliseconds = int(statement_timeout * 1000)
        options = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_timeout=max(1.0, statement_timeout),
            connect_args={"connect_timeout": max(1, int(connect_timeout)), "options": options},
        )
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": max(1.0, statement_timeout)}
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take over transaction control from the driver, so that BEGIN IMMEDIATE can be chosen.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
