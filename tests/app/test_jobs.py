"""Jobs through the API (in-process client, both databases): requantifying answers 202 with
the job; the test plays the worker (tests/app/jobs.py) and reads the job back. The real
runners (``osteolux serve`` on SQLite, ``osteolux worker`` on PostgreSQL) and ``kill -9``
are in tests/test_jobs_worker.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.acquisitions.images import CALIBRATED
from app.deps import get_read_session_factory
from app.errors import ServiceUnavailable
from app.jobs import repository
from app.jobs.runner import execute
from app.models import AcquisitionFile, Job, JobState, Measurement, utc_now
from app.rois import service as rois_service
from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import FLUXES, post_zip, url, zip_folder
from tests.app.factories import make_study
from tests.app.jobs import finished, run_queued_jobs
from tests.app.problems import assert_problem


def _click(tmp_path: Path, number: str) -> bytes:
    """A synthetic click of the five mice, one spine source each of FLUXES p/s."""
    mice, sources = default_hotel(FLUXES)
    return zip_folder(
        write_synthetic_click(
            tmp_path / number, mice=mice, sources=sources, click_number=number
        ).path
    )


def _upload(client: TestClient, session: dict[str, Any], tmp_path: Path, n: int) -> list[dict]:
    stored = []
    for i in range(n):
        response = post_zip(client, session, _click(tmp_path, f"SYN2026071510{i:02d}00"))
        assert response.status_code == 201, response.text
        stored.append(response.json())
    return stored


def _requantify(client: TestClient, session: dict[str, Any], **params: str) -> Any:
    return client.post(f"/studies/{session['study_id']}/requantify", params=params)


def _measurement_rows(db_session: Session, *, current: bool | None = None) -> int:
    query = select(func.count()).select_from(Measurement)
    if current is not None:
        query = query.where(Measurement.is_current.is_(current))
    return int(db_session.scalar(query) or 0)


def test_requantify_answers_202_and_the_job_measures_every_click_once(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path, db_session: Session
) -> None:
    stored = _upload(client, imaging_session, tmp_path, 2)
    rois = sum(len(s["measurements"]) for s in stored)
    response = _requantify(client, imaging_session)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["state"], queued["kind"], queued["progress"]) == (
        "queued",
        "requantify",
        {"done": 0, "total": None},
    )
    assert queued["inputs"] == {
        "study_id": imaging_session["study_id"],
        "session_id": None,
        "reason": None,
    }
    job = finished(client, response)
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"done": 2, "total": 2}
    assert job["result"] == {"acquisitions": 2, "measurements": rois, "changed": 0}
    assert job["result_url"] == f"/studies/{imaging_session['study_id']}/measurements"
    assert (job["attempts"], job["error"]) == (1, None)
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    # one new current row per ROI, the previous one kept as history: nothing doubled
    assert _measurement_rows(db_session, current=True) == rois
    assert _measurement_rows(db_session, current=False) == rois
    # the values are the simulated sources' (analytic truth: FLUXES p/s on the spine)
    again = client.get(f"{url(imaging_session)}/{stored[0]['id']}").json()["measurements"]
    spine = sorted(m["total_flux_ps"] for m in again if m["site"] == "spine")
    assert_allclose(spine, sorted(FLUXES), rtol=0.05)
    events = client.get(f"/studies/{imaging_session['study_id']}/audit").json()["items"]
    assert any(e["action"] == "requantify" for e in events)


def test_the_same_inputs_while_queued_return_the_same_job(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path
) -> None:
    _upload(client, imaging_session, tmp_path, 1)
    first = _requantify(client, imaging_session).json()
    again = _requantify(client, imaging_session)
    assert again.status_code == 202
    assert again.json()["id"] == first["id"]
    one_session = _requantify(client, imaging_session, session_id=imaging_session["id"]).json()
    assert one_session["id"] != first["id"]
    assert run_queued_jobs(client) == 2
    # once it has ended, the same inputs are a new job
    later = _requantify(client, imaging_session).json()
    assert later["id"] != first["id"]
    listed = client.get("/jobs", params={"kind": "requantify", "limit": 2}).json()
    assert (listed["total"], [j["id"] for j in listed["items"]]) == (
        3,
        [later["id"], one_session["id"]],
    )
    assert client.get("/jobs", params={"state": "succeeded"}).json()["total"] == 2


def test_another_labs_job_is_not_found(
    client: TestClient, other_lab: TestClient, imaging_session: dict[str, Any]
) -> None:
    job = _requantify(client, imaging_session).json()
    assert_problem(other_lab.get(f"/jobs/{job['id']}"), 404, "No job with id")
    assert other_lab.get("/jobs").json()["total"] == 0
    assert_problem(client.get(f"/jobs/{uuid.uuid4()}"), 404)


def test_a_missing_raw_file_fails_the_job_with_a_problem_naming_the_click(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path, db_session: Session
) -> None:
    stored = _upload(client, imaging_session, tmp_path, 1)[0]
    before = _measurement_rows(db_session)
    sha256 = db_session.scalar(
        select(AcquisitionFile.blob_sha256).where(
            AcquisitionFile.acquisition_id == uuid.UUID(stored["id"])
        )
    )
    app: Any = client.app
    app.state.blob_store.path_for(sha256).unlink()
    CALIBRATED.clear()  # as in a worker process, which has not read the click before
    job = finished(client, _requantify(client, imaging_session))
    assert job["state"] == "failed"
    error = job["error"]
    assert (error["status"], error["title"], error["instance"]) == (
        422,
        "Invalid request",
        f"/jobs/{job['id']}",
    )
    assert error["type"].endswith("/invalid-request")
    assert stored["click_number"] in error["detail"] and "missing from the store" in error["detail"]
    assert job["finished_at"] is not None and job["result_url"] is None
    assert _measurement_rows(db_session) == before  # the failed click added nothing


def test_a_transient_store_error_is_retried_then_succeeds(
    client: TestClient,
    imaging_session: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _upload(client, imaging_session, tmp_path, 1)
    app: Any = client.app
    store = app.state.blob_store
    real_open = store.open
    failures = iter([ServiceUnavailable("object store: 503 Slow Down")])

    def flaky_open(sha256: str) -> Any:
        for failure in failures:
            raise failure
        return real_open(sha256)

    monkeypatch.setattr(store, "open", flaky_open)
    CALIBRATED.clear()  # as in a worker process, which has not read the click before
    monkeypatch.setattr(app.state.settings, "jobs_retry_wait_s", 0.0)
    job = finished(client, _requantify(client, imaging_session))
    assert (job["state"], job["attempts"]) == ("queued", 1)
    assert job["error"]["status"] == 503 and "retried" in job["error"]["detail"]
    assert run_queued_jobs(client) == 1
    jobs = client.get("/jobs").json()["items"]
    assert (jobs[0]["state"], jobs[0]["attempts"], jobs[0]["error"]) == ("succeeded", 2, None)


def test_transient_errors_end_the_job_after_the_last_attempt(
    client: TestClient,
    imaging_session: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _upload(client, imaging_session, tmp_path, 1)
    app: Any = client.app

    def unavailable(sha256: str) -> Any:
        raise ServiceUnavailable("object store unreachable")

    monkeypatch.setattr(app.state.blob_store, "open", unavailable)
    CALIBRATED.clear()
    monkeypatch.setattr(app.state.settings, "jobs_retry_wait_s", 0.0)
    monkeypatch.setattr(app.state.settings, "jobs_max_attempts", 2)
    job_id = _requantify(client, imaging_session).json()["id"]
    assert run_queued_jobs(client) == 1
    assert run_queued_jobs(client) == 1
    assert run_queued_jobs(client) == 0
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["state"], job["attempts"], job["error"]["status"]) == ("failed", 2, 503)
    assert "Gave up after 2 attempts" in job["error"]["detail"]


def test_an_interrupted_job_resumes_after_its_last_committed_click(
    client: TestClient,
    imaging_session: dict[str, Any],
    tmp_path: Path,
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = _upload(client, imaging_session, tmp_path, 2)
    rois = sum(len(s["measurements"]) for s in stored)
    job_id = _requantify(client, imaging_session).json()["id"]
    real = rois_service._requantify_one
    calls = {"n": 0}

    def dies_on_the_second_click(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # stands for the runner's process dying mid-click
        real(*args, **kwargs)

    monkeypatch.setattr(rois_service, "_requantify_one", dies_on_the_second_click)
    with pytest.raises(KeyboardInterrupt):
        run_queued_jobs(client)
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["state"], job["progress"]) == ("running", {"done": 1, "total": 2})
    monkeypatch.setattr(rois_service, "_requantify_one", real)
    app: Any = client.app
    execute(
        uuid.UUID(job_id),
        app.dependency_overrides[get_read_session_factory](),
        app.state.blob_store,
        app.state.settings,
        runner="recovered",
    )
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["state"], job["attempts"], job["progress"]) == (
        "succeeded",
        2,
        {"done": 2, "total": 2},
    )
    assert job["result"] == {"acquisitions": 2, "measurements": rois, "changed": 0}
    # every ROI measured again exactly once: its upload's row (history) and one current row
    assert _measurement_rows(db_session, current=True) == rois
    assert _measurement_rows(db_session, current=False) == rois


def test_a_viewer_may_follow_jobs_but_not_start_them(
    client: TestClient, imaging_session: dict[str, Any]
) -> None:
    viewer = client.post("/keys", json={"name": "reader", "role": "viewer"}).json()
    headers = {"Authorization": f"Bearer {viewer['key']}"}
    job = _requantify(client, imaging_session).json()
    assert client.get(f"/jobs/{job['id']}", headers=headers).status_code == 200
    assert_problem(
        client.post(f"/studies/{imaging_session['study_id']}/requantify", headers=headers), 403
    )
    assert client.get("/jobs").json()["total"] == 1


def test_the_lock_keeps_a_second_job_of_a_study_waiting(
    db_session: Session, client: TestClient
) -> None:
    """The embedded runner takes no job whose study a live running job holds."""
    lab_id = uuid.UUID(client.get("/me").json()["lab_id"])
    now = utc_now()

    def job(key: str, lock: str, age_s: float, **state: Any) -> Job:
        created = now - timedelta(seconds=age_s)
        return Job(
            lab_id=lab_id,
            kind="requantify",
            key=key,
            lock=lock,
            params={},
            created_at=created,
            run_after=created,
            **state,
        )

    running = job("a", "study:1", 3, state=JobState.running, heartbeat_at=now)
    waiting = job("b", "study:1", 2)
    other = job("c", "study:2", 1)
    db_session.add_all([running, waiting, other])
    db_session.flush()
    stale_before = now - timedelta(seconds=30)
    assert repository.next_claimable(db_session, now, stale_before) is other
    other.state = JobState.succeeded
    db_session.flush()
    assert repository.next_claimable(db_session, now, stale_before) is None
    # its runner went silent (killed): the running job is taken up again before the waiting one
    later = now + timedelta(seconds=31)
    assert repository.next_claimable(db_session, later, later - timedelta(seconds=30)) is running


def test_the_whole_lab_is_requantified_as_one_job_per_study(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path, db_session: Session
) -> None:
    stored = _upload(client, imaging_session, tmp_path, 1)[0]
    empty = make_study(client, name="no images yet")
    lab_job = finished(
        client, client.post("/requantify", headers={"X-Change-Reason": "new flat field"})
    )
    assert (lab_job["state"], lab_job["progress"]) == ("succeeded", {"done": 2, "total": 2})
    study_jobs = [client.get(f"/jobs/{i}").json() for i in lab_job["result"]["jobs"]]
    assert [j["inputs"]["study_id"] for j in study_jobs] == [
        imaging_session["study_id"],
        empty["id"],
    ]
    assert {j["inputs"]["reason"] for j in study_jobs} == {"new flat field"}
    assert run_queued_jobs(client) == 2
    results = [client.get(f"/jobs/{j['id']}").json()["result"] for j in study_jobs]
    rois = len(stored["measurements"])
    assert results == [
        {"acquisitions": 1, "measurements": rois, "changed": 0},
        {"acquisitions": 0, "measurements": 0, "changed": 0},
    ]
    assert _measurement_rows(db_session, current=False) == rois


def test_a_twin_submitted_at_the_same_moment_gets_the_same_job(
    client: TestClient, imaging_session: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check for an active job with these inputs and the insert are not atomic; the
    unique index is: a twin that passed the check at the same moment answers that job."""
    first = _requantify(client, imaging_session).json()
    real = repository.active_with_key
    checks: list[Job | None] = []

    def raced(*args: Any) -> Job | None:
        # the twin's first check ran before the first job was committed: it saw none
        checks.append(real(*args) if checks else None)
        return checks[-1]

    monkeypatch.setattr(repository, "active_with_key", raced)
    twin = _requantify(client, imaging_session)
    assert twin.status_code == 202, twin.text
    assert twin.json()["id"] == first["id"]
    assert checks[0] is None and checks[1] is not None  # refused by the index, then found
    assert client.get("/jobs").json()["total"] == 1


def test_requantify_steps_do_not_wait_for_the_disk_on_postgresql(
    client: TestClient,
    imaging_session: dict[str, Any],
    tmp_path: Path,
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A requantification's steps only recompute what the database holds: their commits skip
    the WAL flush (``SET LOCAL synchronous_commit``: that transaction only)."""
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("synchronous_commit is a PostgreSQL setting (SQLite has no such wait)")
    _upload(client, imaging_session, tmp_path, 2)
    seen: list[str | None] = []
    real = rois_service._requantify_one

    def spy(session: Session, result: dict[str, Any], **kwargs: Any) -> None:
        seen.append(session.scalar(text("SHOW synchronous_commit")))
        real(session, result, **kwargs)

    monkeypatch.setattr(rois_service, "_requantify_one", spy)
    job = finished(client, _requantify(client, imaging_session))
    assert job["state"] == "succeeded", job
    assert seen == ["off", "off"]
