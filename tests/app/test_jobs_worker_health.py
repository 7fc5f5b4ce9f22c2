"""``osteolux worker --check``, the worker containers' health check (app/jobs/worker.py):
healthy only when PostgreSQL and the job queue answer and a worker's heartbeat is fresh."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text

from app.db import make_engine
from app.jobs.worker import check


@pytest.fixture
def postgres(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("osteolux worker runs on PostgreSQL only")
    return database_url


@pytest.fixture
def own_queue(postgres: str) -> Iterator[tuple[str, str]]:
    """A URL whose current schema is a new one, and its queue schema holding an empty copy of
    procrastinate's workers table (so no other test's worker counts)."""
    schema = f"health_{uuid.uuid4().hex[:8]}"
    engine = make_engine(postgres)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
        connection.execute(text(f"CREATE SCHEMA {schema}_procrastinate"))
        connection.execute(
            text(
                f"CREATE TABLE {schema}_procrastinate.procrastinate_workers "
                "(LIKE procrastinate.procrastinate_workers INCLUDING ALL)"
            )
        )
    url = make_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False), f"{schema}_procrastinate"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema}_procrastinate CASCADE"))
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_healthy_only_with_a_fresh_heartbeat(
    own_queue: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, queue = own_queue
    assert check(url, stalled_s=30) == 1
    assert "no worker has sent a heartbeat in 30 s" in capsys.readouterr().err
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {queue}.procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '5 minutes')"
            )
        )
    assert check(url, stalled_s=30) == 1  # a worker silent for 5 min is a stalled one
    assert check(url, stalled_s=600) == 0
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {queue}.procrastinate_workers (last_heartbeat) VALUES (now())")
        )
    engine.dispose()
    assert check(url, stalled_s=30) == 0
    assert "healthy: 1 worker(s)" in capsys.readouterr().out


def test_a_worker_registered_in_the_real_queue_is_seen(postgres: str) -> None:
    """procrastinate's own registration (what `osteolux worker` does on start) counts."""
    engine = make_engine(postgres)
    with engine.begin() as connection:
        worker_id = connection.execute(
            text("SELECT procrastinate.procrastinate_register_worker_v1()")
        ).scalar_one()
    try:
        assert check(postgres, stalled_s=30) == 0
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT procrastinate.procrastinate_unregister_worker_v1(:id)"),
                {"id": worker_id},
            )
        engine.dispose()


def test_unhealthy_when_the_queue_or_the_database_does_not_answer(
    own_queue: tuple[str, str], postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, queue = own_queue
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {queue}.procrastinate_workers"))
    engine.dispose()
    assert check(url, stalled_s=30) == 1
    assert "the job queue in PostgreSQL does not answer" in capsys.readouterr().err
    # Nothing listens on port 1: refused at once.
    nowhere = make_url(postgres).set(host="127.0.0.1", port=1)
    assert check(nowhere.render_as_string(hide_password=False), stalled_s=30) == 1
    assert "does not answer" in capsys.readouterr().err
