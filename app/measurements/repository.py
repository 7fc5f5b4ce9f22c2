"""Queries over measurements shared by the measurement list, the per-animal series and an
acquisition's read side: a measurement reaches its study through ROI → acquisition → imaging
session, joined here once."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

import imaging
from app.acquisitions.repository import join_session
from app.measurements.schemas import MeasurementRead
from app.models import Acquisition, Animal, Arm, ImagingSession, Measurement, Roi, Site, Study


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
    """Rows for :func:`to_read`, read by name (``row.acquisition_id``): the measurement's
    columns, the few of its ROI and acquisition that it shows (not their geometry or camera
    metadata, whose JSON every row would decode again), its day and names; animal and arm
    are outer joins (background ROIs have none). Plain columns, no ORM objects: an
    acquisition list of 61 clicks spent a third of its time building them."""
    return (
        joined(
            Measurement.id.label("measurement_id"),
            Measurement.total_flux_ps,
            Measurement.radiance_mean,
            Measurement.radiance_std,
            Measurement.radiance_min,
            Measurement.radiance_max,
            Measurement.area_cm2,
            Measurement.saturated_pixels,
            Measurement.units,
            Measurement.flags,
            Measurement.method,
            Measurement.imaging_version,
            Measurement.is_current,
            Measurement.created_at,
            Measurement.parameters,
            Roi.id.label("roi_id"),
            Roi.acquisition_id,
            Roi.site,
            Roi.label,
            Roi.source,
            Roi.is_current.label("roi_is_current"),
            Acquisition.click_number,
            Acquisition.view,
            ImagingSession.acquired_on,
            Study.day0,
            Animal.identifier,
            Arm.name.label("arm"),
        )
        .join(Study, Study.id == ImagingSession.study_id)
        .outerjoin(Animal, Animal.id == Roi.animal_id)
        .outerjoin(Arm, Arm.id == Animal.arm_id)
    )


def current(query: Select[Any]) -> Select[Any]:
    """Only measurements that count now: neither they nor their ROI superseded or retired."""
    return query.where(Measurement.is_current.is_(True), Roi.is_current.is_(True))


def to_read(m: Row[Any]) -> MeasurementRead:
    """A row of :func:`readable` as the API's measurement."""
    parameters = m.parameters or {}
    check = parameters.get("calibration_check") or {}
    detection = parameters.get("detection") or {}
    qc = parameters.get("acquisition_qc") or {}
    return MeasurementRead(
        measurement_id=m.measurement_id,
        roi_id=m.roi_id,
        acquisition_id=m.acquisition_id,
        click_number=m.click_number,
        view=m.view.value,
        day=(m.acquired_on - m.day0).days,
        animal=m.identifier,
        arm=m.arm,
        site=m.site.value,
        label=m.label,
        roi_source=m.source.value,
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
        is_current=m.is_current and m.roi_is_current,
        created_at=m.created_at,
        calibration_source=parameters.get("primary_calibration"),
        raw_total_flux_ps=check.get("raw_total_flux_ps"),
        detection_limit_ps=detection.get("limit_total_flux_ps"),
        minutes_since_injection=qc.get("minutes_since_injection"),
    )


FAILED_INJECTION_FLAG = "suspected_failed_injection"


def suspected_failed_injections(
    session: Session, study_id: uuid.UUID, *, site: Site | str | None = None, factor: float
) -> set[uuid.UUID]:
    """Current measurements (of one site, or of every site) that look like a missed
    D-luciferin injection (:func:`imaging.failed_injections`: ``factor`` times below the
    animal's previous and next sessions and its arm's median that day). Each site and view is
    its own series; several values of one animal, day and view (a kinetic sequence) count as
    their peak, and all of them are flagged with it. The values stay; the callers add the flag
    ``suspected_failed_injection`` (:data:`FAILED_INJECTION_FLAG`) when they read them."""
    query = (
        joined(
            Measurement.id,
            Measurement.total_flux_ps,
            Roi.site,
            Roi.animal_id,
            Animal.arm_id,
            Acquisition.view,
            ImagingSession.acquired_on,
        )
        .join(Animal, Animal.id == Roi.animal_id)
        .where(ImagingSession.study_id == study_id)
    )
    if site is not None:
        query = query.where(Roi.site == Site(site))
    return failed_injection_ids(session.execute(current(query)).all(), factor=factor)


def failed_injection_ids(rows: Iterable[Sequence[Any]], *, factor: float) -> set[uuid.UUID]:
    """The ids among ``rows`` (measurement id, total flux, site, animal, arm, view, day) that
    :func:`imaging.failed_injections` flags, per site and view, a day's several values of one
    animal counted as their peak."""
    peaks: dict[tuple[Any, Any, uuid.UUID, Any], tuple[float, list[uuid.UUID], Any]] = {}
    for measurement_id, flux, site, animal_id, arm_id, view, day in rows:
        key = (site, view, animal_id, day)
        value = flux if flux is not None and math.isfinite(flux) else math.nan
        best, ids, _ = peaks.get(key, (math.nan, [], arm_id))
        if math.isnan(best) or value > best:  # a NaN never replaces a value
            best = value
        peaks[key] = (best, [*ids, measurement_id], arm_id)
    flagged: set[uuid.UUID] = set()
    for series in {k[:2] for k in peaks}:
        keys = [k for k in peaks if k[:2] == series]
        days = sorted({k[3] for k in keys})
        found = imaging.failed_injections(
            [k[2] for k in keys],
            [peaks[k][2] for k in keys],
            [float(days.index(k[3])) for k in keys],
            [peaks[k][0] for k in keys],
            factor=factor,
        )
        for k, hit in zip(keys, found, strict=True):
            if hit:
                flagged.update(peaks[k][1])
    return flagged


def with_failed_injection_flags(
    session: Session,
    study_id: uuid.UUID,
    measurements: Sequence[MeasurementRead],
    *,
    factor: float,
) -> list[MeasurementRead]:
    """``measurements`` (of one study) with ``suspected_failed_injection`` added to the flags
    of those :func:`suspected_failed_injections` finds (computed when read: the next session
    decides whether an animal recovered)."""
    if not any(m.animal is not None for m in measurements):
        return list(measurements)
    return flag_failed_injections(
        measurements, suspected_failed_injections(session, study_id, factor=factor)
    )


def flag_failed_injections(
    measurements: Sequence[MeasurementRead], failed: set[uuid.UUID]
) -> list[MeasurementRead]:
    """``measurements`` with :data:`FAILED_INJECTION_FLAG` added to those whose id is in
    ``failed``."""
    return [
        m.model_copy(update={"flags": [*m.flags, FAILED_INJECTION_FLAG]})
        if m.measurement_id in failed and FAILED_INJECTION_FLAG not in m.flags
        else m
        for m in measurements
    ]
