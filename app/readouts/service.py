"""Readout definitions and per-animal values: lab-scoped, editors write, every change audited
(a correction or removal of a value needs a reason and keeps the old value in the trail).

Why one long module: a readout and its values are one aggregate — a value is
checked against its readout's kind, and a readout's new kind against every stored value —
so both halves (readouts, then values below the marker) use the same checks. Bulk import
from CSV is :mod:`app.readouts.imports`; the analyses are :mod:`app.readouts.analysis`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Animal, Arm, Readout, ReadoutKind, ReadoutValue, Study
from app.pagination import PageParams, paginate
from app.readouts.schemas import (
    ReadoutCreate,
    ReadoutRead,
    ReadoutUpdate,
    ReadoutValueCreate,
    ReadoutValueRead,
    ReadoutValueUpdate,
)
from app.responses import csv_text
from app.studies.service import get_study, lock_study


def value_problem(kind: ReadoutKind, value: float) -> str | None:
    """Why ``value`` cannot be a value of a readout of this kind (None if it can)."""
    if not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if kind == ReadoutKind.count and (value < 0 or value != int(value)):
        return f"{value:g} is not a count (a whole number ≥ 0)"
    if kind == ReadoutKind.binary and value not in (0, 1):
        return f"{value:g} is not 0 or 1 (a binary readout)"
    return None


def _check_value(readout: Readout, value: float) -> None:
    if (problem := value_problem(readout.kind, value)) is not None:
        raise Unprocessable(f"Readout '{readout.name}': {problem}.")


def _check_measured_on(study: Study, on: date | None) -> None:
    if on is not None and on < study.day0:
        raise Unprocessable(
            f"measured_on {on} is before the study's day 0 ({study.day0}); a readout is taken "
            "after tumour cells were injected."
        )


def get_readout(
    session: Session, principal: Principal, study_id: uuid.UUID, readout_id: uuid.UUID
) -> Readout:
    """The readout if it belongs to this study of the caller's lab."""
    study = get_study(session, principal, study_id)
    readout = session.scalar(
        select(Readout).where(Readout.id == readout_id, Readout.study_id == study.id)
    )
    if readout is None:
        raise NotFound(f"No readout with id {readout_id} in study {study_id}.")
    return readout


def _ensure_unique(
    session: Session,
    study_id: uuid.UUID,
    name: str,
    site: str | None,
    *,
    exclude: uuid.UUID | None = None,
) -> None:
    query = select(Readout.id).where(
        Readout.study_id == study_id,
        Readout.name == name,
        Readout.site.is_(None) if site is None else Readout.site == site,
    )
    if exclude is not None:
        query = query.where(Readout.id != exclude)
    if session.scalar(query) is not None:
        where = f" at site {site}" if site else " without a site"
        raise Conflict(f"The study already has a readout '{name}'{where}.")


def _read(readout: Readout, values: int) -> ReadoutRead:
    return ReadoutRead.model_validate(readout).model_copy(update={"values": values})


def _counts(session: Session, readout_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(ReadoutValue.readout_id, func.count())
        .where(ReadoutValue.readout_id.in_(readout_ids))
        .group_by(ReadoutValue.readout_id)
    )
    return {rid: n for rid, n in rows}


def create_readout(
    session: Session, principal: Principal, study_id: uuid.UUID, data: ReadoutCreate
) -> ReadoutRead:
    """Define a readout of a study."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    lock_study(session, study.id)  # two identical definitions at once: the second sees the first
    site = data.site.value if data.site else None
    _ensure_unique(session, study.id, data.name, site)
    readout = Readout(
        study_id=study.id,
        name=data.name,
        unit=data.unit,
        kind=data.kind,
        site=site,
        description=data.description,
    )
    session.add(readout)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="readout",
        object_id=readout.id,
        changes=data.model_dump(mode="json"),
    )
    return _read(readout, 0)


def list_readouts(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    page: PageParams,
    *,
    include_archived: bool = False,
) -> tuple[list[ReadoutRead], int]:
    """A page of the study's readouts by name and site, with how many animals have a value,
    and how many readouts there are."""
    study = get_study(session, principal, study_id)
    query = select(Readout).where(Readout.study_id == study.id)
    if not include_archived:
        query = query.where(Readout.archived_at.is_(None))
    readouts, total = paginate(
        session, query.order_by(Readout.name, Readout.site, Readout.id), page
    )
    counts = _counts(session, [r.id for r in readouts])
    return [_read(r, counts.get(r.id, 0)) for r in readouts], total


def read_readout(
    session: Session, principal: Principal, study_id: uuid.UUID, readout_id: uuid.UUID
) -> ReadoutRead:
    readout = get_readout(session, principal, study_id, readout_id)
    return _read(readout, _counts(session, [readout.id]).get(readout.id, 0))


def update_readout(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    data: ReadoutUpdate,
    *,
    reason: str | None,
) -> ReadoutRead:
    """Rename or redefine a readout; a new kind must fit every stored value."""
    principal.require_write()
    readout = get_readout(session, principal, study_id, readout_id)
    changes = data.changes()
    if "site" in changes:
        changes["site"] = changes["site"].value if changes["site"] else None
    name, site = changes.get("name", readout.name), changes.get("site", readout.site)
    if (name, site) != (readout.name, readout.site):
        lock_study(session, readout.study_id)
        _ensure_unique(session, readout.study_id, name, site, exclude=readout.id)
    if "kind" in changes and changes["kind"] != readout.kind:
        values = session.scalars(
            select(ReadoutValue.value).where(ReadoutValue.readout_id == readout.id)
        )
        bad = [v for v in values if value_problem(changes["kind"], v)]
        if bad:
            raise Unprocessable(
                f"Readout '{readout.name}' has {len(bad)} value(s) that are not "
                f"{changes['kind'].value} (e.g. {bad[0]:g}); correct them first."
            )
    audit.apply_changes(session, principal, readout, changes, object_type="readout", reason=reason)
    return read_readout(session, principal, study_id, readout_id)


def archive_readout(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    *,
    reason: str | None,
) -> ReadoutRead:
    """Hide a readout from default listings; its values stay."""
    principal.require_write()
    readout = get_readout(session, principal, study_id, readout_id)
    audit.archive(session, principal, readout, object_type="readout", reason=reason)
    return read_readout(session, principal, study_id, readout_id)


# ----------------------------------------------------------------------------------- values


def values_query() -> Select[ReadoutValue, Readout, Animal, Arm]:
    """Values with their readout, animal and arm, in readout, arm and animal order."""
    return (
        select(ReadoutValue, Readout, Animal, Arm)
        .join(Readout, Readout.id == ReadoutValue.readout_id)
        .join(Animal, Animal.id == ReadoutValue.animal_id)
        .join(Arm, Arm.id == Animal.arm_id)
        .order_by(Readout.name, Readout.site, Readout.id, Arm.name, Animal.identifier)
    )


def _value_read(
    value: ReadoutValue, readout: Readout, animal: Animal, arm: Arm
) -> ReadoutValueRead:
    return ReadoutValueRead(
        id=value.id,
        readout_id=readout.id,
        readout=readout.name,
        site=readout.site,
        unit=readout.unit,
        animal_id=animal.id,
        animal=animal.identifier,
        arm_id=arm.id,
        arm=arm.name,
        value=value.value,
        measured_on=value.measured_on,
        note=value.note,
        created_at=value.created_at,
        created_by_key_id=value.created_by_key_id,
        updated_at=value.updated_at,
        updated_by_key_id=value.updated_by_key_id,
    )


def list_values(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    page: PageParams | None,
    *,
    readout_id: uuid.UUID | None = None,
) -> tuple[list[ReadoutValueRead], int]:
    """A page (None: all) of the values of one readout (or of every readout of the study),
    and how many there are."""
    study = get_study(session, principal, study_id)
    query = values_query().where(Readout.study_id == study.id)
    if readout_id is not None:
        query = query.where(Readout.id == get_readout(session, principal, study_id, readout_id).id)
    total = None
    if page is not None:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        query = query.limit(page.limit).offset(page.offset)
    values = [_value_read(v, r, animal, arm) for v, r, animal, arm in session.execute(query)]
    return values, len(values) if total is None else total


VALUES_CSV_HEADER = (
    "animal",
    "arm",
    "readout",
    "site",
    "value",
    "unit",
    "measured_on",
    "note",
    "value_id",
)


def values_csv(values: Sequence[ReadoutValueRead]) -> str:
    """Tidy CSV, one row per animal and readout; it imports again unchanged."""
    return csv_text(
        VALUES_CSV_HEADER,
        (
            [v.animal, v.arm, v.readout, v.site, v.value, v.unit, v.measured_on, v.note, v.id]
            for v in values
        ),
    )


def _animal(session: Session, study: Study, animal_id: uuid.UUID) -> Animal:
    animal = session.scalar(
        select(Animal).where(Animal.id == animal_id, Animal.study_id == study.id)
    )
    if animal is None:
        raise Unprocessable(
            f"animal_id {animal_id} is not an animal of this study; list them at "
            f"/studies/{study.id}/animals."
        )
    return animal


def create_value(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    data: ReadoutValueCreate,
) -> ReadoutValueRead:
    """Record one animal's value of a readout (one value per animal and readout)."""
    principal.require_write()
    readout = get_readout(session, principal, study_id, readout_id)
    study = session.get_one(Study, readout.study_id)
    animal = _animal(session, study, data.animal_id)
    _check_value(readout, data.value)
    _check_measured_on(study, data.measured_on)
    lock_study(session, study.id)
    stored = session.scalar(
        select(ReadoutValue).where(
            ReadoutValue.readout_id == readout.id, ReadoutValue.animal_id == animal.id
        )
    )
    if stored is not None:
        raise Conflict(
            f"Animal {animal.identifier} already has {stored.value:g} for '{readout.name}'; "
            f"correct it with PATCH …/readouts/{readout.id}/values/{stored.id} and an "
            "X-Change-Reason."
        )
    value = ReadoutValue(
        readout_id=readout.id,
        animal_id=animal.id,
        value=data.value,
        measured_on=data.measured_on,
        note=data.note,
        created_by_key_id=principal.key_id,
    )
    session.add(value)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="readout_value",
        object_id=value.id,
        changes=data.model_dump(mode="json"),
    )
    return _value_read(value, readout, animal, session.get_one(Arm, animal.arm_id))


def _get_value(
    session: Session, readout: Readout, value_id: uuid.UUID
) -> tuple[ReadoutValue, Animal]:
    value = session.scalar(
        select(ReadoutValue).where(
            ReadoutValue.id == value_id, ReadoutValue.readout_id == readout.id
        )
    )
    if value is None:
        raise NotFound(f"No value with id {value_id} of readout {readout.id}.")
    return value, session.get_one(Animal, value.animal_id)


def _require_reason(reason: str | None, what: str) -> str:
    if not reason:
        raise Unprocessable(
            f"{what} changes recorded study data; send an X-Change-Reason header saying why "
            "(kept in the audit trail with the old value)."
        )
    return reason


def update_value(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    value_id: uuid.UUID,
    data: ReadoutValueUpdate,
    *,
    reason: str | None,
) -> ReadoutValueRead:
    """Correct a value; the audit trail keeps [old, new] and the reason."""
    principal.require_write()
    readout = get_readout(session, principal, study_id, readout_id)
    value, animal = _get_value(session, readout, value_id)
    changes: dict[str, Any] = data.changes()
    if "value" in changes:
        _check_value(readout, changes["value"])
    if "measured_on" in changes:
        _check_measured_on(session.get_one(Study, readout.study_id), changes["measured_on"])
    if any(getattr(value, k) != v for k, v in changes.items()):
        reason = _require_reason(reason, "Correcting a readout value")
        value.updated_by_key_id = principal.key_id
    audit.apply_changes(
        session, principal, value, changes, object_type="readout_value", reason=reason
    )
    return _value_read(value, readout, animal, session.get_one(Arm, animal.arm_id))


def delete_value(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    value_id: uuid.UUID,
    *,
    reason: str | None,
) -> None:
    """Remove a value entered by mistake; the audit trail keeps it with the reason, on the
    readout (which stays, so the event can still be found from its study)."""
    principal.require_write()
    readout = get_readout(session, principal, study_id, readout_id)
    value, animal = _get_value(session, readout, value_id)
    reason = _require_reason(reason, "Removing a readout value")
    audit.record(
        session,
        principal,
        action="delete_value",
        object_type="readout",
        object_id=readout.id,
        changes={
            "value_id": value.id,
            "animal": animal.identifier,
            "value": value.value,
            "measured_on": value.measured_on,
            "note": value.note,
        },
        reason=reason,
    )
    session.delete(value)
    session.flush()
