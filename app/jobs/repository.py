"""Queries on jobs shared by the service and the runners."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from app.models import Job, JobState
from app.models.jobs import ACTIVE_STATES


def of_lab(lab_id: uuid.UUID) -> Select[Job]:
    return select(Job).where(Job.lab_id == lab_id)


def active_with_key(session: Session, lab_id: uuid.UUID, key: str) -> Job | None:
    return session.scalar(of_lab(lab_id).where(Job.key == key, Job.state.in_(ACTIVE_STATES)))


def claimable(now: datetime, stale_before: datetime) -> Select[Job]:
    """Jobs a runner may take, oldest first: queued and due, or running without a sign of
    life since ``stale_before`` (its runner was killed), and whose lock no live job holds."""
    held = select(Job.lock).where(Job.state == JobState.running, Job.heartbeat_at >= stale_before)
    return (
        select(Job)
        .where(
            or_(
                (Job.state == JobState.queued) & (Job.run_after <= now),
                (Job.state == JobState.running) & (Job.heartbeat_at < stale_before),
            ),
            Job.lock.not_in(held),
        )
        .order_by(Job.created_at)
    )


def next_claimable(session: Session, now: datetime, stale_before: datetime) -> Job | None:
    return session.scalar(claimable(now, stale_before).limit(1).with_for_update(skip_locked=True))


def take(session: Session, job: Job, runner: str, now: datetime) -> bool:
    """Claim ``job`` if nobody changed it since it was read (compare and set)."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.state == job.state,
            Job.heartbeat_at.is_(None)
            if job.heartbeat_at is None
            else Job.heartbeat_at == job.heartbeat_at,
        )
        .values(state=JobState.running, runner=runner, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
