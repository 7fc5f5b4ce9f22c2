"""The read side of acquisitions: list, get, the overlay image and the original file."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, BinaryIO

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

import imaging
from app import audit
from app.acquisitions import repository
from app.acquisitions.images import image_roi, load_calibrated, qc_warnings, quantify_rois
from app.acquisitions.schemas import AcquisitionAnimalRead, AcquisitionMove, AcquisitionRead
from app.auth import Principal
from app.config import Settings
from app.errors import NotFound, Unprocessable
from app.measurements import repository as measurement_queries
from app.measurements.schemas import MeasurementRead
from app.models import Acquisition, AcquisitionAnimal, AcquisitionFile, Animal, Roi, Site
from app.pagination import PageParams, paginate
from app.sessions.service import get_imaging_session
from app.storage import BlobStore
from app.studies.service import lock_study


def get_acquisition(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> Acquisition:
    """The acquisition if it is in this imaging session of a study in the caller's lab."""
    imaging_session, _ = get_imaging_session(session, principal, study_id, session_id)
    found = repository.in_session(session, imaging_session.id, acquisition_id=acquisition_id)
    if not found:
        raise NotFound(f"No acquisition with id {acquisition_id} in imaging session {session_id}.")
    return found[0]


def editable_acquisition(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> Acquisition:
    """The acquisition, for a change: the caller may write, and the study is locked until
    commit (two edits of one ROI: one wins; checks see concurrent changes)."""
    principal.require_write()
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    lock_study(session, study_id)
    return acquisition


def acquisition_read(
    session: Session, acquisition: Acquisition, *, already_stored: bool
) -> AcquisitionRead:
    """An acquisition with its animals and current measurements, as the API shows it."""
    return acquisition_reads(session, [acquisition], already_stored=already_stored)[0]


def acquisition_reads(
    session: Session, acquisitions: Sequence[Acquisition], *, already_stored: bool
) -> list[AcquisitionRead]:
    """:func:`acquisition_read` of each acquisition, in three queries whatever their number
    (files, measurements, animals) instead of three per acquisition."""
    ids = [a.id for a in acquisitions]
    files = repository.image_files(session, ids)
    fields = repository.fields(session, ids)
    rows_of: dict[uuid.UUID, list[Row[Any]]] = {i: [] for i in ids}
    if ids:
        for row in session.execute(
            measurement_queries.current(measurement_queries.readable())
            .where(Roi.acquisition_id.in_(ids))
            .order_by(Roi.created_at, Roi.label)
        ):
            rows_of[row.acquisition_id].append(row)
    return [
        _read(a, files.get(a.id), fields[a.id], rows_of[a.id], already_stored=already_stored)
        for a in acquisitions
    ]


def _read(
    acquisition: Acquisition,
    file: AcquisitionFile | None,
    field: list[tuple[int, uuid.UUID, str]],
    rows: list[Row[Any]],
    *,
    already_stored: bool,
) -> AcquisitionRead:
    measurements = [measurement_queries.to_read(row) for row in rows]
    # acquisition-level QC is the same on every measurement: the newest one's is up to date
    newest = max(rows, key=lambda row: row.created_at, default=None)
    qc = (newest.parameters or {}).get("acquisition_qc") or {} if newest is not None else {}
    return AcquisitionRead(
        id=acquisition.id,
        session_id=acquisition.session_id,
        view=acquisition.view.value,
        click_number=acquisition.click_number,
        exposure_s=acquisition.exposure_s,
        binning=acquisition.binning,
        f_number=acquisition.f_number,
        fov_cm=acquisition.fov_cm,
        units=acquisition.units,
        sha256=file.blob_sha256 if file is not None else "",
        already_stored=already_stored,
        animals=[
            AcquisitionAnimalRead(position=p, animal_id=i, identifier=ident)
            for p, i, ident in field
        ],
        measurements=measurements,
        calibration=acquisition.camera_metadata.get("calibration", []),
        warnings=_warnings(acquisition, measurements) + qc_warnings(qc),
        created_at=acquisition.created_at,
        acquired_at=acquisition.acquired_at,
        qc=qc,
    )


def _warnings(acquisition: Acquisition, measurements: list[MeasurementRead]) -> list[str]:
    out = [
        f"{m.label} ({m.animal}): the raw counts give "
        f"{m.raw_total_flux_ps:.4g} p/s, Living Image's corrected image "
        f"{m.total_flux_ps:.4g} p/s ({m.raw_total_flux_ps / m.total_flux_ps - 1:+.1%}), beyond "
        "the tolerance between the two calibrations; the stored value is Living Image's own "
        "calibration (raw and tolerance in the measurement's calibration fields)."
        for m in measurements
        if "calibration_disagrees" in m.flags
        and m.site != Site.background  # its flux is no result; its radiance is the check
        and m.raw_total_flux_ps is not None
        and m.total_flux_ps
    ]
    unassigned = [m for m in measurements if m.site == Site.unassigned]
    if not unassigned:
        return out
    labels = ", ".join(f"{m.label} ({m.animal or 'no animal'})" for m in unassigned)
    return [
        f"{len(unassigned)} ROI(s) name no site in their label and are stored as unassigned, "
        f"counted in no site's series: {labels}. Assign each a site with PATCH "
        f"…/acquisitions/{acquisition.id}/rois/{{roi_id}} "
        '{"site": "skull_mandible", "reason": "…"} (the ROI ids are in measurements).',
        *out,
    ]


def move_acquisition(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: AcquisitionMove,
) -> AcquisitionRead:
    """Put an acquisition in another imaging session of its study (its day follows); audited
    old → new with the reason. Its ROIs and measurements are unchanged."""
    principal.require_write()
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    lock_study(session, study_id)
    target, _ = get_imaging_session(session, principal, study_id, data.session_id)
    ended = [
        f"{animal.identifier} (ended {animal.end_date})"
        for animal in session.scalars(
            select(Animal)
            .join(AcquisitionAnimal, AcquisitionAnimal.animal_id == Animal.id)
            .where(AcquisitionAnimal.acquisition_id == acquisition.id)
        )
        if animal.end_date is not None and target.acquired_on > animal.end_date
    ]
    if ended:
        raise Unprocessable(
            f"The session of {target.acquired_on} is after the end of animal(s) "
            f"{', '.join(ended)} in this image; choose a session on or before their end."
        )
    audit.apply_changes(
        session,
        principal,
        acquisition,
        {"session_id": target.id},
        object_type="acquisition",
        reason=data.reason,
    )
    session.flush()
    return acquisition_read(session, acquisition, already_stored=True)


def list_acquisitions(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    page: PageParams,
) -> tuple[list[AcquisitionRead], int]:
    """One page of an imaging session's acquisitions in upload order, with their animals and
    current measurements, and how many there are: a constant number of queries per page."""
    imaging_session, _ = get_imaging_session(session, principal, study_id, session_id)
    acquisitions, total = paginate(session, repository.in_session_query(imaging_session.id), page)
    return acquisition_reads(session, acquisitions, already_stored=True), total


def original_file(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> tuple[BinaryIO, str, str]:
    """The uploaded file exactly as received: (open file, file name, media type)."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    found = repository.original_file(session, acquisition.id)
    if found is None:
        raise NotFound(f"Acquisition {acquisition_id} has no stored file.")
    file, blob = found
    return store.open(blob.sha256), file.filename, blob.media_type


def overlay_png(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    *,
    scale: str = "log",
    vmin: float | None = None,
    vmax: float | None = None,
    dpi: int = 100,
    format: str = "png",
) -> bytes:
    """The luminescence (its primary calibration) on the photograph with each current ROI
    labelled with ear tag and site and its total flux; PNG or SVG, on the caller's colour
    range (e.g. one range for a whole time course) or the image's own."""
    if (vmin is None) != (vmax is None):
        raise Unprocessable("Give vmin and vmax together (a colour range), or neither.")
    if vmin is not None and vmax is not None:
        if not vmin < vmax:
            raise Unprocessable(f"vmin ({vmin:g}) must be below vmax ({vmax:g}).")
        if scale != "linear" and vmin <= 0:
            raise Unprocessable(f"A log colour scale needs vmin > 0, got {vmin:g}.")
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    click, image = load_calibrated(session, store, settings, acquisition)
    stored = repository.current_rois(session, acquisition.id)
    tags: dict[uuid.UUID | None, str] = {
        animal_id: ident for _, animal_id, ident in repository.field(session, acquisition.id)
    }
    rois = [image_roi(r, image) for r in stored]
    measurements = quantify_rois(image, rois, f"{acquisition.click_number}.zip")
    photo = click.photograph if click is not None else None
    try:
        return imaging.render_overlay(
            image,
            photograph=photo.data if photo is not None else None,
            photograph_binning=photo.binning if photo is not None else None,
            rois=rois,
            measurements=measurements,
            labels=[
                f"{tags.get(r.animal_id, '')} {r.site.value}".strip()
                if r.site not in (Site.custom, Site.unassigned)
                else f"{tags.get(r.animal_id, '')} {r.label or r.site.value}".strip()
                for r in stored
            ],
            scale="linear" if scale == "linear" else "log",
            vmin=vmin,
            vmax=vmax,
            dpi=dpi,
            format="svg" if format == "svg" else "png",
            title=f"{acquisition.click_number} — {acquisition.view.value}",
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(f"Cannot draw this overlay: {exc}") from exc
