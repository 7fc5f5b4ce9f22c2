"""Design before the study: randomisation of animals into arms (``cohorts.randomise``).

Randomisation writes nothing but the animals' ``arm_id`` (each move audited as an animal
update) and one ``randomise`` event on the study holding seed, method, assignments and
balance: the audit trail is the record, so no table of its own is needed. Power and sample
size by simulation, the other design question, is in :mod:`app.design.power`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import cohorts
from app import audit
from app.analysis.errors import run_cohorts
from app.arms.service import get_arm
from app.auth import Principal
from app.design.schemas import (
    MAX_SEED,
    ArmBalanceRead,
    ArmCount,
    AssignmentRead,
    BalanceTestRead,
    RandomisationCreate,
    RandomisationRead,
    RandomisationRecord,
    StratumCountRead,
)
from app.errors import Conflict, NotFound, Unprocessable
from app.measurements.schemas import SeriesPoint
from app.measurements.service import UNITS, load_points
from app.models import Animal, Arm, ArmRole, AuditEvent, Study
from app.pagination import PageParams, paginate
from app.studies.service import get_study

RANDOMISE_ACTION = "randomise"
NOT_RECORDED = "not recorded"


def _listed(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def new_seed(seed: int | None) -> int:
    """The request's seed, or a fresh random one (recorded so the draw can be repeated)."""
    return secrets.randbelow(MAX_SEED + 1) if seed is None else seed


def _arms(
    session: Session, principal: Principal, study: Study, ids: list[uuid.UUID] | None
) -> list[Arm]:
    if ids is None:
        arms = list(
            session.scalars(
                select(Arm)
                .where(Arm.study_id == study.id, Arm.archived_at.is_(None))
                .order_by(Arm.role != ArmRole.control, Arm.name)
            )
        )
        if len(arms) < 2:
            raise Unprocessable(
                f"The study has {len(arms)} arm(s) that are not archived; randomisation needs "
                "at least two (add them at /studies/{id}/arms)."
            )
        return arms
    if len(set(ids)) != len(ids):
        raise Unprocessable("arm_ids lists an arm twice.")
    arms = []
    for arm_id in ids:
        try:
            arm = get_arm(session, principal, study.id, arm_id)
        except NotFound:
            raise Unprocessable(f"arm_ids: {arm_id} is not an arm of this study.") from None
        if arm.archived_at is not None:
            raise Unprocessable(f"Arm '{arm.name}' is archived; animals cannot be put in it.")
        arms.append(arm)
    return arms


def _animals(session: Session, study: Study, ids: list[uuid.UUID] | None) -> list[Animal]:
    query = select(Animal).where(Animal.study_id == study.id).order_by(Animal.identifier)
    if ids is None:
        return list(
            session.scalars(query.where(Animal.archived_at.is_(None), Animal.end_date.is_(None)))
        )
    if len(set(ids)) != len(ids):
        raise Unprocessable("animal_ids lists an animal twice.")
    found = {a.id: a for a in session.scalars(query.where(Animal.id.in_(ids)))}
    unknown = [str(i) for i in ids if i not in found]
    if unknown:
        raise Unprocessable(f"animal_ids: {_listed(unknown)} not animal(s) of this study.")
    animals = [found[i] for i in ids]
    gone = [a.identifier for a in animals if a.archived_at is not None or a.end_date is not None]
    if gone:
        raise Unprocessable(
            f"Animal(s) {_listed(gone)} are archived or have an end record; leave them out."
        )
    return sorted(animals, key=lambda a: a.identifier)


def _baselines(
    points: list[SeriesPoint], animals: list[Animal], data: RandomisationCreate
) -> tuple[int, dict[uuid.UUID, float]]:
    mine = {a.id for a in animals}
    usable = [
        p
        for p in points
        if p.animal_id in mine
        and p.value is not None
        and not set(p.flags) & cohorts.DEFAULT_EXCLUDE_FLAGS
    ]
    if data.baseline_day is not None:
        day = data.baseline_day
    elif usable:
        day = min(p.day for p in usable)
    else:
        raise Unprocessable(
            f"None of the animals has a usable {data.metric} at site '{data.site.value}': "
            "image them (or import the baseline values) before randomising."
        )
    values = {p.animal_id: float(p.value) for p in usable if p.day == day and p.value is not None}
    missing = [a.identifier for a in animals if a.id not in values]
    if missing:
        raise Unprocessable(
            f"Animal(s) {_listed(missing)} have no usable baseline value at site "
            f"'{data.site.value}' on day {day} (none, or QC-flagged). Image them, choose "
            "another baseline_day, or leave them out with animal_ids."
        )
    if data.floor is not None:
        values = {k: max(v, data.floor) for k, v in values.items()}
    low = [a.identifier for a in animals if values[a.id] <= 0]
    if low:
        raise Unprocessable(
            f"Animal(s) {_listed(low)} have a baseline value <= 0, which has no log10; give "
            "floor (e.g. the detection limit) to raise such values to it."
        )
    return day, values


def _per_animal(
    given: dict[str, Any] | None, animals: list[Animal], what: str
) -> dict[str, Any] | None:
    if given is None:
        return None
    names = {a.identifier for a in animals}
    unknown = sorted(set(given) - names)
    if unknown:
        raise Unprocessable(f"{what} names animal(s) not randomised: {_listed(unknown)}.")
    missing = sorted(names - set(given))
    if missing:
        raise Unprocessable(f"{what} lacks animal(s) {_listed(missing)}: give every animal.")
    return given


def _stratum(
    animal: Animal, data: RandomisationCreate, strata: dict[str, Any] | None
) -> str | None:
    if strata is not None:
        return str(strata[animal.identifier])
    if data.stratify_by == "none":
        return None
    value = getattr(animal, data.stratify_by)
    return NOT_RECORDED if value is None else str(getattr(value, "value", value))


def _conflicts(
    session: Session, study: Study, points: list[SeriesPoint], animals: list[Animal], day: int
) -> list[str]:
    out = []
    earlier = session.scalars(_randomise_events(study)).all()
    for event in earlier:
        out.append(
            f"the study was randomised on {event.at:%Y-%m-%d %H:%M} UTC "
            f"(seed {event.changes.get('seed')}); randomising again moves animals"
        )
    mine = {a.id: a.identifier for a in animals}
    later = sorted({mine[p.animal_id] for p in points if p.animal_id in mine and p.day > day})
    if later:
        out.append(
            f"{len(later)} animal(s) ({_listed(later, 5)}) were imaged after the baseline day "
            f"{day}: their data so far belong to their current arms"
        )
    return out


def randomisation(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: RandomisationCreate,
    *,
    header_reason: str | None,
    failed_injection_factor: float,
) -> RandomisationRead:
    """Allocate animals to arms balanced on log10 baseline; with ``apply`` move them there."""
    if data.apply:
        principal.require_write()
    study = get_study(session, principal, study_id)
    arms = _arms(session, principal, study, data.arm_ids)
    animals = _animals(session, study, data.animal_ids)
    if len(animals) < len(arms):
        raise Unprocessable(
            f"{len(animals)} animal(s) cannot fill {len(arms)} arms; add animals first."
        )
    points = load_points(
        session,
        study,
        site=data.site,
        metric=data.metric,
        failed_injection_factor=failed_injection_factor,
    )
    day, baseline = _baselines(points, animals, data)
    weights = _per_animal(data.body_weight_g, animals, "body_weight_g")
    strata = _per_animal(data.strata, animals, "strata")
    sizes = None
    if data.sizes is not None:
        by_id = {a.id: a.name for a in arms}
        unknown = [str(k) for k in data.sizes if k not in by_id]
        if unknown:
            raise Unprocessable(f"sizes names arm(s) not randomised into: {_listed(unknown)}.")
        sizes = {by_id[k]: v for k, v in data.sizes.items()}
    seed = new_seed(data.seed)
    units = [
        cohorts.RandomisationUnit(
            a.identifier,
            baseline[a.id],
            body_weight_g=weights[a.identifier] if weights else None,
            stratum=_stratum(a, data, strata),
        )
        for a in animals
    ]
    result = run_cohorts(
        lambda: cohorts.randomise(
            units,
            [a.name for a in arms],
            seed=seed,
            sizes=sizes,
            method=data.method,
            n_candidates=data.n_candidates,
            acceptance=data.acceptance,
        )
    )
    arm_by_name = {a.name: a for a in arms}
    animal_by_tag = {a.identifier: a for a in animals}
    assignments = [
        AssignmentRead(
            animal_id=animal_by_tag[x.animal].id,
            animal=x.animal,
            stratum=x.stratum,
            arm_id=arm_by_name[x.arm].id,
            arm=x.arm,
            previous_arm_id=animal_by_tag[x.animal].arm_id,
            moved=animal_by_tag[x.animal].arm_id != arm_by_name[x.arm].id,
            baseline_value=baseline[animal_by_tag[x.animal].id],
            log10_baseline=x.log10_baseline_flux,
            body_weight_g=x.body_weight_g,
        )
        for x in result.assignments
    ]
    conflicts = _conflicts(session, study, points, animals, day)
    read = RandomisationRead(
        study_id=study.id,
        applied=False,
        method=result.method,
        seed=seed,
        n_candidates=result.n_candidates,
        acceptance=result.acceptance,
        n_accepted=result.n_accepted,
        site=data.site.value,
        metric=data.metric,
        unit=UNITS[data.metric],
        baseline_day=day,
        covariates=list(result.covariates),
        stratify_by="strata" if data.strata is not None else data.stratify_by,
        arms=[
            ArmCount(arm_id=a.id, arm=a.name, n=b.n)
            for a, b in zip(arms, result.balance, strict=True)
        ],
        assignments=assignments,
        balance=[
            ArmBalanceRead(arm_id=arm_by_name[b.arm].id, **b.to_dict()) for b in result.balance
        ],
        strata=[StratumCountRead(**s.to_dict()) for s in result.strata],
        tests=[BalanceTestRead(**t.to_dict()) for t in result.tests],
        imbalance_m=result.imbalance_m,
        expected_m_random=result.expected_m_random,
        acceptance_threshold_m=result.acceptance_threshold_m,
        candidate_percentile=result.candidate_percentile,
        conflicts=conflicts,
    )
    if not data.apply:
        return read
    reason = data.reason or header_reason
    if conflicts and not data.force:
        raise Conflict(
            "Not applied: "
            + "; ".join(conflicts)
            + ". Check the preview (apply=false), then send force=true with a reason "
            "(body `reason` or X-Change-Reason) to apply anyway."
        )
    if data.force and not reason:
        raise Unprocessable("force=true needs a reason (body `reason` or X-Change-Reason).")
    _apply(session, principal, study, read, animal_by_tag, reason=reason, forced=bool(conflicts))
    return read.model_copy(update={"applied": True})


def _apply(
    session: Session,
    principal: Principal,
    study: Study,
    read: RandomisationRead,
    animals: dict[str, Animal],
    *,
    reason: str | None,
    forced: bool,
) -> None:
    why = reason or f"randomisation ({read.method}, seed {read.seed})"
    for x in read.assignments:
        if x.moved:
            audit.apply_changes(
                session,
                principal,
                animals[x.animal],
                {"arm_id": x.arm_id},
                object_type="animal",
                reason=why,
            )
    record = read.model_dump(
        mode="json",
        include={
            "method",
            "seed",
            "n_candidates",
            "acceptance",
            "site",
            "metric",
            "baseline_day",
            "covariates",
            "stratify_by",
            "balance",
            "tests",
            "imbalance_m",
            "expected_m_random",
            "conflicts",
        },
    )
    record["assignments"] = {x.animal: x.arm for x in read.assignments}
    record["forced"] = forced
    audit.record(
        session,
        principal,
        action=RANDOMISE_ACTION,
        object_type="study",
        object_id=study.id,
        changes=record,
        reason=why,
    )


def randomisations(
    session: Session, principal: Principal, study_id: uuid.UUID, page: PageParams
) -> tuple[list[RandomisationRecord], int]:
    """A page of the randomisations applied to a study, oldest first, from its audit
    trail, and how many there are."""
    study = get_study(session, principal, study_id)
    events, total = paginate(session, _randomise_events(study), page)
    return [RandomisationRecord(at=e.at, reason=e.reason, **e.changes) for e in events], total


def _randomise_events(study: Study) -> Select[AuditEvent]:
    return (
        select(AuditEvent)
        .where(
            AuditEvent.lab_id == study.lab_id,
            AuditEvent.object_type == "study",
            AuditEvent.object_id == study.id,
            AuditEvent.action == RANDOMISE_ACTION,
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
