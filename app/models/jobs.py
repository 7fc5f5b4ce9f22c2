"""Jobs: heavy work (requantifying, comparisons) run after the request that asked for it.

A row here is the job as the lab sees it (``GET /jobs/{id}``): its kind and inputs, its
state, progress, result link or error. Which process runs it is the dispatcher's business
(procrastinate on PostgreSQL, the in-process poller on SQLite); every runner goes through
this row, so the resource reads the same on both.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.base import IdMixin, UTCDateTime, str_enum, utc_now


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


ACTIVE_STATES = (JobState.queued, JobState.running)
_ACTIVE_SQL = "state IN ('queued', 'running')"


class Job(IdMixin, Base):
    __tablename__ = "job"
    __table_args__ = (
        # Idempotency: one active job per set of inputs (keyed by them) in a lab.
        Index(
            "uq_job_lab_id_key_active",
            "lab_id",
            "key",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_job_state_run_after", "state", "run_after"),
        Index("ix_job_lab_id_created_at", "lab_id", "created_at"),
    )

    lab_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(64))
    lock: Mapped[str] = mapped_column(String(80))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[JobState] = mapped_column(
        str_enum(JobState, "job_state"), default=JobState.queued
    )
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    # what the job has done so far (kept with each step, so a resumed job adds to it)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_url: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the embedded runner: not before this time (retry backoff); last sign of life
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runner: Mapped[str | None] = mapped_column(String(120))
