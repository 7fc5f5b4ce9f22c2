"""The real job runners, as separate processes: `osteolux serve` runs jobs itself on SQLite,
`osteolux worker` (procrastinate) on PostgreSQL. A runner killed with SIGKILL mid-job: the
job is taken up again and finishes with every ROI measured again exactly once (measurement
rows counted); two jobs of one study never run at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, text

from app.db import make_engine
from app.models import Measurement
from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES, zip_folder
from tests.live_server import ROOT, LiveServer, live_server, live_server_on, osteolux_env, run_cli

# fast runners: look for work every 50 ms, a heartbeat every 0.2 s, silent 1.5 s = dead
FAST_JOBS = {
    "OSTEOLUX_JOBS_POLL_S": "0.05",
    "OSTEOLUX_JOBS_HEARTBEAT_S": "0.2",
    "OSTEOLUX_JOBS_STALLED_S": "1.5",
    "OSTEOLUX_JOBS_RETRY_WAIT_S": "0",
    # a click every >= 0.4 s: the job is surely caught between its first and last click
    "OSTEOLUX_JOBS_STEP_PAUSE_S": "0.4",
}
CLICKS = 3


def _study_with_clicks(server: LiveServer, tmp_path: Path, clicks: int = CLICKS) -> dict[str, Any]:
    """A study with the five mice and ``clicks`` synthetic clicks in one session."""
    study_id, control_id = server.study_with_control()
    api = f"{server.base_url}/studies/{study_id}"
    for animal in ANIMALS:
        made = httpx2.post(
            f"{api}/animals",
            headers=server.headers,
            json={"identifier": animal, "arm_id": control_id},
        )
        assert made.status_code == 201, made.text
    session = httpx2.post(
        f"{api}/sessions",
        headers=server.headers,
        json={"acquired_at": "2026-07-15T10:15:00+00:00"},
    ).json()
    mice, sources = default_hotel(FLUXES)
    rois = 0
    for i in range(clicks):
        number = f"SYN2026071510{i:02d}00"
        click = write_synthetic_click(
            tmp_path / number, mice=mice, sources=sources, click_number=number
        )
        stored = httpx2.post(
            f"{api}/sessions/{session['id']}/acquisitions",
            headers=server.headers,
            files={"file": (f"{number}.zip", zip_folder(click.path), "application/zip")},
            timeout=60,
        )
        assert stored.status_code == 201, stored.text
        rois += len(stored.json()["measurements"])
    return {"study_id": study_id, "session_id": session["id"], "rois": rois}


def _requantify(server: LiveServer, study_id: str, **params: str) -> str:
    response = httpx2.post(
        f"{server.base_url}/studies/{study_id}/requantify", headers=server.headers, params=params
    )
    assert response.status_code == 202, response.text
    return str(response.headers["Location"])


def _job(server: LiveServer, location: str) -> dict[str, Any]:
    response = httpx2.get(f"{server.base_url}{location}", headers=server.headers, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(server: LiveServer, location: str, until: Any, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = _job(server, location)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job did not get there in {timeout_s} s: {job}"
        time.sleep(0.02)


def _measurement_rows(database_url: str) -> tuple[int, int]:
    """(current, history) measurement rows."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            count = select(func.count()).select_from(Measurement)
            current = connection.scalar(count.where(Measurement.is_current.is_(True)))
            history = connection.scalar(count.where(Measurement.is_current.is_(False)))
    finally:
        engine.dispose()
    return int(current or 0), int(history or 0)


def _mid_job(job: dict[str, Any]) -> bool:
    assert job["state"] in {"queued", "running"}, job["error"]  # it must not finish before the kill
    return job["progress"]["done"] >= 1


def _done(job: dict[str, Any]) -> bool:
    return job["state"] in {"succeeded", "failed"}


def test_worker_refuses_sqlite(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "worker")
    assert result.returncode == 2
    assert "needs PostgreSQL" in result.stderr and "osteolux serve` runs jobs" in result.stderr


def test_serve_runs_jobs_on_sqlite_and_resumes_one_after_kill_9(tmp_path: Path) -> None:
    with live_server_on("sqlite", tmp_path, **FAST_JOBS) as server:
        study = _study_with_clicks(server, tmp_path)
        # killed with SIGKILL after the job's first click
        location = _requantify(server, study["study_id"])
        _wait(server, location, _mid_job)
        pids = _serving_pids(server.base_url)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    # a new `osteolux serve` on the same database takes the job up again
    with live_server(tmp_path / "data", extra_args=("--no-migrate",), **FAST_JOBS) as base_url:
        job = _wait(replace(server, base_url=base_url), location, _done)
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2 and job["progress"] == {"done": CLICKS, "total": CLICKS}
    assert job["result"] == {"acquisitions": CLICKS, "measurements": study["rois"], "changed": 0}
    # every ROI measured again exactly once: its upload's row (history) and one current row
    assert _measurement_rows(server.database_url) == (study["rois"], study["rois"])


def _serving_pids(base_url: str) -> list[int]:
    port = base_url.rsplit(":", 1)[1].encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port in cmdline:
                pids.append(int(entry))
    assert pids, f"no `osteolux serve` on port {port.decode()}"
    return pids


@contextmanager
def _worker(
    server: LiveServer, data_dir: Path, name: str, *, concurrency: int = 1
) -> Iterator[subprocess.Popen[str]]:
    """`osteolux worker` on the server's database and raw-file store."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            "--name",
            name,
            "--concurrency",
            str(concurrency),
        ],
        cwd=ROOT,
        env=osteolux_env(data_dir, OSTEOLUX_DATABASE_URL=server.database_url, **FAST_JOBS),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture
def postgres_server(tmp_path: Path) -> Iterator[LiveServer]:
    pytest.importorskip("procrastinate")
    with live_server_on("postgresql", tmp_path, **FAST_JOBS) as server:
        yield server
        # the queue's schema beside the server's (the jobs migration made it)
        engine = make_engine(server.database_url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {server.schema}_procrastinate CASCADE"))
        engine.dispose()


def test_a_worker_killed_mid_job_on_postgresql_loses_doubles_and_overlaps_nothing(
    postgres_server: LiveServer, tmp_path: Path
) -> None:
    """Two jobs of one study (the whole study, then its session: other inputs): the first
    worker is killed after the first job's first click; a new worker with two job slots
    finishes both, one after the other."""
    server, data_dir = postgres_server, tmp_path / "data"
    study = _study_with_clicks(server, tmp_path)
    whole = _requantify(server, study["study_id"])
    one_session = _requantify(server, study["study_id"], session_id=study["session_id"])
    assert whole != one_session
    assert _job(server, whole)["state"] == "queued"  # no worker yet: it waits
    with _worker(server, data_dir, "first") as first:
        _wait(server, whole, _mid_job)
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert _job(server, one_session)["state"] == "queued"  # the study's lock is still held
    with _worker(server, data_dir, "second", concurrency=2):
        jobs = [_wait(server, location, _done) for location in (whole, one_session)]
    assert [j["state"] for j in jobs] == ["succeeded", "succeeded"], jobs
    assert jobs[0]["attempts"] == 2 and jobs[0]["progress"] == {"done": CLICKS, "total": CLICKS}
    assert [j["result"] for j in jobs] == [
        {"acquisitions": CLICKS, "measurements": study["rois"], "changed": 0}
    ] * 2
    # never at once: the second started after the first had finished
    assert jobs[0]["finished_at"] <= jobs[1]["started_at"], jobs
    # each ROI: its upload's row and one per job, nothing lost or doubled by the kill
    assert _measurement_rows(server.database_url) == (study["rois"], 2 * study["rois"])
