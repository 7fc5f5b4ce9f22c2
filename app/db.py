"""Declarative base, engine and session factories, and the per-request session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
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


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets foreign keys and real transactions (SAVEPOINT-safe)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _make_sqlite_transactional(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and transactional DDL;
    # the SQLAlchemy-documented recipe hands BEGIN back to SQLAlchemy.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit the session's work on success; on any error roll it back and run the undo
    actions registered with ``on_rollback`` (e.g. removing files written for it)."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        for undo in reversed(session.info.get(_UNDO, [])):
            undo()
        raise
    finally:
        session.info.pop(_UNDO, None)


_UNDO = "osteolux_undo_on_rollback"


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Register an action that undoes a side effect if this unit of work rolls back."""
    session.info.setdefault(_UNDO, []).append(undo)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction per unit of work (a request, a CLI command), in a fresh session."""
    with factory() as session:
        yield from unit_of_work(session)


transaction = contextmanager(session_scope)
