"""Review of jobs and a full file store: a job that fills the disk (an export writes a file
per step) is put back with StorageFull, like any transient error, and resumes after its
last committed file once space is freed — not failed as an 'unexpected OSError'."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.storage import LocalBlobStore
from tests.app.jobs import run_queued_jobs
from tests.app.test_analysis_api import study  # noqa: F401
from tests.app.test_exports import _export


def test_an_export_that_fills_the_disk_waits_and_resumes(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submitted = _export(client, study["id"], comparisons=False)
    assert submitted.status_code == 202, submitted.text
    location = submitted.headers["Location"]
    staging = LocalBlobStore.staging
    made = 0

    def fills_up(self: LocalBlobStore, **kwargs: Any) -> Any:
        nonlocal made
        made += 1
        if made > 2:  # two files fit
            raise OSError(errno.ENOSPC, "No space left on device")
        return staging(self, **kwargs)

    monkeypatch.setattr(LocalBlobStore, "staging", fills_up)
    run_queued_jobs(client)
    job = client.get(location).json()
    assert job["state"] == "queued", job  # again, after a wait
    assert "StorageFull" in job["error"]["detail"], job["error"]
    assert job["progress"]["done"] == 2
    monkeypatch.setattr(LocalBlobStore, "staging", staging)  # space freed
    run_queued_jobs(client)
    job = client.get(location).json()
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2 and len(job["result"]["files"]) == job["progress"]["total"] - 1
