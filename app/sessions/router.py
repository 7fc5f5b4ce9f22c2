"""HTTP routes for the imaging sessions of a study."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app import idempotency
from app.deps import PrincipalDep, ReasonHeader, SessionDep
from app.idempotency import IdempotencyKey
from app.labs.roles import EditorsOnly
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES
from app.schemas import DayQuery
from app.sessions import service
from app.sessions.schemas import ImagingSessionCreate, ImagingSessionRead, ImagingSessionUpdate

router = APIRouter(
    prefix="/studies/{study_id}/sessions", tags=["imaging sessions"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Open an imaging session")
def create_imaging_session(
    study_id: uuid.UUID,
    body: ImagingSessionCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    reason: ReasonHeader = None,
    idempotency_key: IdempotencyKey = None,
) -> ImagingSessionRead:
    """Record an imaging day: when, who, which instrument, the D-luciferin dose and time.
    With an Idempotency-Key a retried request returns the session created the first time
    (with the header Idempotency-Replayed: true)."""
    created = service.create_imaging_session(
        session, principal, study_id, body, reason=reason, idempotency_key=idempotency_key
    )
    idempotency.mark_replay(session, response)
    return created


@router.get("", summary="List imaging sessions")
def list_imaging_sessions(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    day_from: DayQuery = None,
    day_to: DayQuery = None,
) -> Page[ImagingSessionRead]:
    """Imaging sessions of a study in time order, with their day since injection."""
    items, total = service.list_imaging_sessions(
        session, principal, study_id, page, day_from=day_from, day_to=day_to
    )
    return Page[ImagingSessionRead](items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{session_id}", summary="Get an imaging session")
def get_imaging_session(
    study_id: uuid.UUID, session_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ImagingSessionRead:
    """One imaging session."""
    row, study = service.get_imaging_session(session, principal, study_id, session_id)
    return service.to_read(row, study)


@router.patch("/{session_id}", summary="Correct an imaging session", dependencies=[EditorsOnly])
def update_imaging_session(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    body: ImagingSessionUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ImagingSessionRead:
    """Correct a session's details; the change and its reason are audited."""
    return service.update_imaging_session(
        session, principal, study_id, session_id, body, reason=reason
    )
