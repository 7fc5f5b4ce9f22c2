"""Adding, editing and retiring ROIs, and re-quantifying: every change makes new rows and
keeps the old ones as history (who, when, why).

Why one long module: every ROI change (add, edit, retire) and a re-quantification end in the
same step — measure the acquisition's ROIs again and store new rows beside the old ones —
so the helpers at the top (find the ROI, draw it, measure it) serve both halves; splitting
them would put the one history rule in two places.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.acquisitions import repository
from app.acquisitions.images import measure_stored
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.service import acquisition_read, editable_acquisition
from app.auth import Principal
from app.config import Settings
from app.errors import Conflict, NotFound, Unprocessable
from app.jobs import service as jobs
from app.jobs.runner import JobContext
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    Animal,
    Job,
    Measurement,
    Roi,
    RoiSource,
    Site,
    Study,
)
from app.rois.schemas import RoiCreate, RoiUpdate
from app.sessions.service import get_imaging_session
from app.storage import BlobStore
from app.studies.service import get_study, lock_study
from imaging import ImagingError


def _animal_in_field(
    session: Session, acquisition: Acquisition, identifier: str | None
) -> uuid.UUID | None:
    if identifier is None:
        return None
    animal_id = session.scalar(
        select(Animal.id)
        .join(AcquisitionAnimal, AcquisitionAnimal.animal_id == Animal.id)
        .where(AcquisitionAnimal.acquisition_id == acquisition.id, Animal.identifier == identifier)
    )
    if animal_id is None:
        raise Unprocessable(f"Animal {identifier} is not in this image's field of view.")
    return animal_id


def _get_roi(session: Session, acquisition: Acquisition, roi_id: uuid.UUID) -> Roi:
    roi = session.scalar(select(Roi).where(Roi.id == roi_id, Roi.acquisition_id == acquisition.id))
    if roi is None:
        raise NotFound(f"No ROI with id {roi_id} in acquisition {acquisition.id}.")
    if not roi.is_current:
        raise Unprocessable(f"ROI {roi_id} was superseded; edit its current version instead.")
    return roi


def _ensure_single(
    session: Session,
    acquisition: Acquisition,
    animal_id: uuid.UUID | None,
    site: Site,
    *,
    replacing: uuid.UUID | None = None,
) -> None:
    """One current ROI per animal and site in an image (``custom`` may repeat), so a site's
    value in a series is never an accidental average of two regions."""
    if site == Site.custom:
        return
    query = select(Roi.id).where(
        Roi.acquisition_id == acquisition.id,
        Roi.is_current.is_(True),
        Roi.site == site,
        Roi.animal_id.is_(None) if animal_id is None else Roi.animal_id == animal_id,
    )
    if replacing is not None:
        query = query.where(Roi.id != replacing)
    existing = session.scalar(query)
    if existing is not None:
        raise Conflict(
            f"This image already has a current {site.value} ROI for that animal (ROI {existing}); "
            "correct it with PATCH, retire it first, or use site 'custom' for an extra region."
        )


def _measure(
    session: Session,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    rois: list[Roi],
    *,
    series: list[Acquisition] | None = None,
) -> int:
    """New current measurements of ``rois``, the ones they replace kept as history; the
    number whose total flux changed."""
    old = {
        m.roi_id: m
        for m in session.scalars(
            select(Measurement).where(
                Measurement.roi_id.in_([r.id for r in rois]), Measurement.is_current.is_(True)
            )
        )
    }
    changed = 0
    for row in measure_stored(session, store, settings, acquisition, rois, series=series):
        previous = old.get(row.roi_id)
        if previous is not None:
            previous.is_current = False
            changed += previous.total_flux_ps != row.total_flux_ps
        session.add(row)
    session.flush()
    return changed


def _measure_after_change(
    session: Session,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    roi: Roi | None,
) -> None:
    """Measure a new or corrected ROI; when the acquisition's background ROI changed, every
    current ROI again (their detection limits come from it)."""
    if roi is None or roi.site == Site.background:
        rois = repository.current_rois(session, acquisition.id)
        if rois:
            _measure(session, store, settings, acquisition, rois)
        return
    _measure(session, store, settings, acquisition, [roi])


def _draw(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    roi: Roi,
    *,
    reason: str | None,
    action: str,
    changes: dict[str, Any],
) -> AcquisitionRead:
    """Keep a client's ROI on this acquisition, measure it at once and audit who drew it."""
    roi.acquisition_id = acquisition.id
    roi.shape = roi.geometry["type"]
    roi.source = RoiSource.client
    roi.created_by_key_id = principal.key_id
    roi.change_reason = reason
    session.add(roi)
    session.flush()
    _measure_after_change(session, store, settings, acquisition, roi)
    audit.record(
        session,
        principal,
        action=action,
        object_type="roi",
        object_id=roi.id,
        changes=changes,
        reason=reason,
    )
    return acquisition_read(session, acquisition, already_stored=True)


def add_roi(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: RoiCreate,
) -> AcquisitionRead:
    """Draw a new ROI on an acquisition and measure it."""
    acquisition = editable_acquisition(session, principal, study_id, session_id, acquisition_id)
    animal_id = _animal_in_field(session, acquisition, data.animal)
    _ensure_single(session, acquisition, animal_id, data.site)
    return _draw(
        session,
        principal,
        store,
        settings,
        acquisition,
        Roi(animal_id=animal_id, site=data.site, label=data.label, geometry=data.geometry),
        reason=data.reason,
        action="create",
        changes={"geometry": data.geometry, "site": data.site},
    )


def edit_roi(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    roi_id: uuid.UUID,
    data: RoiUpdate,
) -> AcquisitionRead:
    """Replace an ROI by a corrected version and measure it; the old ROI and its
    measurements stay as history."""
    acquisition = editable_acquisition(session, principal, study_id, session_id, acquisition_id)
    old = _get_roi(session, acquisition, roi_id)
    changes = data.changes()
    if old.source == RoiSource.imported:
        raise Unprocessable(
            "This ROI came from an imported table and has no geometry to re-measure; import "
            "a corrected file, or retire it."
        )
    geometry = changes.get("geometry", old.geometry)
    animal_id = (
        _animal_in_field(session, acquisition, changes["animal"])
        if "animal" in changes
        else old.animal_id
    )
    site = changes.get("site", old.site)
    _ensure_single(session, acquisition, animal_id, site, replacing=old.id)
    old.is_current = False
    return _draw(
        session,
        principal,
        store,
        settings,
        acquisition,
        Roi(
            animal_id=animal_id,
            site=site,
            label=changes.get("label", old.label),
            geometry=geometry,
            supersedes_id=old.id,
        ),
        reason=data.reason,
        action="update",
        changes={"supersedes": str(old.id), **{k: v for k, v in changes.items() if k != "reason"}},
    )


def retire_roi(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    roi_id: uuid.UUID,
    *,
    reason: str,
    store: BlobStore | None = None,
    settings: Settings | None = None,
) -> AcquisitionRead:
    """Stop counting an ROI (e.g. drawn on the wrong mouse); it stays as history. Retiring
    the background ROI measures the others again (their detection limit was from it)."""
    acquisition = editable_acquisition(session, principal, study_id, session_id, acquisition_id)
    roi = _get_roi(session, acquisition, roi_id)
    roi.is_current = False
    session.flush()
    if (
        roi.site == Site.background
        and store is not None
        and settings is not None
        and repository.image_file(session, acquisition.id) is not None  # not an imported table
    ):
        _measure_after_change(session, store, settings, acquisition, None)
    audit.record(
        session, principal, action="retire", object_type="roi", object_id=roi.id, reason=reason
    )
    return acquisition_read(session, acquisition, already_stored=True)


def submit_requantify(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> Job:
    """Queue a job measuring every current ROI of the study (or of one session) again from
    the raw files; the same study and session while one is queued or running: that job."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    if session_id is not None:  # a session of another study (or lab) is not found
        get_imaging_session(session, principal, study_id, session_id)
    return jobs.submit(
        session,
        principal,
        settings,
        kind="requantify",
        inputs={"study_id": str(study.id), "session_id": session_id and str(session_id)},
        lock=f"study:{study.id}",
        extra={"reason": reason},
    )


def submit_requantify_lab(
    session: Session, principal: Principal, settings: Settings, *, reason: str | None = None
) -> Job:
    """Queue a job that queues one requantify job per study of the lab (e.g. after a
    calibration or template change); the study jobs run in parallel on the workers."""
    principal.require_write()
    return jobs.submit(
        session,
        principal,
        settings,
        kind="requantify_lab",
        inputs={"lab_id": str(principal.lab_id)},
        lock=f"lab:{principal.lab_id}",
        extra={"reason": reason},
    )


def run_requantify_lab_job(job: JobContext) -> None:
    """One step per study of the lab (archived ones too: their numbers are kept): queue its
    requantify job (the same inputs already queued or running: that job)."""
    plan = job.plan(
        lambda session: [
            str(study_id)
            for study_id in session.scalars(
                select(Study.id).where(Study.lab_id == job.lab_id).order_by(Study.created_at)
            )
        ],
        result={"jobs": []},
    )
    for number, study_id in enumerate(plan):
        job.step(number, partial(_queue_study, job=job, study_id=study_id))
    job.result_url = "/jobs?kind=requantify"


def _queue_study(
    session: Session, result: dict[str, Any], *, job: JobContext, study_id: str
) -> None:
    child = jobs.submit(
        session,
        job.principal,
        job.settings,
        kind="requantify",
        inputs={"study_id": study_id, "session_id": None},
        lock=f"study:{study_id}",
        extra={"reason": job.params.get("reason")},
    )
    result["jobs"] = [*result["jobs"], str(child.id)]


def run_requantify_job(job: JobContext) -> None:
    """The requantify job: one step per acquisition with an image, each measured again and
    committed with the job's progress (an interrupted job resumes after the last one done);
    the previous measurements stay as history."""
    study_id = uuid.UUID(job.params["study_id"])
    session_id = job.params["session_id"] and uuid.UUID(job.params["session_id"])
    plan = job.plan(
        lambda session: [
            str(a.id) for a in repository.with_image(session, study_id, session_id=session_id)
        ],
        result={"acquisitions": 0, "measurements": 0, "changed": 0},
    )
    # the camera-settings series of the whole study, read once (not once per acquisition)
    with job.factory() as session:
        series = list(
            session.scalars(repository.of_study(study_id).order_by(Acquisition.created_at))
        )
    for number, acquisition_id in enumerate(plan):
        one = partial(
            _requantify_one,
            job=job,
            study_id=study_id,
            acquisition_id=uuid.UUID(acquisition_id),
            series=series,
        )
        job.step(number, one, wait_for_disk=False)  # measured again from stored files
    job.result_url = f"/studies/{study_id}/measurements"
    job.on_success = lambda session: audit.record(
        session,
        job.principal,
        action="requantify",
        object_type="study",
        object_id=study_id,
        changes=dict(job.result),
        reason=job.params.get("reason"),
    )


def _requantify_one(
    session: Session,
    result: dict[str, Any],
    *,
    job: JobContext,
    study_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    series: list[Acquisition],
) -> None:
    """Measure one acquisition's current ROIs again (adds to ``result``'s counts)."""
    lock_study(session, study_id)  # concurrent writers must not both add a current row
    acquisition = session.scalar(
        repository.of_study(study_id).where(Acquisition.id == acquisition_id)
    )
    if acquisition is None:  # moved to another study since the job started
        return
    # this acquisition as this transaction sees it (filled in from its click when measured)
    series[:] = [acquisition if a.id == acquisition.id else a for a in series]
    rois = repository.current_rois(session, acquisition.id)
    try:
        if rois:
            result["changed"] += _measure(
                session, job.store, job.settings, acquisition, rois, series=series
            )
    except FileNotFoundError as exc:
        raise Unprocessable(
            f"Click {acquisition.click_number} (acquisition {acquisition.id}): its raw file is "
            f"missing from the store ({exc}). {result['acquisitions']} earlier acquisition(s) "
            "were measured again; restore the file from a backup (`osteolux fsck` lists what "
            "is missing) and requantify again."
        ) from exc
    except ImagingError as exc:
        raise Unprocessable(
            f"Click {acquisition.click_number} (acquisition {acquisition.id}) cannot be "
            f"measured again from its raw file: {exc}"
        ) from exc
    result["acquisitions"] += 1
    result["measurements"] += len(rois)
