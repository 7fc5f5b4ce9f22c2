"""Animal operations: identifiers unique per study, arms of the same study, sane dates."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.animals.schemas import AnimalCreate, AnimalUpdate
from app.auth import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Animal, Arm, Sex, Study
from app.pagination import PageParams, paginate
from app.studies.service import get_study


def get_animal(
    session: Session, principal: Principal, study_id: uuid.UUID, animal_id: uuid.UUID
) -> Animal:
    """The animal if it belongs to this study of the caller's lab."""
    study = get_study(session, principal, study_id)
    animal = session.scalar(
        select(Animal).where(Animal.id == animal_id, Animal.study_id == study.id)
    )
    if animal is None:
        raise NotFound(f"No animal with id {animal_id} in study {study_id}.")
    return animal


def _check_arm(session: Session, study: Study, arm_id: uuid.UUID) -> None:
    arm = session.scalar(select(Arm).where(Arm.id == arm_id, Arm.study_id == study.id))
    if arm is None:
        raise Unprocessable(
            f"arm_id {arm_id} is not an arm of this study; list the study's arms at "
            f"/studies/{study.id}/arms."
        )


def _check_dates(study: Study, date_of_birth: date | None, end_date: date | None) -> None:
    if end_date is not None and end_date < study.day0:
        raise Unprocessable(
            f"end.date {end_date} is before the study's day 0 ({study.day0}); "
            "an animal's series cannot end before tumour cells were injected."
        )
    if date_of_birth is not None and date_of_birth > study.day0:
        raise Unprocessable(
            f"date_of_birth {date_of_birth} is after the study's day 0 ({study.day0})."
        )


def _ensure_unique_identifier(
    session: Session, study: Study, identifier: str, *, exclude: uuid.UUID | None = None
) -> None:
    query = select(Animal.id).where(Animal.study_id == study.id, Animal.identifier == identifier)
    if exclude is not None:
        query = query.where(Animal.id != exclude)
    if session.scalar(query) is not None:
        raise Conflict(
            f"Animal '{identifier}' already exists in this study; identifiers (ear tags) "
            "must be unique within a study."
        )


def _end_columns(end: dict[str, Any] | None) -> dict[str, Any]:
    end = end or {}
    return {
        "end_date": end.get("date"),
        "end_reason": end.get("reason"),
        "end_note": end.get("note"),
    }


def create_animal(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: AnimalCreate,
    *,
    reason: str | None,
) -> Animal:
    """Add an animal to an arm of a study of the caller's lab."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    _ensure_unique_identifier(session, study, data.identifier)
    _check_arm(session, study, data.arm_id)
    _check_dates(study, data.date_of_birth, data.end.date if data.end else None)
    fields = data.model_dump(exclude={"end"})
    animal = Animal(study_id=study.id, **fields, **_end_columns(data.model_dump()["end"]))
    session.add(animal)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="animal",
        object_id=animal.id,
        changes=data.model_dump(mode="json"),
        reason=reason,
    )
    return animal


def list_animals(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    params: PageParams,
    *,
    identifier: str | None = None,
    arm_id: uuid.UUID | None = None,
    cage: str | None = None,
    sex: Sex | None = None,
    ended: bool | None = None,
    include_archived: bool = False,
) -> tuple[list[Animal], int]:
    """Animals of one study ordered by identifier."""
    study = get_study(session, principal, study_id)
    query = select(Animal).where(Animal.study_id == study.id)
    if identifier is not None:
        query = query.where(Animal.identifier == identifier)
    if arm_id is not None:
        query = query.where(Animal.arm_id == arm_id)
    if cage is not None:
        query = query.where(Animal.cage == cage)
    if sex is not None:
        query = query.where(Animal.sex == sex)
    if ended is not None:
        query = query.where(Animal.end_date.is_not(None) if ended else Animal.end_date.is_(None))
    if not include_archived:
        query = query.where(Animal.archived_at.is_(None))
    return paginate(session, query.order_by(Animal.identifier), params)


def update_animal(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    animal_id: uuid.UUID,
    data: AnimalUpdate,
    *,
    reason: str | None,
) -> Animal:
    """Change an animal (e.g. record its end: death, humane endpoint, withdrawal, study end)."""
    principal.require_write()
    animal = get_animal(session, principal, study_id, animal_id)
    study = session.get_one(Study, animal.study_id)  # loaded (and lab-checked) by get_animal
    changes = data.changes()
    if "end" in changes:
        changes |= _end_columns(changes.pop("end"))
    if "identifier" in changes:
        _ensure_unique_identifier(session, study, changes["identifier"], exclude=animal.id)
    if "arm_id" in changes:
        _check_arm(session, study, changes["arm_id"])
    _check_dates(
        study,
        changes.get("date_of_birth", animal.date_of_birth),
        changes.get("end_date", animal.end_date),
    )
    audit.apply_changes(session, principal, animal, changes, object_type="animal", reason=reason)
    return animal


def archive_animal(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    animal_id: uuid.UUID,
    *,
    reason: str | None,
) -> Animal:
    """Hide an animal from default listings; its images and measurements stay."""
    principal.require_write()
    animal = get_animal(session, principal, study_id, animal_id)
    audit.archive(session, principal, animal, object_type="animal", reason=reason)
    return animal
