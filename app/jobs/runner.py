"""Running one job, the same code under every runner (procrastinate worker, poller thread).

A job works in steps, each committed in its own short transaction together with the job's
progress and result so far: a runner killed mid-step loses only that step's uncommitted
work, and the next runner resumes after the last committed step (nothing done twice).

Errors: a transient one (the database unreachable or a lock not granted, the object store
answering 503) puts the job back in the queue with exponential backoff until
``jobs_max_attempts``; any other ends the job ``failed`` with an RFC 9457 problem saying
what was wrong.
"""

from __future__ import annotations

import errno
import importlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal
from app.config import Settings
from app.db import transaction
from app.errors import PROBLEM_TYPE_BASE, OsteoluxError, ServiceUnavailable, StorageFull
from app.jobs.schemas import PLAN
from app.models import ApiKeyRole, Job, JobState, utc_now
from app.storage import BlobStore

log = logging.getLogger(__name__)

HANDLERS: dict[str, str] = {
    "requantify": "app.rois.service:run_requantify_job",
    "requantify_lab": "app.rois.service:run_requantify_lab_job",
    "comparison": "app.jobs.comparisons:run_comparison_job",
    "power": "app.design.power:run_power_job",
    "export": "app.exports.service:run_export_job",
}
"""Job kind → ``module:function(JobContext)`` (imported when a job of that kind runs)."""


class TransientJobError(Exception):
    """The job met a transient error and was queued again; the dispatcher retries it."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ServiceUnavailable | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass
class JobContext:
    """What a job's handler works with: its inputs, and steps committed with its progress."""

    job_id: uuid.UUID
    kind: str
    lab_id: uuid.UUID
    key_id: uuid.UUID | None
    params: dict[str, Any]
    done: int
    result: dict[str, Any]
    factory: sessionmaker[Session]
    read_factory: sessionmaker[Session]
    """Read-only transactions (no write lock on SQLite), e.g. to load a computation's inputs."""
    store: BlobStore
    settings: Settings
    result_url: str | None = None
    on_success: Callable[[Session], None] | None = None
    """Work committed with the job's success (e.g. its audit event)."""
    _total: int | None = field(default=None, repr=False)

    @property
    def principal(self) -> Principal:
        """Who submitted it, for the audit trail (the role does not matter there)."""
        return Principal(lab_id=self.lab_id, key_id=self.key_id, role=ApiKeyRole.editor)  # type: ignore[arg-type]

    def plan(
        self, make: Callable[[Session], list[str]], *, result: dict[str, Any] | None = None
    ) -> list[str]:
        """The job's steps, fixed when it first starts (a resumed job keeps them), and its
        result before the first step (e.g. counts at zero)."""
        if PLAN in self.params:
            return list(self.params[PLAN])
        with transaction(self.factory) as session:
            job = _locked(session, self.job_id)
            steps = make(session)
            job.params = {**job.params, PLAN: steps}
            job.progress_total = len(steps)
            job.result = self.result = dict(result or {})
            job.heartbeat_at = utc_now()
        self.params = job.params
        return steps

    def step(
        self,
        number: int,
        work: Callable[[Session, dict[str, Any]], None],
        *,
        wait_for_disk: bool = True,
    ) -> None:
        """Do step ``number`` (from 0) in one transaction with the job's progress and result.
        A step already committed (by an earlier, interrupted run) is skipped. The job's row is
        locked only once the work is done (a long computation that writes at its end holds
        no lock meanwhile); if another runner committed the step first, this one's work is
        rolled back.

        ``wait_for_disk=False`` (steps that only recompute what the database already holds,
        e.g. a requantification): on PostgreSQL the commit does not wait for its WAL to reach
        the disk (``synchronous_commit off`` for this transaction). A crash of the database
        server can then lose the last fraction of a second of such steps — each together with
        the progress that counts it, so the job resumes before them and does them again;
        nothing is half-done, and the job's end is always committed to disk. (Otherwise
        every click waits for a WAL flush, on which concurrent workers queue.)"""
        if self.done > number:
            return
        result = dict(self.result)
        try:
            with transaction(self.factory) as session:
                if not wait_for_disk and session.get_bind().dialect.name == "postgresql":
                    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                work(session, result)
                job = _locked(session, self.job_id)
                if job.progress_done != number:
                    raise _StepTaken
                job.result = result
                job.progress_done = number + 1
                job.heartbeat_at = utc_now()
        except _StepTaken:
            with self.read_factory() as session:
                job = _locked(session, self.job_id, lock=False)
                self.result, self.done = dict(job.result or {}), job.progress_done
            return
        self.result, self.done = result, number + 1
        if self.settings.jobs_step_pause_s:
            time.sleep(self.settings.jobs_step_pause_s)


class _StepTaken(Exception):
    """Another runner committed this step first (this one was thought dead)."""


def _locked(session: Session, job_id: uuid.UUID, *, lock: bool = True) -> Job:
    job = session.get(Job, job_id, with_for_update=lock)
    if job is None:
        raise LookupError(f"job {job_id} vanished")
    return job


def execute(
    job_id: uuid.UUID,
    factory: sessionmaker[Session],
    store: BlobStore,
    settings: Settings,
    *,
    runner: str,
    read_factory: sessionmaker[Session] | None = None,
) -> JobState | None:
    """Run the job to its end (or to a transient error, raised as ``TransientJobError``
    after it is queued again); its final state, or None if it had already ended."""
    context = _start(factory, read_factory or factory, job_id, store, settings, runner)
    if context is None:
        return None
    module, function = HANDLERS[context.kind].split(":")
    handler = getattr(importlib.import_module(module), function)
    try:
        handler(context)
    except Exception as exc:
        return _after_error(factory, settings, job_id, exc)
    with transaction(factory) as session:
        job = _locked(session, job_id)
        if context.on_success is not None:
            context.on_success(session)
        job.state = JobState.succeeded
        job.result_url = context.result_url
        job.finished_at = utc_now()
        job.error = None
    return JobState.succeeded


def _start(
    factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    job_id: uuid.UUID,
    store: BlobStore,
    settings: Settings,
    runner: str,
) -> JobContext | None:
    with transaction(factory) as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.state in (JobState.succeeded, JobState.failed):
            return None
        now = utc_now()
        job.state = JobState.running
        job.attempts += 1
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.runner = runner
        return JobContext(
            job_id=job.id,
            kind=job.kind,
            lab_id=job.lab_id,
            key_id=job.created_by_key_id,
            params=dict(job.params),
            done=job.progress_done,
            result=dict(job.result or {}),
            factory=factory,
            read_factory=read_factory,
            store=store,
            settings=settings,
        )


def problem(exc: BaseException, job_id: uuid.UUID) -> dict[str, Any]:
    """The RFC 9457 problem a failed job carries."""
    if isinstance(exc, OsteoluxError):
        status, title, slug, detail = exc.status, exc.title, exc.slug, exc.detail
    else:
        status, title, slug = 500, "Internal error", "internal-error"
        detail = f"The job stopped on an unexpected {type(exc).__name__}; see the server log."
    return {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"/jobs/{job_id}",
    }


def _after_error(
    factory: sessionmaker[Session], settings: Settings, job_id: uuid.UUID, exc: Exception
) -> JobState:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("storage full in job %s: %s", job_id, exc)
        exc = StorageFull(  # retried as the 503 a request gets: it resumes once there is room
            "The server's file store is full; an administrator must free or add space on it "
            "(the blob directory or the object store's disk)."
        )
    transient = _is_transient(exc)
    if not isinstance(exc, OsteoluxError) and not transient:
        log.exception("job %s failed", job_id)
    with transaction(factory) as session:
        job = _locked(session, job_id)
        if transient and job.attempts < settings.jobs_max_attempts:
            wait_s = settings.jobs_retry_wait_s * 2 ** (job.attempts - 1)
            job.state = JobState.queued
            job.run_after = utc_now() + timedelta(seconds=wait_s)
            job.heartbeat_at = None
            job.error = problem(
                ServiceUnavailable(
                    f"Attempt {job.attempts} met a transient error ({type(exc).__name__}); "
                    f"retried in {wait_s:g} s."
                ),
                job_id,
            )
        else:
            job.state = JobState.failed
            job.finished_at = utc_now()
            job.error = problem(
                ServiceUnavailable(
                    f"Gave up after {job.attempts} attempts on transient errors "
                    f"(last: {type(exc).__name__}); submit it again once the service is back."
                )
                if transient
                else exc,
                job_id,
            )
        state = job.state
    if state == JobState.queued:
        raise TransientJobError(str(exc)) from exc
    return state
