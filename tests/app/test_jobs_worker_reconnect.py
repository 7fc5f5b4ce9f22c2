"""``osteolux worker`` connects again when PostgreSQL goes away (app/jobs/worker.py); the
whole drill (restart, postmaster kill -9) is bench/fault_drill.py."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from procrastinate.exceptions import ConnectorException

from app.jobs import worker


def test_an_unreachable_database_is_waited_for_with_a_doubling_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(worker.asyncio, "sleep", no_sleep)
    failures: list[Exception] = [
        ConnectorException("Database error."),  # what procrastinate raises from its worker
        psycopg.OperationalError("connection refused"),
        ConnectorException("Database error."),
    ]

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "stopped by a signal"

    assert asyncio.run(worker._until_reachable(attempt)) == "stopped by a signal"
    assert waits == [1.0, 2.0, 4.0]


def test_other_errors_still_end_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    async def attempt() -> None:
        raise ValueError("a bug is not waited out")

    with pytest.raises(ValueError, match="bug"):
        asyncio.run(worker._until_reachable(attempt))
