"""Turning a study's measurements into a ``cohorts.Cohort`` (the animal is the unit)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.errors import Unprocessable
from app.measurements.schemas import SeriesPoint
from app.models import Animal, EndReason, ImageCombination, Measurement, Study


def in_window(
    points: Sequence[SeriesPoint], window: tuple[float, float] | None
) -> list[SeriesPoint]:
    if window is None:
        return list(points)
    return [p for p in points if window[0] <= p.day <= window[1]]


def end_record(animal: Animal) -> tuple[date, EndReason]:
    """An ended animal's end date and reason (the API sets them together: AnimalEnd)."""
    assert animal.end_date is not None and animal.end_reason is not None
    return animal.end_date, animal.end_reason


def animal_ends(
    session: Session, study: Study, animal_ids: set[uuid.UUID]
) -> list[cohorts.AnimalEnd]:
    """End records as days since injection, for censoring."""
    rows = session.scalars(
        select(Animal).where(Animal.study_id == study.id, Animal.end_date.is_not(None))
    )
    return [
        cohorts.AnimalEnd(
            animal=a.identifier,
            day=float((end_record(a)[0] - study.day0).days),
            reason=end_record(a)[1].value,
        )
        for a in rows
        if a.id in animal_ids
    ]


def build_cohort(
    session: Session, study: Study, points: Sequence[SeriesPoint], *, site: str
) -> cohorts.Cohort:
    """Observations for ``cohorts`` (points without a value are skipped by the query's caller)."""
    observations = [
        cohorts.Observation(
            animal=p.animal,
            arm=p.arm,
            day=float(p.day),
            value=p.value,
            site=site,
            flags=frozenset(p.flags),
        )
        for p in points
        if p.value is not None
    ]
    if not observations:
        raise Unprocessable(f"There are no measurements for site '{site}' to analyse.")
    ends = animal_ends(session, study, {p.animal_id for p in points})
    try:
        return cohorts.Cohort.from_records(observations, ends=ends)
    except cohorts.CohortsError as exc:
        raise Unprocessable(str(exc)) from exc


def fingerprint(points: Sequence[SeriesPoint]) -> str:
    """SHA-256 of the inputs (measurement, animal, its arm, day, value, flags), to tell later
    whether the data changed — including an animal moved to another arm."""
    digest = hashlib.sha256()
    for p in sorted(points, key=lambda q: str(q.measurement_id)):
        flags = ",".join(sorted(p.flags))
        digest.update(
            f"{p.measurement_id}|{p.animal_id}|{p.arm_id}|{p.day}|{p.value!r}|{flags}\n".encode()
        )
    return digest.hexdigest()


def detection_limits(
    session: Session,
    study: Study,
    points: Sequence[SeriesPoint],
    *,
    metric: str,
    default: float | None = None,
) -> dict[tuple[str, float], float]:
    """Each point's detection limit in the metric's unit, for ``cohorts``' censored models.

    A measured total flux carries its limit (``parameters["detection"]``: mean + 3 SD of the
    background ROI's radiance × ROI area × 4π, :mod:`imaging.quantify`); a point combining
    several images takes the images' limits as the study's rule combines their values (the
    sum over views of each view's mean for ``sum_of_views``, else the mean). Points with no
    recorded limit (imported tables, radiance, no background ROI) take ``default`` (the
    request's study-wide ``detection_limit``) or have none."""
    ids = [i for p in points for i in p.measurement_ids]
    recorded: dict[uuid.UUID, float] = {}
    if metric == "total_flux_ps" and ids:
        for mid, parameters in session.execute(
            select(Measurement.id, Measurement.parameters).where(Measurement.id.in_(ids))
        ):
            limit = ((parameters or {}).get("detection") or {}).get("limit_total_flux_ps")
            if isinstance(limit, int | float) and limit > 0:
                recorded[mid] = float(limit)
    by_view = study.image_combination == ImageCombination.sum_of_views
    out: dict[tuple[str, float], float] = {}
    for p in points:
        limits = [recorded[i] for i in p.measurement_ids if i in recorded]
        if limits and len(limits) == len(p.measurement_ids):
            mean = sum(limits) / len(limits)
            out[(p.animal, float(p.day))] = mean * max(len(p.views), 1) if by_view else mean
        elif default is not None:
            out[(p.animal, float(p.day))] = default
    return out
