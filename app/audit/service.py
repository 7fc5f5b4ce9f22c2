"""Queries on the audit trail: a lab's (admins) or one study's (admins and editors)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.audit.schemas import AuditEventRead, AuditFilters
from app.auth import Principal
from app.errors import Unprocessable
from app.models import (
    Acquisition,
    Animal,
    ApiKey,
    ApiKeyRole,
    Arm,
    AuditEvent,
    Comparison,
    ImagingSession,
    Readout,
    ReadoutValue,
    Roi,
)
from app.pagination import PageParams
from app.responses import csv_text
from app.studies.service import get_study

LAB_READERS = frozenset({ApiKeyRole.admin})
STUDY_READERS = frozenset({ApiKeyRole.admin, ApiKeyRole.editor})

CSV_COLUMNS = (
    "at",
    "api_key_id",
    "api_key_name",
    "action",
    "object_type",
    "object_id",
    "changes",
    "reason",
    "event_id",
)


def _study_objects(study_id: uuid.UUID) -> dict[str, Select[uuid.UUID]]:
    """For each kind of audited object, the ids of those that belong to the study."""
    sessions = select(ImagingSession.id).where(ImagingSession.study_id == study_id)
    acquisitions = select(Acquisition.id).where(Acquisition.session_id.in_(sessions))
    readouts = select(Readout.id).where(Readout.study_id == study_id)
    return {
        "arm": select(Arm.id).where(Arm.study_id == study_id),
        "animal": select(Animal.id).where(Animal.study_id == study_id),
        "imaging_session": sessions,
        "acquisition": acquisitions,
        "roi": select(Roi.id).where(Roi.acquisition_id.in_(acquisitions)),
        "comparison": select(Comparison.id).where(Comparison.study_id == study_id),
        "readout": readouts,
        # a removed value's events are found through its readout's ``delete_value``
        "readout_value": select(ReadoutValue.id).where(ReadoutValue.readout_id.in_(readouts)),
    }


def _about_study(study_id: uuid.UUID) -> ColumnElement[bool]:
    own = and_(AuditEvent.object_type == "study", AuditEvent.object_id == study_id)
    parts = [
        and_(AuditEvent.object_type == kind, AuditEvent.object_id.in_(ids))
        for kind, ids in _study_objects(study_id).items()
    ]
    return or_(own, *parts)


def _query(
    principal: Principal, filters: AuditFilters, *, study_id: uuid.UUID | None
) -> Select[AuditEvent, str | None]:
    if filters.since and filters.until and filters.since >= filters.until:
        raise Unprocessable(
            f"since ({filters.since.isoformat()}) must be before until "
            f"({filters.until.isoformat()})."
        )
    query = (
        select(AuditEvent, ApiKey.name)
        .outerjoin(ApiKey, ApiKey.id == AuditEvent.api_key_id)
        .where(AuditEvent.lab_id == principal.lab_id)
    )
    if study_id is not None:
        query = query.where(_about_study(study_id))
    conditions = {
        AuditEvent.object_type: filters.object_type,
        AuditEvent.object_id: filters.object_id,
        AuditEvent.api_key_id: filters.api_key_id,
        AuditEvent.action: filters.action,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    if filters.order == "desc":
        return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    return query.order_by(AuditEvent.at, AuditEvent.id)


def _read(event: AuditEvent, key_name: str | None) -> AuditEventRead:
    return AuditEventRead(
        id=event.id,
        at=event.at,
        api_key_id=event.api_key_id,
        api_key_name=key_name,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        changes=event.changes or {},
        reason=event.reason,
    )


def list_events(
    session: Session,
    principal: Principal,
    filters: AuditFilters,
    page: PageParams | None,
    *,
    study_id: uuid.UUID | None = None,
    scope: Literal["lab", "study"] = "lab",
) -> tuple[list[AuditEventRead], int]:
    """The lab's trail (admins; ``study_id`` filters it) or, with ``scope="study"``, one
    study's trail (admins and editors): one page, or every matching event if ``page`` is None."""
    if scope == "lab":
        principal.require_role(LAB_READERS, to="read the lab's audit trail")
    else:
        principal.require_role(STUDY_READERS, to="read a study's audit trail")
    if study_id is not None:
        get_study(session, principal, study_id)
    query = _query(principal, filters, study_id=study_id)
    if page is None:
        rows = session.execute(query).all()
        return [_read(event, name) for event, name in rows], len(rows)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.limit(page.limit).offset(page.offset)).all()
    return [_read(event, name) for event, name in rows], int(total or 0)


def events_csv(events: Iterable[AuditEventRead]) -> str:
    """The events as CSV by the API's convention (:func:`app.responses.csv_text`), one row
    each; ``changes`` as JSON text."""
    return csv_text(
        CSV_COLUMNS,
        (
            [
                e.at,
                e.api_key_id,
                e.api_key_name,
                e.action,
                e.object_type,
                e.object_id,
                json.dumps(e.changes, ensure_ascii=False, sort_keys=True),
                e.reason,
                e.id,
            ]
            for e in events
        ),
    )
