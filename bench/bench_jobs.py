"""Jobs bench: requantification as a job through real processes.

1. SQLite, `osteolux serve` running jobs itself: time from the 202 of
   ``POST /studies/{id}/requantify`` to the job read back ``succeeded``, for a small study.
2. PostgreSQL, `osteolux serve` + `osteolux worker` processes: the same time with one worker;
   then the whole lab (``POST /requantify``: one job per study) requantified by 1 and by 2
   worker processes: clicks per second and the 2-worker/1-worker ratio (issue #14 target
   ≥ 1.7 for 500 clicks; on a 2-core machine shared with the API and PostgreSQL).

Run: ``.venv/bin/python bench/bench_jobs.py [--studies 5 --clicks 30]`` with
``OSTEOLUX_BENCH_POSTGRES_URL`` (or ``OSTEOLUX_TEST_POSTGRES_URL``) naming a throwaway
database (a schema of its own, dropped at the end); without one only part 1 runs. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from app.db import make_engine  # noqa: E402
from imaging import default_hotel, write_synthetic_click  # noqa: E402
from tests.app.clicks import ANIMALS, FLUXES, zip_folder  # noqa: E402
from tests.live_server import LiveServer, live_server_on, osteolux_env  # noqa: E402

JOBS_ENV = {"OSTEOLUX_JOBS_POLL_S": "0.1", "OSTEOLUX_JOBS_HEARTBEAT_S": "1"}


def make_clicks(folder: Path, count: int) -> list[tuple[str, bytes]]:
    mice, sources = default_hotel(FLUXES)
    clicks = []
    for i in range(count):
        number = f"SYN2026071{i // 100:01d}{i % 100:02d}1500"
        click = write_synthetic_click(
            folder / number, mice=mice, sources=sources, click_number=number
        )
        clicks.append((number, zip_folder(click.path)))
    return clicks


def study_with_clicks(server: LiveServer, clicks: list[tuple[str, bytes]]) -> str:
    study_id, control_id = server.study_with_control()
    api = f"{server.base_url}/studies/{study_id}"
    with httpx2.Client(headers=server.headers, timeout=120) as client:
        for animal in ANIMALS:
            client.post(f"{api}/animals", json={"identifier": animal, "arm_id": control_id})
        session = client.post(f"{api}/sessions", json={"acquired_at": "2026-07-15T10:15:00+00:00"})
        for number, content in clicks:
            stored = client.post(
                f"{api}/sessions/{session.json()['id']}/acquisitions",
                files={"file": (f"{number}.zip", content, "application/zip")},
            )
            assert stored.status_code == 201, stored.text
    return study_id


def wait(
    server: LiveServer, location: str, timeout_s: float = 1800, poll_s: float = 0.01
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx2.get(f"{server.base_url}{location}", headers=server.headers).json()
        if job["state"] in {"succeeded", "failed"}:
            return dict(job)
        time.sleep(poll_s)
    raise TimeoutError(location)


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def time_one_study(server: LiveServer, study_id: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the 202 to the job read back finished."""
    response = httpx2.post(
        f"{server.base_url}/studies/{study_id}/requantify", headers=server.headers
    )
    assert response.status_code == 202, response.text
    accepted = time.monotonic()
    job = wait(server, response.headers["Location"])
    return time.monotonic() - accepted, job


def time_lab(server: LiveServer) -> tuple[float, int]:
    """Seconds to requantify every study of the lab, from the lab job's creation to the last
    study job's end as the server recorded them (polled every 0.5 s: a client polling fast
    would take the CPU the workers are measured on); clicks."""
    response = httpx2.post(f"{server.base_url}/requantify", headers=server.headers)
    assert response.status_code == 202, response.text
    lab = wait(server, response.headers["Location"], poll_s=0.5)
    jobs = [wait(server, f"/jobs/{job_id}", poll_s=0.5) for job_id in lab["result"]["jobs"]]
    assert all(j["state"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    seconds = max(_at(j["finished_at"]) for j in jobs) - _at(lab["created_at"])
    return seconds.total_seconds(), sum(j["result"]["acquisitions"] for j in jobs)


@contextmanager
def workers(server: LiveServer, data_dir: Path, count: int) -> Iterator[list[int]]:
    """``count`` worker processes, ready; yields their pids."""
    env = osteolux_env(data_dir, OSTEOLUX_DATABASE_URL=server.database_url, **JOBS_ENV)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--name", f"bench{i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    wait_registered(server, count)  # started and listening before the clock starts
    try:
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc), threads included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def wait_registered(server: LiveServer, count: int, timeout_s: float = 120) -> None:
    """Until ``count`` workers have registered with procrastinate (imports done, listening)."""
    engine = make_engine(server.database_url)
    query = text(f"SELECT count(*) FROM {server.schema}_procrastinate.procrastinate_workers")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as connection:
                if connection.scalar(query) >= count:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} worker(s) did not start in {timeout_s} s")
            time.sleep(0.1)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5, help="the small one + big ones")
    parser.add_argument("--clicks", type=int, default=30, help="clicks per big study")
    parser.add_argument("--small", type=int, default=4, help="clicks of the small study")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    clicks = make_clicks(tmp / "clicks", max(args.clicks, args.small))

    with live_server_on("sqlite", tmp / "sqlite", **JOBS_ENV) as server:
        study = study_with_clicks(server, clicks[: args.small])
        seconds, job = time_one_study(server, study)
        print(
            f"SQLite (serve runs jobs): {args.small}-click study, 202 → {job['state']} in "
            f"{seconds:.2f} s ({args.small / seconds:.1f} clicks/s)"
        )

    url = os.environ.get("OSTEOLUX_BENCH_POSTGRES_URL") or os.environ.get(
        "OSTEOLUX_TEST_POSTGRES_URL"
    )
    if not url:
        print(
            "no OSTEOLUX_BENCH_POSTGRES_URL / OSTEOLUX_TEST_POSTGRES_URL: PostgreSQL part skipped"
        )
        return
    os.environ["OSTEOLUX_TEST_POSTGRES_URL"] = url
    data_dir = tmp / "pg" / "data"
    with live_server_on("postgresql", tmp / "pg", **JOBS_ENV) as server:
        try:
            small = study_with_clicks(server, clicks[: args.small])
            with workers(server, data_dir, 1):
                seconds, job = time_one_study(server, small)
            print(
                f"PostgreSQL (1 osteolux worker): {args.small}-click study, 202 → {job['state']} "
                f"in {seconds:.2f} s ({args.small / seconds:.1f} clicks/s)"
            )
            for _ in range(args.studies - 1):
                study_with_clicks(server, clicks[: args.clicks])
            rates = {}
            for count in (1, 2):
                with workers(server, data_dir, count) as pids:
                    cpu_before = cpu_seconds(pids)
                    load = os.getloadavg()[0]
                    seconds, measured = time_lab(server)
                    cpu = cpu_seconds(pids) - cpu_before
                rates[count] = measured / seconds
                print(
                    f"PostgreSQL, whole lab ({args.studies} studies, {measured} clicks), {count} "
                    f"worker process(es): {seconds:.1f} s, {rates[count]:.1f} clicks/s; workers' "
                    f"CPU {1000 * cpu / measured:.0f} ms per click, {cpu / seconds:.2f} cores busy "
                    f"(load average {load:.1f} on {os.cpu_count()} cores)"
                )
            print(
                f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}× (target ≥ 1.7× for 500 clicks)"
            )
        finally:
            engine = make_engine(server.database_url)
            with engine.begin() as connection:
                connection.execute(
                    text(f"DROP SCHEMA IF EXISTS {server.schema}_procrastinate CASCADE")
                )
            engine.dispose()


if __name__ == "__main__":
    main()
