"""HTTP routes for the arms of a study."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.arms import service
from app.arms.schemas import ArmCreate, ArmRead, ArmUpdate
from app.deps import PrincipalDep, ReasonHeader, SessionDep
from app.models import AgentClass, ArmRole
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES

router = APIRouter(prefix="/studies/{study_id}/arms", tags=["arms"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add an arm")
def create_arm(
    study_id: uuid.UUID,
    body: ArmCreate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ArmRead:
    """Add a control arm (vehicle, isotype) or a treatment arm (inhibitor, neutralizing
    antibody) that names its control arm."""
    return ArmRead.model_validate(
        service.create_arm(session, principal, study_id, body, reason=reason)
    )


@router.get("", summary="List arms")
def list_arms(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    role: ArmRole | None = None,
    agent_class: AgentClass | None = None,
    include_archived: bool = False,
) -> Page[ArmRead]:
    """Arms of a study, filterable by role and agent class."""
    items, total = service.list_arms(
        session,
        principal,
        study_id,
        page,
        role=role,
        agent_class=agent_class,
        include_archived=include_archived,
    )
    return Page[ArmRead](
        items=[ArmRead.model_validate(a) for a in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{arm_id}", summary="Get an arm")
def get_arm(
    study_id: uuid.UUID, arm_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ArmRead:
    """One arm of a study."""
    return ArmRead.model_validate(service.get_arm(session, principal, study_id, arm_id))


@router.patch("/{arm_id}", summary="Update an arm")
def update_arm(
    study_id: uuid.UUID,
    arm_id: uuid.UUID,
    body: ArmUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ArmRead:
    """Change some fields of an arm (dose, schedule, its control...)."""
    return ArmRead.model_validate(
        service.update_arm(session, principal, study_id, arm_id, body, reason=reason)
    )


@router.post("/{arm_id}/archive", summary="Archive an arm")
def archive_arm(
    study_id: uuid.UUID,
    arm_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ArmRead:
    """Hide an arm from default listings; nothing is deleted."""
    return ArmRead.model_validate(
        service.archive_arm(session, principal, study_id, arm_id, reason=reason)
    )
