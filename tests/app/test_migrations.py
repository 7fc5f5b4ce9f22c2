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
