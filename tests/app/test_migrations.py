"""The models and the migrations agree, and every migration is reversible."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import app.models  # noqa: F401
from alembic import command
from app.db import Base, make_engine
from app.migrations import alembic_config
from tests.app.conftest import postgres_url


def test_models_match_migrations(engine: Engine) -> None:
    """What `alembic revision --autogenerate` would write is empty."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, so that downgrading does not disturb the shared one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'roundtrip.db'}"
        return
    url = postgres_url()
    schema = f"roundtrip_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema}_procrastinate CASCADE"))
    admin.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_roundtrip(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    assert _tables(empty_database) == set(Base.metadata.tables)
    command.downgrade(config, "base")
    assert _tables(empty_database) == set()
    command.upgrade(config, "head")
    assert _tables(empty_database) == set(Base.metadata.tables)


def test_upgrade_keeps_the_data_of_a_database_in_use(tmp_path: Path) -> None:
    """A table rebuilt by a migration (SQLite batch mode) keeps its rows and every reference
    to them: a lab's database with an uploaded click is migrated down and up again."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.db import make_session_factory, transaction
    from app.labs.service import create_lab
    from app.main import create_app
    from tests.app.clicks import new_imaging_session, post_zip, synthetic_hotel_zip

    url = f"sqlite:///{tmp_path / 'in-use.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        _, _, key = create_lab(session, "Lab")
    with TestClient(
        create_app(Settings(data_dir=tmp_path / "data", database_url=url)),
        headers={"X-API-Key": key},
    ) as client:
        imaging_session = new_imaging_session(client)
        uploaded = post_zip(client, imaging_session, synthetic_hotel_zip(tmp_path))
        assert uploaded.status_code == 201, uploaded.text
    counts = "SELECT (SELECT count(*) FROM roi), (SELECT count(*) FROM measurement)"
    with engine.connect() as conn:
        before = conn.execute(text(counts)).one()
    assert before[0] > 0 and before[1] == before[0]
    # Back to before roi.site gained 'unassigned' (a table rebuild) and up again (another).
    command.downgrade(config, "b979d7e05d37")
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text(counts)).one() == before
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
