"""A 2xx is sent only after COMMIT, against a real `osteolux serve` on SQLite and PostgreSQL.

The in-process test client cannot show this: it hid a 201 that was sent before the
transaction committed (and, when the commit then failed, for a row that never existed).
Here a second database connection holds a lock or a transaction open while a real server
process answers over HTTP.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from sqlalchemy import text

from app.db import make_engine
from tests.live_server import LiveServer, live_server_on

LOCK_TIMEOUT_S = 1.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # One server per backend for the module; every test makes its own study.
    with live_server_on(
        request.param,
        tmp_path_factory.mktemp(request.param),
        OSTEOLUX_DB_LOCK_TIMEOUT_S=str(LOCK_TIMEOUT_S),
    ) as live:
        yield live


@contextmanager
def holding(live: LiveServer, *, write_lock: bool) -> Iterator[None]:
    """A second connection that holds the write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    an EXCLUSIVE lock on ``animal``) or just an open read transaction, until the block ends."""
    if live.schema is None:  # SQLite: a plain sqlite3 connection, as another process would
        path = live.database_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE" if write_lock else "BEGIN")
        conn.execute("SELECT count(*) FROM animal").fetchone()
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = make_engine(live.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM animal"))
            if write_lock:
                conn.execute(text("LOCK TABLE animal IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def _ear_tags(live: LiveServer, study_id: str) -> list[str]:
    response = httpx2.get(
        f"{live.base_url}/studies/{study_id}/animals", headers=live.headers, timeout=30
    )
    assert response.status_code == 200, response.text
    body: Any = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [animal["identifier"] for animal in items]


def test_a_write_that_cannot_get_its_lock_answers_503_and_stores_nothing(
    server: LiveServer,
) -> None:
    study_id, control_id = server.study_with_control()
    with holding(server, write_lock=True):
        started = time.monotonic()
        response = httpx2.post(
            f"{server.base_url}/studies/{study_id}/animals",
            headers=server.headers,
            json={"identifier": "4101", "arm_id": control_id},
            timeout=30,
        )
        waited = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    assert "nothing from this request was saved" in response.json()["detail"]
    assert waited >= LOCK_TIMEOUT_S * 0.9  # it waited for the lock, then gave up
    assert _ear_tags(server, study_id) == []
    # Sent again once the lock is gone, the same request succeeds, once.
    again = httpx2.post(
        f"{server.base_url}/studies/{study_id}/animals",
        headers=server.headers,
        json={"identifier": "4101", "arm_id": control_id},
    )
    assert again.status_code == 201, again.text
    assert _ear_tags(server, study_id) == ["4101"]


def test_reads_and_key_lookups_do_not_wait_for_a_writer(server: LiveServer) -> None:
    study_id, _ = server.study_with_control()
    with holding(server, write_lock=True):
        me = httpx2.get(f"{server.base_url}/me", headers=server.headers, timeout=30)
        studies = httpx2.get(f"{server.base_url}/studies", headers=server.headers, timeout=30)
        animals = httpx2.get(
            f"{server.base_url}/studies/{study_id}/animals", headers=server.headers, timeout=30
        )
    assert [me.status_code, studies.status_code, animals.status_code] == [200, 200, 200]


def test_an_open_read_transaction_does_not_block_a_write(server: LiveServer) -> None:
    # Before WAL, an open reader on SQLite made the commit fail after the 201 had been sent.
    study_id, control_id = server.study_with_control()
    with holding(server, write_lock=False):
        response = httpx2.post(
            f"{server.base_url}/studies/{study_id}/animals",
            headers=server.headers,
            json={"identifier": "4102", "arm_id": control_id},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        # Acknowledged means committed: visible to the next request at once.
        assert _ear_tags(server, study_id) == ["4102"]


def test_read_your_writes_across_100_create_then_read_pairs(server: LiveServer) -> None:
    study_id, control_id = server.study_with_control()
    failures: list[str] = []
    lock = threading.Lock()

    def pair(i: int) -> None:
        with httpx2.Client(base_url=server.base_url, headers=server.headers, timeout=60) as http:
            if i % 2:  # a treatment arm naming its control, then read at once
                created = http.post(
                    f"/studies/{study_id}/arms",
                    json={
                        "name": f"Inhibitor {i}",
                        "role": "treatment",
                        "agent_class": "inhibitor",
                        "control_arm_id": control_id,
                    },
                )
                path = f"/studies/{study_id}/arms/{created.json().get('id')}"
            else:
                created = http.post(
                    f"/studies/{study_id}/animals",
                    json={"identifier": f"R{i:03d}", "arm_id": control_id},
                )
                path = f"/studies/{study_id}/animals/{created.json().get('id')}"
            read = http.get(path) if created.status_code == 201 else None
            if created.status_code != 201 or read is None or read.status_code != 200:
                with lock:
                    failures.append(f"{i}: {created.status_code} then {read and read.status_code}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(pair, range(100)))
    assert failures == []
    assert len(_ear_tags(server, study_id)) == 50
