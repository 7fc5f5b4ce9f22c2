"""Concurrent duplicate uploads over real HTTP store one acquisition, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text

from app.db import make_engine
from imaging import default_hotel, write_synthetic_click
from tests.app.conftest import postgres_url
from tests.live_server import live_server, run_cli


def _execute(url: str, statement: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path / "data"
    env: dict[str, str] = {}
    schema = None
    if request.param == "postgresql":
        url = postgres_url()
        schema = f"concurrency_{uuid.uuid4().hex[:8]}"
        _execute(url, f"CREATE SCHEMA {schema}")
        env["OSTEOLUX_DATABASE_URL"] = f"{url}?options=-csearch_path%3D{schema}"
    created = run_cli(data_dir, "create-lab", "Concurrency Lab", env=env)
    key = created.stdout.strip().splitlines()[-1]
    with live_server(data_dir, **env) as base_url:
        yield base_url, {"X-API-Key": key}
    if schema:
        _execute(postgres_url(), f"DROP SCHEMA {schema} CASCADE")


def _click_zip(folder: Path) -> bytes:
    mice, sources = default_hotel()
    click = write_synthetic_click(
        folder, mice=mice, sources=sources, click_number="SYN20260715101500"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in click.path.iterdir():
            archive.write(path, path.name)
    return buffer.getvalue()


def test_concurrent_duplicates_make_one_acquisition(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base_url, headers = server
    study = httpx2.post(
        f"{base_url}/studies",
        headers=headers,
        json={
            "name": "S",
            "cell_line": "MDA-MB-231",
            "injection_model": "intracardiac",
            "day0": "2026-07-01",
        },
    ).json()
    assert "id" in study, study
    control = httpx2.post(
        f"{base_url}/studies/{study['id']}/arms",
        headers=headers,
        json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
    ).json()
    for i in range(5):
        httpx2.post(
            f"{base_url}/studies/{study['id']}/animals",
            headers=headers,
            json={"identifier": str(3466 + i), "arm_id": control["id"]},
        ).raise_for_status()
    session = httpx2.post(
        f"{base_url}/studies/{study['id']}/sessions",
        headers=headers,
        json={"acquired_at": "2026-07-15T10:15:00+02:00"},
    ).json()
    target = f"{base_url}/studies/{study['id']}/sessions/{session['id']}/acquisitions"
    content = _click_zip(tmp_path / "click")

    def upload(i: int) -> httpx2.Response:
        key = {"Idempotency-Key": "same-key"} if i % 2 else {}
        return httpx2.post(
            target, headers=headers | key, files={"file": ("c.zip", content)}, timeout=120
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(upload, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert all(s in (200, 201, 409) for s in statuses), [
        (r.status_code, r.text[-600:]) for r in responses if r.status_code not in (200, 201)
    ]
    ok = [r for r in responses if r.status_code in (200, 201)]
    assert len({r.json()["id"] for r in ok}) == 1
    listed = httpx2.get(target, headers=headers).json()
    assert len(listed) == 1
