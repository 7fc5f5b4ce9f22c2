"""Declarative base, engine and session factories, and the per-request session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Named constraints make migrations reproducible on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


READ_ONLY = "osteolux_read_only"
"""Execution option of the engine behind read-only sessions (see ``read_only_engine``)."""


def make_engine(url: str, *, lock_timeout_s: float = 15.0, **kwargs: object) -> Engine:
    """Create an engine that waits at most ``lock_timeout_s`` for a lock, then fails.

    SQLite gets foreign keys, write-ahead logging (readers never block the writer, nor the
    writer them) and real transactions: a write transaction takes the database's write lock
    when it begins (``BEGIN IMMEDIATE``), so it cannot fail half-way for want of it; a
    read-only one (``READ_ONLY`` execution option) takes no lock. PostgreSQL gets the same
    ``lock_timeout``, and read-only sessions run in ``READ ONLY`` transactions.
    """
    timeout_ms = max(1, round(lock_timeout_s * 1000))
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _make_sqlite_transactional(engine, timeout_ms)
        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)

    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_connection: Any, _record: object) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        dbapi_connection.execute(f"SET lock_timeout = {timeout_ms}")
        dbapi_connection.autocommit = autocommit

    return engine


def _make_sqlite_transactional(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and transactional DDL;
    # the SQLAlchemy-documented recipe hands BEGIN back to SQLAlchemy.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # WAL is a property of the database file; an in-memory database keeps "memory".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def read_only_engine(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read: no write lock on SQLite,
    ``READ ONLY`` on PostgreSQL (a stray write fails loudly instead of committing)."""
    options: dict[str, object] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return engine.execution_options(**options)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit the session's work on success; on any error run the undo actions registered
    with ``on_rollback`` (e.g. removing files written for it), then roll it back: undone while
    the transaction still holds its locks, so a writer waiting on them (another upload of the
    same file, waiting on its ``blob`` row) goes on after the undo, never before it."""
    try:
        yield session
        session.commit()
    except BaseException:
        try:
            for undo in reversed(session.info.get(_UNDO, [])):
                undo()
        finally:
            session.rollback()
        raise
    finally:
        session.info.pop(_UNDO, None)


_UNDO = "osteolux_undo_on_rollback"


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Register an action that undoes a side effect if this unit of work rolls back."""
    session.info.setdefault(_UNDO, []).append(undo)


def session_scope(
    factory: sessionmaker[Session], *, reason: str | None = None
) -> Iterator[Session]:
    """One transaction per unit of work (a request, a CLI command), in a fresh session;
    ``reason`` (why the change is made) is kept in its ``info`` for the audit trail."""
    with factory() as session:
        if reason is not None:
            session.info[REQUEST_REASON] = reason
        yield from unit_of_work(session)


REQUEST_REASON = "osteolux_request_reason"


transaction = contextmanager(session_scope)
