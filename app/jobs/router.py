"""HTTP routes to follow jobs (``/jobs``): requests that start heavy work answer 202 with
``Location: /jobs/{id}``; poll it for state, progress, result link or error."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import PrincipalDep, SessionDep
from app.jobs import service
from app.jobs.schemas import JobRead
from app.models import JobState
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES

router = APIRouter(tags=["jobs"], responses=PROBLEM_RESPONSES)


@router.get("/jobs", summary="List the lab's jobs")
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: Annotated[str | None, Query(description="Only jobs of this kind")] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
) -> Page[JobRead]:
    """The lab's jobs, newest first."""
    jobs, total = service.list_jobs(session, principal, page, kind=kind, state=state)
    return Page[JobRead](items=jobs, total=total, limit=page.limit, offset=page.offset)


@router.get("/jobs/{job_id}", summary="Read a job")
def get_job(job_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> JobRead:
    """A job's state (queued, running, succeeded, failed), progress n/N, result so far,
    result link once succeeded, or its error as problem+json."""
    return service.get_job(session, principal, job_id)
