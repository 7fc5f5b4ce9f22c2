"""HTTP routes to read the audit trail (it is written by every change, never through here)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.audit import service
from app.audit.schemas import AuditEventRead, AuditFilters, audit_filters
from app.deps import PrincipalDep, SessionDep
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES, csv_or_json, csv_response

router = APIRouter(tags=["audit trail"], responses=PROBLEM_RESPONSES)

FiltersDep = Annotated[AuditFilters, Depends(audit_filters)]
FormatQuery = Annotated[
    Literal["json", "csv"], Query(description="json: one page; csv: every matching event")
]
# Both trails answer a JSON page, or with format=csv every matching event.
_TRAIL: dict[str, Any] = {
    "response_model": Page[AuditEventRead],
    "responses": csv_or_json(
        "A JSON page, or with format=csv every matching event",
        "at,api_key_id,api_key_name,action,object_type,object_id,changes,reason,event_id\r\n"
        "2026-07-08T10:15:00.123456+00:00,5e1c…,PI laptop,update,study,7d3c…,"
        '"{""operator"": [null, ""R. Chen""]}",operator was missing,0b9a…\r\n',
    ),
}


def _answer(
    events: list[AuditEventRead], total: int, page: PageDep, format: str, filename: str
) -> Page[AuditEventRead] | Response:
    if format == "csv":
        return csv_response(service.events_csv(events), filename)
    return Page[AuditEventRead](items=events, total=total, limit=page.limit, offset=page.offset)


@router.get("/audit", summary="Read the lab's audit trail", **_TRAIL)
def list_lab_events(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    filters: FiltersDep,
    study_id: Annotated[uuid.UUID | None, Query(description="Only events of this study")] = None,
    format: FormatQuery = "json",
) -> Page[AuditEventRead] | Response:
    """Every change in your lab (API keys included): who, when, what (old → new) and why,
    filtered by study, object, key and time (admin keys only). Read-only."""
    events, total = service.list_events(
        session, principal, filters, None if format == "csv" else page, study_id=study_id
    )
    return _answer(events, total, page, format, "audit-trail.csv")


@router.get("/studies/{study_id}/audit", summary="Read a study's audit trail", **_TRAIL)
def list_study_events(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    filters: FiltersDep,
    format: FormatQuery = "json",
) -> Page[AuditEventRead] | Response:
    """Every change to the study and its arms, animals, sessions, images, ROIs and
    comparisons: who, when, what (old → new) and why (admin and editor keys). Read-only."""
    events, total = service.list_events(
        session,
        principal,
        filters,
        None if format == "csv" else page,
        study_id=study_id,
        scope="study",
    )
    return _answer(events, total, page, format, f"audit-trail-study-{study_id}.csv")
