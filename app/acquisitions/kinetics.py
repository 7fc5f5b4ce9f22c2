"""Kinetic sequences of an imaging session: several clicks of the same view of the same mice,
taken one after another after one D-luciferin injection, are one kinetic curve per animal and
site (:func:`imaging.kinetic_sequences`); each curve's peak (:func:`imaging.kinetic_peak`) is
the value a study that images the kinetics takes for the session."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy.orm import Session

import imaging
from app.acquisitions import repository
from app.acquisitions.schemas import (
    KineticCurve,
    KineticPoint,
    KineticSequence,
    SessionKinetics,
)
from app.auth import Principal
from app.measurements import repository as measurement_queries
from app.measurements.schemas import MeasurementRead
from app.models import Acquisition, Roi, Site
from app.sessions.service import get_imaging_session


def session_kinetics(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    max_gap_min: float = 30.0,
    failed_injection_factor: float,
) -> SessionKinetics:
    """The session's kinetic sequences with one curve per animal and site, and its peak; the
    points of a sequence whose peak looks like a failed injection against the study's other
    sessions (``failed_injection_factor``) carry ``suspected_failed_injection``."""
    imaging_session, _ = get_imaging_session(session, principal, study_id, session_id)
    acquisitions = repository.in_session(session, imaging_session.id)
    timed = [a for a in acquisitions if a.acquired_at is not None]
    animals = [[ident for _, _, ident in repository.field(session, a.id)] for a in timed]
    groups = imaging.kinetic_sequences(
        [a.acquired_at for a in timed],  # type: ignore[misc]
        [a.view.value for a in timed],
        animals,
        max_gap_min=max_gap_min,
    )
    members: dict[int, list[Acquisition]] = defaultdict(list)
    for acquisition, group in zip(timed, groups, strict=True):
        if group is not None:
            members[group].append(acquisition)
    sequences = []
    for group in sorted(members):
        clicks = sorted(members[group], key=lambda a: a.acquired_at or datetime.min)
        sequences.append(
            KineticSequence(
                sequence=group,
                view=clicks[0].view.value,
                acquisition_ids=[a.id for a in clicks],
                curves=_curves(session, study_id, clicks, failed_injection_factor),
            )
        )
    return SessionKinetics(
        session_id=imaging_session.id,
        max_gap_min=max_gap_min,
        sequences=sequences,
        not_timed=[a.id for a in acquisitions if a.acquired_at is None],
    )


def _curves(
    session: Session, study_id: uuid.UUID, clicks: list[Acquisition], factor: float
) -> list[KineticCurve]:
    order = {a.id: i for i, a in enumerate(clicks)}
    by_id = {a.id: a for a in clicks}
    rows = session.execute(
        measurement_queries.current(measurement_queries.readable()).where(
            Roi.acquisition_id.in_(list(order))
        )
    ).all()
    curves: dict[tuple[str, str], list[MeasurementRead]] = defaultdict(list)
    reads = measurement_queries.with_failed_injection_flags(
        session, study_id, [measurement_queries.to_read(row) for row in rows], factor=factor
    )
    for m in reads:
        if m.animal is None or m.site in (Site.background, Site.unassigned):
            continue
        curves[(m.animal, m.site)].append(m)
    out = []
    for (animal, site), measured in sorted(curves.items()):
        measured.sort(key=lambda m: order[m.acquisition_id])
        points = [
            KineticPoint(
                acquisition_id=m.acquisition_id,
                click_number=m.click_number,
                acquired_at=by_id[m.acquisition_id].acquired_at,  # type: ignore[arg-type]
                minutes_since_injection=m.minutes_since_injection,
                measurement_id=m.measurement_id,
                total_flux_ps=m.total_flux_ps,
                flags=m.flags,
            )
            for m in measured
        ]
        start = points[0].acquired_at
        minutes = [(p.acquired_at - start).total_seconds() / 60.0 for p in points]
        values = [p.total_flux_ps if p.total_flux_ps is not None else math.nan for p in points]
        try:
            # two clicks of one mouse at the same second cannot be ordered: no peak
            peak = imaging.kinetic_peak(values, minutes=minutes)
        except ValueError:
            peak = None
        out.append(
            KineticCurve(
                animal=animal,
                site=site,
                points=points,
                peak_index=peak.index if peak else None,
                peak_total_flux_ps=peak.value if peak else None,
                peak_minutes_since_injection=(
                    points[peak.index].minutes_since_injection if peak else None
                ),
                peak_flags=sorted(peak.flags) if peak else [],
            )
        )
    return out
