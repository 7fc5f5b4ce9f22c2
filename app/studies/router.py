"""HTTP routes for studies (thin: parse, call one service function, return)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import PrincipalDep, ReasonHeader, SessionDep
from app.models import InjectionModel
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES
from app.studies import roi_template, service
from app.studies.schemas import StudyCreate, StudyRead, StudyUpdate

router = APIRouter(prefix="/studies", tags=["studies"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a study")
def create_study(
    body: StudyCreate, session: SessionDep, principal: PrincipalDep, reason: ReasonHeader = None
) -> StudyRead:
    """Register a new study (cell line, injection model, day 0, IACUC number) in your lab."""
    return StudyRead.model_validate(service.create_study(session, principal, body, reason=reason))


@router.get("", summary="List studies")
def list_studies(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    name_contains: Annotated[
        str | None, Query(max_length=200, description="Part of the name, e.g. TGF")
    ] = None,
    injection_model: InjectionModel | None = None,
    include_archived: bool = False,
) -> Page[StudyRead]:
    """List your lab's studies, newest day 0 first; archived ones only when asked."""
    items, total = service.list_studies(
        session,
        principal,
        page,
        name_contains=name_contains,
        injection_model=injection_model,
        include_archived=include_archived,
    )
    return Page[StudyRead](
        items=[StudyRead.model_validate(s) for s in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{study_id}", summary="Get a study")
def get_study(study_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> StudyRead:
    """One study of your lab."""
    return StudyRead.model_validate(service.get_study(session, principal, study_id))


@router.patch("/{study_id}", summary="Update a study")
def update_study(
    study_id: uuid.UUID,
    body: StudyUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> StudyRead:
    """Change some fields of a study; the change and its reason go to the audit trail."""
    return StudyRead.model_validate(
        service.update_study(session, principal, study_id, body, reason=reason)
    )


@router.post("/{study_id}/archive", summary="Archive a study")
def archive_study(
    study_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, reason: ReasonHeader = None
) -> StudyRead:
    """Hide a study from default listings. Nothing is deleted; raw data stays."""
    return StudyRead.model_validate(
        service.archive_study(session, principal, study_id, reason=reason)
    )


@router.get("/{study_id}/roi-template", summary="Get the study's ROI template")
def get_roi_template(
    study_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> roi_template.RoiTemplateRead:
    """The site ROIs (in body coordinates) placed on every mouse found in this study's images."""
    return roi_template.get_roi_template(session, principal, study_id)


@router.put("/{study_id}/roi-template", summary="Set the study's ROI template")
def set_roi_template(
    study_id: uuid.UUID,
    body: roi_template.RoiTemplate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> roi_template.RoiTemplateRead:
    """Replace the site template used for new images of this study (audited); images
    already measured keep their ROIs."""
    return roi_template.set_roi_template(session, principal, study_id, body, reason=reason)
