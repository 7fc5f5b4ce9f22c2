"""Imaging sessions: one imaging day of a study."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, idempotency
from app.auth import Principal
from app.errors import NotFound, Unprocessable
from app.models import ImagingSession, Study
from app.pagination import PageParams, paginate
from app.sessions.schemas import ImagingSessionCreate, ImagingSessionRead, ImagingSessionUpdate
from app.studies.service import get_study


def to_read(session_row: ImagingSession, study: Study) -> ImagingSessionRead:
    return ImagingSessionRead.model_validate(
        {
            **{k: getattr(session_row, k) for k in ImagingSessionRead.model_fields if k != "day"},
            "day": (session_row.acquired_on - study.day0).days,
        }
    )


def _check_times(study: Study, acquired_at: datetime, injected_at: datetime | None) -> date:
    acquired_on = acquired_at.date()  # the instrument's local date, before UTC conversion
    if acquired_on < study.day0:
        raise Unprocessable(
            f"acquired_at {acquired_at.isoformat()} is before the study's day 0 ({study.day0}); "
            "check the instrument clock or the study's day 0."
        )
    _check_injection(acquired_at, injected_at)
    return acquired_on


def _check_injection(acquired_at: datetime, injected_at: datetime | None) -> None:
    if injected_at is not None and not (
        0 <= (acquired_at - injected_at).total_seconds() <= 6 * 3600
    ):
        raise Unprocessable(
            "luciferin_injected_at must be before acquired_at and at most 6 hours earlier "
            "(D-luciferin peaks about 8–15 minutes after i.p. injection)."
        )


def _in_utc(fields: dict[str, Any]) -> dict[str, Any]:
    """Times are kept in UTC (the local date was taken first, into ``acquired_on``)."""
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in fields.items()}


def get_imaging_session(
    session: Session, principal: Principal, study_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[ImagingSession, Study]:
    study = get_study(session, principal, study_id)
    row = session.scalar(
        select(ImagingSession).where(
            ImagingSession.id == session_id, ImagingSession.study_id == study.id
        )
    )
    if row is None:
        raise NotFound(f"No imaging session with id {session_id} in study {study_id}.")
    return row, study


def create_imaging_session(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: ImagingSessionCreate,
    *,
    reason: str | None,
    idempotency_key: str | None = None,
) -> ImagingSessionRead:
    """Open an imaging session of a study (once per Idempotency-Key)."""
    principal.require_write(allow_instrument=True)
    study = get_study(session, principal, study_id)
    acquired_on = _check_times(study, data.acquired_at, data.luciferin_injected_at)

    def create() -> ImagingSessionRead:
        row = ImagingSession(
            study_id=study.id, acquired_on=acquired_on, **_in_utc(data.model_dump())
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            principal,
            action="create",
            object_type="imaging_session",
            object_id=row.id,
            changes=data.model_dump(mode="json"),
            reason=reason,
        )
        return to_read(row, study)

    request = idempotency.fingerprint("session", study.id, data.model_dump_json())
    return idempotency.run_once(
        session, principal, idempotency_key, request, ImagingSessionRead, create
    )


def list_imaging_sessions(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    params: PageParams,
    *,
    day_from: int | None = None,
    day_to: int | None = None,
) -> tuple[list[ImagingSessionRead], int]:
    """Sessions of a study in time order."""
    study = get_study(session, principal, study_id)
    query = select(ImagingSession).where(ImagingSession.study_id == study.id)
    if day_from is not None:
        query = query.where(
            ImagingSession.acquired_on >= date.fromordinal(study.day0.toordinal() + day_from)
        )
    if day_to is not None:
        query = query.where(
            ImagingSession.acquired_on <= date.fromordinal(study.day0.toordinal() + day_to)
        )
    rows, total = paginate(session, query.order_by(ImagingSession.acquired_at), params)
    return [to_read(r, study) for r in rows], total


def update_imaging_session(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    data: ImagingSessionUpdate,
    *,
    reason: str | None,
) -> ImagingSessionRead:
    """Correct a session's details (e.g. a wrong instrument clock)."""
    principal.require_write(allow_instrument=True)
    row, study = get_imaging_session(session, principal, study_id, session_id)
    changes = data.changes()
    acquired_at = changes.get("acquired_at", row.acquired_at)
    injected_at = changes.get("luciferin_injected_at", row.luciferin_injected_at)
    if "acquired_at" in changes:
        changes["acquired_on"] = _check_times(study, acquired_at, injected_at)
    else:  # the stored time is UTC; its local date is acquired_on
        _check_injection(acquired_at, injected_at)
    audit.apply_changes(
        session, principal, row, _in_utc(changes), object_type="imaging_session", reason=reason
    )
    return to_read(row, study)
