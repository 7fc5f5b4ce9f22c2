"""Study registry operations, always scoped to the caller's lab."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Animal, ImagingSession, InjectionModel, Study
from app.pagination import PageParams, paginate
from app.studies.schemas import StudyCreate, StudyUpdate


def get_study(session: Session, principal: Principal, study_id: uuid.UUID) -> Study:
    """The study if it exists in the caller's lab; another lab's study is simply not found."""
    study = session.scalar(
        select(Study).where(Study.id == study_id, Study.lab_id == principal.lab_id)
    )
    if study is None:
        raise NotFound(f"No study with id {study_id} in your lab.")
    return study


def lock_study(session: Session, study_id: uuid.UUID) -> None:
    """Serialise writers of one study from here to commit (a no-op lock on SQLite, where
    every write transaction is already exclusive)."""
    session.execute(select(Study.id).where(Study.id == study_id).with_for_update())


def _ensure_unique_name(
    session: Session, principal: Principal, name: str, *, exclude: uuid.UUID | None = None
) -> None:
    query = select(Study.id).where(Study.lab_id == principal.lab_id, Study.name == name)
    if exclude is not None:
        query = query.where(Study.id != exclude)
    if session.scalar(query) is not None:
        raise Conflict(f"Your lab already has a study named '{name}'; choose another name.")


def create_study(
    session: Session, principal: Principal, data: StudyCreate, *, reason: str | None
) -> Study:
    """Register a new study in the caller's lab."""
    principal.require_write()
    _ensure_unique_name(session, principal, data.name)
    study = Study(lab_id=principal.lab_id, **data.model_dump())
    session.add(study)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="study",
        object_id=study.id,
        changes=data.model_dump(mode="json"),
        reason=reason,
    )
    return study


def list_studies(
    session: Session,
    principal: Principal,
    params: PageParams,
    *,
    name_contains: str | None = None,
    injection_model: InjectionModel | None = None,
    include_archived: bool = False,
) -> tuple[list[Study], int]:
    """Studies of the caller's lab, newest day 0 first."""
    query = select(Study).where(Study.lab_id == principal.lab_id)
    if name_contains:
        query = query.where(func.lower(Study.name).contains(name_contains.lower(), autoescape=True))
    if injection_model is not None:
        query = query.where(Study.injection_model == injection_model)
    if not include_archived:
        query = query.where(Study.archived_at.is_(None))
    return paginate(session, query.order_by(Study.day0.desc(), Study.name), params)


def update_study(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: StudyUpdate,
    *,
    reason: str | None,
) -> Study:
    """Change a study's fields; a new day 0 must still precede every animal's end date."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    changes = data.changes()
    if "name" in changes:
        _ensure_unique_name(session, principal, changes["name"], exclude=study.id)
    if "day0" in changes and changes["day0"] != study.day0:
        _check_new_day0(session, study, changes["day0"], reason=reason)
    combination = changes.get("image_combination", study.image_combination)
    if combination != study.image_combination and not reason and _has_images(session, study):
        raise Unprocessable(
            f"Combining each animal's images of a day by {combination.value} instead of "
            f"{study.image_combination.value} changes every series, summary, export and plot "
            "of this study (stored comparisons keep theirs and say their inputs changed). If "
            "that is intended, send the request again with an X-Change-Reason header saying why."
        )
    audit.apply_changes(session, principal, study, changes, object_type="study", reason=reason)
    return study


def _has_images(session: Session, study: Study) -> bool:
    return session.scalar(select(func.count()).where(ImagingSession.study_id == study.id)) != 0


def _check_new_day0(session: Session, study: Study, day0: date, *, reason: str | None) -> None:
    """A new day 0 must precede every animal's end and every imaging session; once sessions
    exist it shifts all their days, so it needs a reason (kept in the audit trail)."""
    earliest_end = session.scalar(
        select(func.min(Animal.end_date)).where(Animal.study_id == study.id)
    )
    if earliest_end is not None and earliest_end < day0:
        raise Unprocessable(
            f"day0 {day0} is after an animal's end date ({earliest_end}); "
            "correct that animal's end record first."
        )
    first, sessions = session.execute(
        select(func.min(ImagingSession.acquired_on), func.count()).where(
            ImagingSession.study_id == study.id
        )
    ).one()
    if not sessions:
        return
    if first < day0:
        raise Unprocessable(
            f"day0 {day0} is after the study's first imaging session ({first}), which would "
            f"then be day {(first - day0).days}. Day 0 is the day of tumour-cell injection: "
            "check the date, or correct the session's date first."
        )
    if not reason:
        shift = (study.day0 - day0).days
        raise Unprocessable(
            f"Moving day 0 from {study.day0} to {day0} changes the day of all {sessions} imaging "
            f"session(s) of this study by {shift:+d} and every series, summary and comparison "
            "built on them. If that is intended, send the request again with an "
            "X-Change-Reason header saying why (it is kept in the audit trail)."
        )


def archive_study(
    session: Session, principal: Principal, study_id: uuid.UUID, *, reason: str | None
) -> Study:
    """Hide a study from default listings; nothing is deleted."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    audit.archive(session, principal, study, object_type="study", reason=reason)
    return study
