"""Database and client fixtures: every DB test runs on SQLite and on PostgreSQL.

The schema is built by ``alembic upgrade head``; each test runs inside a transaction that
is rolled back, and the app's per-request commits become SAVEPOINT releases inside it.
PostgreSQL comes from ``OSTEOLUX_TEST_POSTGRES_URL`` (a throwaway database: its ``public``
schema is dropped and rebuilt). Without it the PostgreSQL half skips, except under CI,
where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import make_engine, session_scope
from app.deps import change_reason, get_read_session_factory, get_session
from app.labs.service import create_lab
from app.main import create_app
from app.migrations import upgrade_to_head
from tests.app.clicks import new_imaging_session, synthetic_hotel_zip

POSTGRES_ENV = "OSTEOLUX_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test PostgreSQL URL, or skip (fail under CI) saying how to provide one."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    message = (
        f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped. Start a server and set e.g. "
        f"{POSTGRES_ENV}=postgresql+psycopg://osteolux:osteolux@localhost/osteolux_test "
        "(.ci/run does this)."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'osteolux.db'}"
    else:
        url = postgres_url()
        try:
            reset_postgres(url)
        except Exception as exc:  # an unreachable server must say so, not error obscurely
            message = f"PostgreSQL at {url.split('@')[-1]} is not reachable: {exc}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction, rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def test_session_factory(db_connection: Connection) -> sessionmaker[Session]:
    """Sessions configured as production's (app.db.make_session_factory: no autoflush, no
    expiry on commit) whose every commit is a SAVEPOINT inside the test's transaction."""
    return sessionmaker(
        bind=db_connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
def db_session(test_session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with test_session_factory() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def app(
    settings: Settings, db_session: Session, test_session_factory: sessionmaker[Session]
) -> Any:
    app = create_app(settings)

    def _test_session(request: Request) -> Iterator[Session]:
        # As in production, a fresh session per request (so stale objects cannot hide bugs);
        # its commit is a SAVEPOINT release inside the test's transaction.
        yield from session_scope(test_session_factory, reason=change_reason(request))

    app.dependency_overrides[get_session] = _test_session
    app.dependency_overrides[get_read_session_factory] = lambda: test_session_factory
    return app


def _lab_key(db_session: Session, name: str) -> str:
    _, _, secret = create_lab(db_session, name)
    db_session.commit()
    return secret


@pytest.fixture
def admin_key(db_session: Session) -> str:
    return _lab_key(db_session, "Lab A (Weilbaecher)")


@pytest.fixture
def other_lab_key(db_session: Session) -> str:
    return _lab_key(db_session, "Lab B (Mundy)")


@pytest.fixture
def client(app: Any, admin_key: str) -> Iterator[TestClient]:
    """An HTTP client acting as lab A's admin."""
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield client


@pytest.fixture
def other_lab(app: Any, other_lab_key: str) -> Iterator[TestClient]:
    """An HTTP client acting as lab B's admin."""
    with TestClient(app, headers={"X-API-Key": other_lab_key}) as client:
        yield client


@pytest.fixture
def anonymous(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def synthetic_zip(tmp_path: Path) -> bytes:
    return synthetic_hotel_zip(tmp_path)


@pytest.fixture
def imaging_session(client: TestClient) -> dict[str, Any]:
    return new_imaging_session(client)
