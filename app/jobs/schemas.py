"""The job resource as the API writes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import Job, JobState


class JobProgress(BaseModel):
    done: int = Field(description="Steps finished (e.g. clicks measured again).")
    total: int | None = Field(description="Steps in all; null until the job has started.")


class JobRead(BaseModel):
    """A job: what it does, where it stands, and its result or error."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "6b0e3c1a-52d4-4a8e-9d41-2f0c5a7e9b13",
                "kind": "requantify",
                "key": "4f1c…",
                "inputs": {"study_id": "7d3c…", "session_id": None},
                "state": "running",
                "progress": {"done": 12, "total": 40},
                "result": {"acquisitions": 12, "measurements": 60, "changed": 3},
                "result_url": None,
                "error": None,
                "attempts": 1,
                "created_at": "2026-12-01T08:00:00Z",
                "started_at": "2026-12-01T08:00:01Z",
                "finished_at": None,
            }
        }
    )

    id: uuid.UUID
    kind: str = Field(description="What the job does: requantify, comparison.")
    key: str = Field(
        description="SHA-256 of the kind and inputs: the same inputs submitted while this "
        "job is queued or running return this job."
    )
    inputs: dict[str, Any] = Field(description="What the job was asked to do.")
    state: JobState = Field(description="queued → running → succeeded | failed.")
    progress: JobProgress
    result: dict[str, Any] | None = Field(
        description="What the job has done (counts so far while it runs; its answer once "
        "succeeded)."
    )
    result_url: str | None = Field(description="Where its result is read once succeeded.")
    error: dict[str, Any] | None = Field(
        description="Why it failed, as RFC 9457 problem+json (type, title, status, detail)."
    )
    attempts: int = Field(
        description="Times a runner started it (retries after transient "
        "errors or a lost worker count too)."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobRead:
        return cls(
            id=job.id,
            kind=job.kind,
            key=job.key,
            inputs={k: v for k, v in job.params.items() if k != PLAN},
            state=job.state,
            progress=JobProgress(done=job.progress_done, total=job.progress_total),
            result=job.result,
            result_url=job.result_url,
            error=job.error,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


PLAN = "plan"
"""Key of a job's params holding the steps it fixed when it first started (not an input)."""
