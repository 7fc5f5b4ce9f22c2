"""Measurements read back: the study's measurement list, per-animal series, and their CSVs.
Imports are in ``app/measurements/imports.py``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.measurements import repository as measurement_queries
from app.measurements.combine import ImagePoint
from app.measurements.combine import combine as combine_images
from app.measurements.schemas import (
    MeasurementRead,
    Metric,
    Series,
    SeriesPoint,
)
from app.models import (
    Acquisition,
    Animal,
    Arm,
    ImageCombination,
    ImagingSession,
    Measurement,
    Roi,
    Site,
    Study,
)
from app.pagination import PageParams
from app.responses import csv_text
from app.studies.service import get_study

UNITS = {"total_flux_ps": "p/s", "radiance_mean": "p/s/cm²/sr"}


def load_points(
    session: Session,
    study: Study,
    *,
    site: Site,
    metric: Metric,
    arm_ids: Sequence[uuid.UUID] | None = None,
    measurement_ids: Sequence[uuid.UUID] | None = None,
    combine: ImageCombination | None = None,
    failed_injection_factor: float,
) -> list[SeriesPoint]:
    """One point per animal and day of one site and metric, in day order: the current
    measurements (or exactly the given ones: superseded measurements stay in the database,
    so old analyses can be redrawn), each animal's images of a day combined by ``combine``
    (default: the study's ``image_combination``). Images whose total flux is
    ``failed_injection_factor`` times below the animal's previous and next days and its arm's
    median that day carry the flag ``suspected_failed_injection`` (their point keeps its
    value)."""
    query = (
        measurement_queries.of_study(
            study.id,
            Measurement.id,
            Animal.id,
            Animal.identifier,
            Arm.id,
            Arm.name,
            ImagingSession.acquired_on,
            Acquisition.view,
            getattr(Measurement, metric),
            Measurement.flags,
            Measurement.total_flux_ps,
        )
        .join(Animal, Animal.id == Roi.animal_id)
        .join(Arm, Arm.id == Animal.arm_id)
        .where(Roi.site == site)
        .order_by(ImagingSession.acquired_on, Arm.name, Animal.identifier, Measurement.created_at)
    )
    if measurement_ids is not None:
        query = query.where(Measurement.id.in_(measurement_ids))
    else:
        query = measurement_queries.current(query).where(Animal.archived_at.is_(None))
    if arm_ids:
        query = query.where(Arm.id.in_(arm_ids))
    rows = session.execute(query).all()
    failed = measurement_queries.failed_injection_ids(
        ((r[0], r[9], site, r[1], r[3], r[6], r[5]) for r in rows),
        factor=failed_injection_factor,
    )
    images = [
        ImagePoint(
            measurement_id=mid,
            animal_id=aid,
            animal=ident,
            arm_id=arm_id,
            arm=arm_name,
            day=(on - study.day0).days,
            site=site.value,
            view=view.value,
            value=val,
            flags=_with_flag(flags, measurement_queries.FAILED_INJECTION_FLAG, mid in failed),
        )
        for mid, aid, ident, arm_id, arm_name, on, view, val, flags, _ in rows
    ]
    return combine_images(images, combine or study.image_combination)


def _with_flag(flags: Sequence[str] | None, flag: str, add: bool) -> tuple[str, ...]:
    stored = tuple(flags or ())
    return (*stored, flag) if add and flag not in stored else stored


def series(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    site: Site,
    metric: Metric,
    arm_ids: list[uuid.UUID] | None = None,
    combine: ImageCombination | None = None,
    failed_injection_factor: float,
) -> Series:
    """Current measurements of one site and metric, one point per animal and day (its images
    combined by ``combine``, default the study's rule), in day order; a suspected failed
    injection is flagged (``failed_injection_factor``), never dropped."""
    study = get_study(session, principal, study_id)
    rule = combine or study.image_combination
    points = load_points(
        session,
        study,
        site=site,
        metric=metric,
        arm_ids=arm_ids,
        combine=rule,
        failed_injection_factor=failed_injection_factor,
    )
    return Series(
        study_id=study.id,
        site=site.value,
        metric=metric,
        unit=UNITS[metric],
        image_combination=rule,
        points=points,
    )


def series_csv(series: Series) -> str:
    """The series as a tidy CSV, one row per point, the unit in the value column's name."""
    value = f"{series.metric} [{series.unit}]"
    return csv_text(
        [
            "animal",
            "arm",
            "day",
            "site",
            value,
            "flags",
            "measurement_id",
            "images",
            "views",
            "image_combination",
        ],
        (
            [
                p.animal,
                p.arm,
                p.day,
                p.site,
                p.value,
                p.flags,
                p.measurement_id,
                p.images,
                p.views,
                series.image_combination.value,
            ]
            for p in series.points
        ),
    )


LIVING_IMAGE_COLUMNS = (
    "Image Number",
    "ROI",
    "Total Flux [p/s]",
    "Avg Radiance [p/s/cm²/sr]",
    "Stdev Radiance",
    "Min Radiance",
    "Max Radiance",
    "Animal Number",
    "Arm",
    "Site",
    "Day",
    "View",
    "Flags",
    "Method",
    "Measurement ID",
)


def list_measurements(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    params: PageParams | None,
    *,
    arm_id: uuid.UUID | None = None,
    animal_id: uuid.UUID | None = None,
    site: Site | None = None,
    day_from: int | None = None,
    day_to: int | None = None,
    flag: str | None = None,
    include_history: bool = False,
    failed_injection_factor: float,
) -> tuple[list[MeasurementRead], int]:
    """Measurements of a study, filtered; superseded ones only with ``include_history``.
    Current measurements that look like a failed injection (``failed_injection_factor``) carry
    the flag ``suspected_failed_injection``, which ``flag`` filters on like a stored one."""
    study = get_study(session, principal, study_id)
    query = (
        measurement_queries.readable()
        .where(ImagingSession.study_id == study.id)
        .order_by(ImagingSession.acquired_on, Animal.identifier, Roi.site, Measurement.created_at)
    )
    if not include_history:
        query = measurement_queries.current(query)
    if arm_id is not None:
        query = query.where(Animal.arm_id == arm_id)
    if animal_id is not None:
        query = query.where(Roi.animal_id == animal_id)
    if site is not None:
        query = query.where(Roi.site == site)
    if day_from is not None:
        query = query.where(ImagingSession.acquired_on >= study.day0 + timedelta(days=day_from))
    if day_to is not None:
        query = query.where(ImagingSession.acquired_on <= study.day0 + timedelta(days=day_to))
    rows: Sequence[Row[Any]]
    failed: set[uuid.UUID] = set()
    if flag is None or flag == measurement_queries.FAILED_INJECTION_FLAG:
        failed = measurement_queries.suspected_failed_injections(
            session, study.id, site=site, factor=failed_injection_factor
        )
    if flag is not None:  # flags are a JSON list: filtered portably in Python
        rows = [
            r
            for r in session.execute(query).all()
            if flag in (r.flags or []) or r.measurement_id in failed
        ]
        total = len(rows)
        if params is not None:
            rows = rows[params.offset : params.offset + params.limit]
    elif params is not None:
        count = select(func.count()).select_from(query.order_by(None).subquery())
        total = session.scalar(count) or 0
        rows = session.execute(query.limit(params.limit).offset(params.offset)).all()
    else:
        rows = session.execute(query).all()
        total = len(rows)
    reads = [measurement_queries.to_read(r) for r in rows]
    return measurement_queries.flag_failed_injections(reads, failed), total


def measurements_csv(rows: Sequence[MeasurementRead]) -> str:
    """Living Image's ROI-measurement export columns, then osteolux's own."""
    return csv_text(
        LIVING_IMAGE_COLUMNS,
        (
            [
                r.click_number,
                r.label,
                r.total_flux_ps,
                r.radiance_mean,
                r.radiance_std,
                r.radiance_min,
                r.radiance_max,
                r.animal,
                r.arm,
                r.site,
                r.day,
                r.view,
                r.flags,
                r.method,
                r.measurement_id,
            ]
            for r in rows
        ),
    )
