"""Queries over measurements shared by the measurement list, the per-animal series and an
acquisition's read side: a measurement reaches its study through ROI → acquisition → imaging
session, joined here once."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import imaging
from app.acquisitions.repository import join_session
from app.measurements.schemas import MeasurementRead
from app.models import Acquisition, Animal, Arm, ImagingSession, Measurement, Roi, Study


def joined(*columns: Any) -> Select[Any]:
    """``columns`` selected from measurements joined to their ROI, acquisition and session."""
    return join_session(
        select(*columns)
        .select_from(Measurement)
        .join(Roi, Roi.id == Measurement.roi_id)
        .join(Acquisition, Acquisition.id == Roi.acquisition_id)
    )


def of_study(study_id: uuid.UUID, *columns: Any) -> Select[Any]:
    """``columns`` of a study's measurements (current and history)."""
    return joined(*columns).where(ImagingSession.study_id == study_id)


def readable() -> Select[Any]:
    """Rows for :func:`to_read`; animal and arm are outer joins (background ROIs have none)."""
    return (
        joined(
            Measurement,
            Roi,
            Acquisition,
            ImagingSession.acquired_on,
            Study.day0,
            Animal.identifier,
            Arm.name,
        )
        .join(Study, Study.id == ImagingSession.study_id)
        .outerjoin(Animal, Animal.id == Roi.animal_id)
        .outerjoin(Arm, Arm.id == Animal.arm_id)
    )


def current(query: Select[Any]) -> Select[Any]:
    """Only measurements that count now: neither they nor their ROI superseded or retired."""
    return query.where(Measurement.is_current.is_(True), Roi.is_current.is_(True))


def to_read(row: Sequence[Any]) -> MeasurementRead:
    """A row of :func:`readable` as the API's measurement."""
    m, roi, acquisition, acquired_on, day0, animal, arm = row
    parameters = m.parameters or {}
    check = parameters.get("calibration_check") or {}
    detection = parameters.get("detection") or {}
    qc = parameters.get("acquisition_qc") or {}
    return MeasurementRead(
        measurement_id=m.id,
        roi_id=roi.id,
        acquisition_id=acquisition.id,
        click_number=acquisition.click_number,
        view=acquisition.view.value,
        day=(acquired_on - day0).days,
        animal=animal,
        arm=arm,
        site=roi.site.value,
        label=roi.label,
        roi_source=roi.source.value,
        total_flux_ps=m.total_flux_ps,
        radiance_mean=m.radiance_mean,
        radiance_std=m.radiance_std,
        radiance_min=m.radiance_min,
        radiance_max=m.radiance_max,
        area_cm2=m.area_cm2,
        saturated_pixels=m.saturated_pixels,
        units=m.units,
        flags=list(m.flags or []),
        method=m.method,
        imaging_version=m.imaging_version,
        is_current=m.is_current and roi.is_current,
        created_at=m.created_at,
        calibration_source=parameters.get("primary_calibration"),
        raw_total_flux_ps=check.get("raw_total_flux_ps"),
        detection_limit_ps=detection.get("limit_total_flux_ps"),
        minutes_since_injection=qc.get("minutes_since_injection"),
    )


def suspected_failed_injections(
    session: Session, study_id: uuid.UUID, *, site: str, factor: float = 5.0
) -> set[uuid.UUID]:
    """Current measurements of one site that look like a missed D-luciferin injection
    (:func:`imaging.failed_injections`: ``factor`` times below the animal's previous and next
    sessions and its arm's median that day). Each view is its own series; several values of
    one animal, day and view (a kinetic sequence) count as their peak, and all of them are
    flagged with it. The values stay; the caller adds the flag ``suspected_failed_injection``.
    """
    rows = session.execute(
        current(
            joined(
                Measurement.id,
                Measurement.total_flux_ps,
                Roi.animal_id,
                Animal.arm_id,
                Acquisition.view,
                ImagingSession.acquired_on,
            )
            .join(Animal, Animal.id == Roi.animal_id)
            .where(ImagingSession.study_id == study_id, Roi.site == site)
        )
    ).all()
    peaks: dict[tuple[Any, uuid.UUID, Any], tuple[float, list[uuid.UUID], uuid.UUID]] = {}
    for measurement_id, flux, animal_id, arm_id, view, acquired_on in rows:
        key = (view, animal_id, acquired_on)
        value = flux if flux is not None and math.isfinite(flux) else math.nan
        best, ids, _ = peaks.get(key, (math.nan, [], arm_id))
        if math.isnan(best) or value > best:  # a NaN never replaces a value
            best = value
        peaks[key] = (best, [*ids, measurement_id], arm_id)
    flagged: set[uuid.UUID] = set()
    for view in {k[0] for k in peaks}:
        keys = [k for k in peaks if k[0] == view]
        days = sorted({k[2] for k in keys})
        found = imaging.failed_injections(
            [k[1] for k in keys],
            [peaks[k][2] for k in keys],
            [float(days.index(k[2])) for k in keys],
            [peaks[k][0] for k in keys],
            factor=factor,
        )
        for k, hit in zip(keys, found, strict=True):
            if hit:
                flagged.update(peaks[k][1])
    return flagged
