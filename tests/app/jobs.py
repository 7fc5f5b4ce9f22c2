"""Jobs under the in-process test client: a request answers 202 and the test plays the
worker, running the queued jobs with the same ``runner.execute`` the workers use, inside the
test's transaction (no other process can see its uncommitted rows)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from app.deps import get_read_session_factory
from app.jobs.runner import TransientJobError, execute
from app.models import Job, JobState


def run_queued_jobs(client: TestClient) -> int:
    """Run every queued job (oldest first) to its end; how many ran."""
    app: Any = client.app
    # tests/app/conftest.py points the app's session factories at the test's transaction
    factory = app.dependency_overrides[get_read_session_factory]()
    with factory() as session:
        queued = list(
            session.scalars(
                select(Job.id).where(Job.state == JobState.queued).order_by(Job.created_at)
            )
        )
    for job_id in queued:
        with contextlib.suppress(TransientJobError):  # queued again: the test sees it
            execute(job_id, factory, app.state.blob_store, app.state.settings, runner="test")
    return len(queued)


def finished(client: TestClient, response: Response) -> dict[str, Any]:
    """The job a 202 answer started, once run: asserts 202 with ``Location`` and the job."""
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location == f"/jobs/{response.json()['id']}"
    run_queued_jobs(client)
    job = client.get(location)
    assert job.status_code == 200, job.text
    return job.json()


def succeeded(client: TestClient, response: Response) -> dict[str, Any]:
    """The result of the job a 202 answer started, which must have succeeded."""
    job = finished(client, response)
    assert job["state"] == "succeeded", job
    return job["result"]
