"""Submitting and reading jobs; the job is handed to its dispatcher in the submitting
request's transaction, so an acknowledged job is always both recorded and queued."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from fastapi import Response, status
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import Principal
from app.config import Settings
from app.errors import NotFound
from app.jobs import repository
from app.jobs.schemas import JobRead
from app.models import Job
from app.pagination import PageParams, paginate

PROCRASTINATE_TASK = "osteolux.run_job"
PROCRASTINATE_QUEUE = "osteolux"


def backend(settings: Settings, dialect: str) -> str:
    """``procrastinate`` or ``embedded`` for this database (``auto``: procrastinate on
    PostgreSQL, embedded on SQLite, which procrastinate does not support)."""
    if settings.jobs_backend != "auto":
        return settings.jobs_backend
    return "procrastinate" if dialect == "postgresql" else "embedded"


def queue_schema(current_schema: str) -> str:
    """procrastinate's PostgreSQL schema beside osteolux's (made by the jobs migration):
    ``procrastinate`` beside ``public``, ``<schema>_procrastinate`` beside another."""
    return "procrastinate" if current_schema == "public" else f"{current_schema}_procrastinate"


def job_key(kind: str, inputs: dict[str, Any]) -> str:
    """SHA-256 of the kind and inputs (canonical JSON): equal inputs, equal key."""
    canonical = json.dumps({"kind": kind, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    kind: str,
    inputs: dict[str, Any],
    lock: str,
    extra: dict[str, Any] | None = None,
) -> Job:
    """The queued or running job with these inputs, else a new one, queued. ``lock`` names
    what two jobs must never work on at once (e.g. ``study:<id>``); ``extra`` parameters
    (a reason) travel with the job without being part of its key."""
    key = job_key(kind, inputs)
    existing = repository.active_with_key(session, principal.lab_id, key)
    if existing is not None:
        return existing
    job = Job(
        lab_id=principal.lab_id,
        created_by_key_id=principal.key_id,
        kind=kind,
        key=key,
        lock=lock,
        params={**inputs, **(extra or {})},
    )
    try:
        with session.begin_nested():  # a twin submitted at the same moment won the race
            session.add(job)
            session.flush()
    except IntegrityError:
        twin = repository.active_with_key(session, principal.lab_id, key)
        if twin is None:
            raise
        return twin
    if backend(settings, session.get_bind().dialect.name) == "procrastinate":
        _defer(session, job)
    return job


def _defer(session: Session, job: Job) -> None:
    """Queue the job for procrastinate workers in this transaction (its SQL function, in its
    schema). Its ``lock`` keeps two jobs of one study apart; its ``queueing_lock`` (the job
    key) refuses a second waiting copy of the same inputs."""
    schema = queue_schema(str(session.scalar(text("SELECT current_schema()"))))
    session.execute(
        text(
            f"SELECT {schema}.procrastinate_defer_jobs_v1(ARRAY[ROW("
            ":queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), NULL"
            f")::{schema}.procrastinate_job_to_defer_v1])"
        ),
        {
            "queue": PROCRASTINATE_QUEUE,
            "task": PROCRASTINATE_TASK,
            "lock": job.lock,
            "args": json.dumps({"job_id": str(job.id)}),
        },
    )


def accepted(response: Response, job: Job) -> JobRead:
    """202 Accepted with ``Location`` of the job, and the job resource."""
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobRead.of(job)


def get_job(session: Session, principal: Principal, job_id: uuid.UUID) -> JobRead:
    job = session.scalar(repository.of_lab(principal.lab_id).where(Job.id == job_id))
    if job is None:
        raise NotFound(f"No job with id {job_id} in your lab.")
    return JobRead.of(job)


def list_jobs(
    session: Session,
    principal: Principal,
    page: PageParams,
    *,
    kind: str | None = None,
    state: str | None = None,
) -> tuple[list[JobRead], int]:
    query = repository.of_lab(principal.lab_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if state is not None:
        query = query.where(Job.state == state)
    jobs, total = paginate(session, query.order_by(Job.created_at.desc(), Job.id), page)
    return [JobRead.of(job) for job in jobs], total
