"""Ingest of IVIS / Living Image clicks: stored unchanged, calibrated, ROIs placed on the
right mice, quantified on arrival — all in one transaction."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from scipy import ndimage
from sqlalchemy import select
from sqlalchemy.orm import Session

import imaging
from app import audit, idempotency
from app.acquisitions.roi_geometry import UnionRoi, for_image, from_json, to_json
from app.acquisitions.schemas import AcquisitionAnimalRead, AcquisitionRead, MeasurementRead
from app.auth import Principal
from app.blobs import keep_blob
from app.config import Settings
from app.errors import BadRequest, Conflict, NotFound, Unprocessable
from app.measurements.living_image import site_from_label
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    AcquisitionFile,
    Animal,
    Blob,
    ImagingSession,
    Measurement,
    Roi,
    RoiSource,
    Site,
    Study,
    View,
)
from app.sessions.service import get_imaging_session
from app.storage import BlobStore, StagedFile
from app.studies.roi_template import TemplateSite, study_template
from app.studies.service import lock_study
from app.uploads import staged_upload

CLICK_ROLE = "ivis_zip"
TIFF_ROLE = "tiff"
IMAGE_ROLES = (CLICK_ROLE, TIFF_ROLE)


@dataclass
class PlacedRoi:
    geometry: imaging.Roi | UnionRoi
    animal: Animal | None
    site: Site
    label: str
    source: RoiSource


def image_limits(settings: Settings) -> imaging.ImageLimits:
    """What an uploaded image may be, from the configured pixel limit."""
    return imaging.ImageLimits(max_pixels=settings.max_image_pixels)


def _read_click(staged: StagedFile, filename: str, settings: Settings) -> imaging.IvisClick:
    limits = image_limits(settings)
    try:
        return imaging.read_ivis_click(staged.path, limits=limits, name=filename)
    except imaging.ImagingError as exc:
        raise Unprocessable(
            f"{exc} — upload the whole Living Image folder of one acquisition as a .zip "
            "(ClickInfo.txt, luminescent.TIF, photograph.TIF, …)."
        ) from exc


def field_animals(
    session: Session, study: Study, identifiers: Sequence[str], filename: str
) -> list[Animal]:
    """The study's animals with these identifiers, in the given (left → right) order."""
    if not identifiers:
        raise Unprocessable(
            f"{filename}: ClickInfo.txt lists no 'Animal Number'; give the animals in the field "
            "left to right in the `animals` form field (e.g. 3466,3467,3468)."
        )
    if len(set(identifiers)) != len(identifiers):
        raise Unprocessable(f"{filename}: an animal is listed twice in {', '.join(identifiers)}.")
    animals = {
        a.identifier: a
        for a in session.scalars(
            select(Animal).where(Animal.study_id == study.id, Animal.identifier.in_(identifiers))
        )
    }
    missing = [i for i in identifiers if i not in animals]
    if missing:
        raise Unprocessable(
            f"{filename}: animal(s) {', '.join(missing)} are not in this study. Add them first, "
            "or correct 'Animal Number' with the `animals` form field."
        )
    return [animals[i] for i in identifiers]


def _find_bodies(
    click: imaging.IvisClick, identifiers: Sequence[str], filename: str
) -> tuple[imaging.AnimalBody, ...]:
    if click.photograph is None:
        raise Unprocessable(f"{filename}: no photograph.TIF, so the mice cannot be told apart.")
    try:
        return imaging.find_animals(
            click.photograph.data,
            binning=click.photograph.binning,
            animal_numbers=list(identifiers),
            n_animals=len(identifiers),
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: {exc}") from exc


@dataclass(frozen=True)
class _PreparedClick:
    """What can be known of an upload without the database: read, mice found, calibrated."""

    click: imaging.IvisClick
    identifiers: list[str]
    bodies: tuple[imaging.AnimalBody, ...]
    image: imaging.CalibratedImage


def _prepare(
    staged: StagedFile, settings: Settings, *, filename: str, animals: Sequence[str] | None
) -> _PreparedClick:
    click = _read_click(staged, filename, settings)
    identifiers = list(animals or click.animal_numbers)
    if not identifiers:
        raise Unprocessable(
            f"{filename}: ClickInfo.txt lists no 'Animal Number'; give the animals in the field "
            "left to right in the `animals` form field (e.g. 3466,3467,3468)."
        )
    if len(set(identifiers)) != len(identifiers):
        raise Unprocessable(f"{filename}: an animal is listed twice in {', '.join(identifiers)}.")
    bodies = _find_bodies(click, identifiers, filename)
    return _PreparedClick(click, identifiers, bodies, calibrate(click, filename))


def _nearest_animal(
    roi: imaging.Roi, bodies: Sequence[imaging.AnimalBody], animals: list[Animal]
) -> Animal:
    row, col = roi.center_row, roi.center_col  # type: ignore[union-attr]
    distances = [math.hypot(b.centroid_row - row, b.centroid_col - col) for b in bodies]
    return animals[bodies[distances.index(min(distances))].position]


def _place_rois(
    click: imaging.IvisClick,
    animals: list[Animal],
    bodies: Sequence[imaging.AnimalBody],
    view: View,
    template: Sequence[TemplateSite],
) -> list[PlacedRoi]:
    """Living Image's own ROIs when the click has them, each given to the mouse it sits on;
    otherwise a whole-body ROI and the study's site template on every mouse found."""
    if click.rois:
        placed = []
        for li_roi in click.rois:
            geometry = imaging.roi_from_living_image(li_roi)
            if (li_roi.roi_type or "").lower().startswith(("bkg", "background")):
                placed.append(
                    PlacedRoi(
                        geometry,
                        None,
                        Site.background,
                        li_roi.label or li_roi.name,
                        RoiSource.living_image,
                    )
                )
                continue
            site = site_from_label(li_roi.label or "") or "whole_body"
            placed.append(
                PlacedRoi(
                    geometry,
                    _nearest_animal(geometry, bodies, animals),
                    Site(site),
                    li_roi.label or li_roi.name,
                    RoiSource.living_image,
                )
            )
        return placed
    placed = []
    side = "ventral" if view == View.ventral else "dorsal"
    shapes = [
        imaging.SiteTemplate(
            name=t.name, shape=t.shape, u=t.u, v=t.v, size_u=t.size_u, size_v=t.size_v
        )
        for t in template
    ]
    site_of = {t.name: t.site for t in template}
    for body in bodies[: len(animals)]:
        animal = animals[body.position]
        placed.append(
            PlacedRoi(
                body.body_roi,
                animal,
                Site.whole_body,
                f"{animal.identifier} whole body",
                RoiSource.automatic,
            )
        )
        by_site: dict[Site, list[imaging.Roi]] = {}
        for roi in imaging.site_rois(body, template=shapes, view=side):
            name = roi.label.removeprefix(f"{body.animal_number} ").strip()
            by_site.setdefault(site_of[name], []).append(roi)
        for site, parts in by_site.items():
            geometry = parts[0] if len(parts) == 1 else UnionRoi(parts=tuple(parts))
            placed.append(
                PlacedRoi(
                    geometry, animal, site, f"{animal.identifier} {site.value}", RoiSource.automatic
                )
            )
    background = _background_roi(click, bodies)
    if background is not None:
        placed.append(
            PlacedRoi(background, None, Site.background, "background", RoiSource.automatic)
        )
    return placed


def _background_roi(
    click: imaging.IvisClick, bodies: Sequence[imaging.AnimalBody]
) -> imaging.Roi | None:
    """A square as far from every mouse as the field allows: the acquisition's background
    level (recorded for QC; not subtracted from the animals' ROIs)."""
    binning = click.luminescent.binning
    rows, cols = click.luminescent.data.shape
    free = np.ones((rows, cols), dtype=bool)
    for body in bodies:
        mask = imaging.roi_mask(body.body_roi, binning, within=(rows, cols))
        free[mask.slices] &= ~(mask.weights > 0)
    distance = ndimage.distance_transform_cdt(np.pad(free, 1), metric="chessboard")[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    half = min(int(distance[row, col]) - 1, max(rows, cols) // 16)
    if half < 2:
        return None  # the mice fill the field
    return imaging.RectangleRoi(
        center_row=(row + 0.5) * binning,
        center_col=(col + 0.5) * binning,
        width=2 * half * binning,
        height=2 * half * binning,
        label="background",
    )


def _view(requested: View | None, click: imaging.IvisClick) -> View:
    if requested is not None:
        return requested
    return View.from_label(click.labels.get("View", "")) or View.other


def ingest_click(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    upload: BinaryIO,
    *,
    filename: str,
    view: View | None = None,
    animals: Sequence[str] | None = None,
    expected_sha256: str | None = None,
    expected_click: str | None = None,
    idempotency_key: str | None = None,
) -> AcquisitionRead:
    """Store a zipped Living Image click and quantify it (the same click twice is stored once)."""
    principal.require_write(allow_instrument=True)
    with staged_upload(
        store, upload, max_bytes=settings.max_upload_bytes, filename=filename
    ) as staged:
        if expected_sha256 is not None and staged.sha256 != expected_sha256:
            raise BadRequest(
                f"Content-Digest says sha-256 {expected_sha256} but the body received hashes to "
                f"{staged.sha256}: the upload was corrupted or truncated; send it again."
            )
        # Staging, reading, finding the mice and calibrating happen before the first query:
        # no transaction (on SQLite: no write lock) is held during the slow part.
        prepared = _prepare(staged, settings, filename=filename, animals=animals)
        imaging_session, study = get_imaging_session(session, principal, study_id, session_id)
        return idempotency.run_once(
            session,
            principal,
            idempotency_key,
            idempotency.fingerprint("click", session_id, staged.sha256, view, animals),
            AcquisitionRead,
            lambda: _ingest_prepared(
                session,
                principal,
                store,
                imaging_session,
                study,
                staged,
                prepared,
                filename=filename,
                view=view,
                expected_click=expected_click,
            ),
        )


def _ingest_prepared(
    session: Session,
    principal: Principal,
    store: BlobStore,
    imaging_session: ImagingSession,
    study: Study,
    staged: StagedFile,
    prepared: _PreparedClick,
    *,
    filename: str,
    view: View | None,
    expected_click: str | None,
) -> AcquisitionRead:
    click = prepared.click
    # Concurrent uploads to one study serialise here, so the duplicate checks see each other.
    lock_study(session, study.id)
    existing = existing_acquisition(session, study, staged.sha256)
    if existing is not None:
        return acquisition_read(session, existing, already_stored=True)
    if expected_click is not None and click.click_number != expected_click:
        raise Unprocessable(
            f"The URL names click {expected_click} but the zip holds click "
            f"{click.click_number}; PUT it to …/acquisitions/{click.click_number}."
        )
    duplicate = _by_click_number(session, study, click.click_number)
    if duplicate is not None:
        raise Conflict(
            f"Click {click.click_number} is already stored in this study (acquisition "
            f"{duplicate.id}) with different content; a click's raw files never change."
        )
    field = field_animals(session, study, prepared.identifiers, filename)
    check_alive(field, imaging_session, filename)
    chosen_view = _view(view, click)
    placed = _place_rois(click, field, prepared.bodies, chosen_view, study_template(study))
    results = quantify_placed(prepared.image, placed, filename)
    return store_acquisition(
        session,
        principal,
        store,
        click_acquisition(imaging_session, click, chosen_view, prepared.image),
        animals=field,
        placed=placed,
        results=results,
        staged=staged,
        filename=filename,
        role=CLICK_ROLE,
        media_type="application/zip",
    )


def check_alive(animals: list[Animal], imaging_session: ImagingSession, filename: str) -> None:
    for animal in animals:
        if animal.end_date is not None and imaging_session.acquired_on > animal.end_date:
            raise Unprocessable(
                f"{filename}: animal {animal.identifier} ended on {animal.end_date} "
                f"({animal.end_reason}) but this session is on {imaging_session.acquired_on}."
            )


def calibrate(click: imaging.IvisClick, filename: str) -> imaging.CalibratedImage:
    try:
        return imaging.calibrate_click(click)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: cannot calibrate to radiance: {exc}") from exc


def quantify_placed(
    image: imaging.CalibratedImage, placed: Sequence[PlacedRoi], filename: str
) -> tuple[imaging.RoiMeasurement, ...]:
    shape = image.radiance.shape
    return quantify_rois(
        image, [for_image(p.geometry, image.binning, shape) for p in placed], filename
    )


def quantify_rois(
    image: imaging.CalibratedImage, rois: Sequence[imaging.Roi], filename: str
) -> tuple[imaging.RoiMeasurement, ...]:
    try:
        return imaging.quantify(image, rois)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: {exc}") from exc


def existing_acquisition(session: Session, study: Study, sha256: str) -> Acquisition | None:
    """The acquisition of this study whose raw file has this SHA-256, if any."""
    return session.scalar(
        select(Acquisition)
        .join(AcquisitionFile, AcquisitionFile.acquisition_id == Acquisition.id)
        .join(ImagingSession, ImagingSession.id == Acquisition.session_id)
        .where(
            ImagingSession.study_id == study.id,
            AcquisitionFile.blob_sha256 == sha256,
            AcquisitionFile.role.in_(IMAGE_ROLES),
        )
        .limit(1)
    )


def _by_click_number(session: Session, study: Study, click_number: str) -> Acquisition | None:
    return session.scalar(
        select(Acquisition)
        .join(ImagingSession, ImagingSession.id == Acquisition.session_id)
        .where(ImagingSession.study_id == study.id, Acquisition.click_number == click_number)
        .limit(1)
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def click_acquisition(
    imaging_session: ImagingSession,
    click: imaging.IvisClick,
    view: View,
    image: imaging.CalibratedImage,
) -> Acquisition:
    """The (unsaved) acquisition row describing a click."""
    settings = click.settings
    return Acquisition(
        session_id=imaging_session.id,
        view=view,
        click_number=click.click_number,
        exposure_s=settings.exposure_s,
        binning=settings.binning,
        f_number=settings.f_number,
        fov_cm=settings.fov_cm,
        units=image.units,
        camera_metadata=jsonable(
            {
                "labels": dict(click.labels),
                "calibration": [{"name": s.name, **dict(s.parameters)} for s in image.steps],
                "sensor_pixels": click.sensor_pixels,
            }
        ),
    )


def store_acquisition(
    session: Session,
    principal: Principal,
    store: BlobStore,
    acquisition: Acquisition,
    *,
    animals: list[Animal],
    placed: list[PlacedRoi],
    results: Sequence[imaging.RoiMeasurement],
    staged: StagedFile,
    filename: str,
    role: str,
    media_type: str,
) -> AcquisitionRead:
    """Save an acquisition with its raw file (moved into the store), the animals in its
    field, its ROIs and their measurements, and audit it."""
    keep_blob(session, store, staged, media_type=media_type)
    session.add(acquisition)
    session.flush()
    session.add(
        AcquisitionFile(
            acquisition_id=acquisition.id,
            role=role,
            blob_sha256=staged.sha256,
            filename=filename[:255],
        )
    )
    for position, animal in enumerate(animals):
        session.add(
            AcquisitionAnimal(acquisition_id=acquisition.id, animal_id=animal.id, position=position)
        )
    for roi_spec, result in zip(placed, results, strict=True):
        roi = Roi(
            acquisition_id=acquisition.id,
            animal_id=roi_spec.animal.id if roi_spec.animal else None,
            site=roi_spec.site,
            label=roi_spec.label,
            shape=to_json(roi_spec.geometry)["type"],
            geometry=to_json(roi_spec.geometry),
            source=roi_spec.source,
            created_by_key_id=principal.key_id,
        )
        session.add(roi)
        session.flush()
        session.add(measurement_row(roi, result))
    session.flush()
    audit.record(
        session,
        principal,
        action="ingest",
        object_type="acquisition",
        object_id=acquisition.id,
        changes={"filename": filename, "sha256": staged.sha256, "name": acquisition.click_number},
    )
    return acquisition_read(session, acquisition, already_stored=False)


def measurement_row(roi: Roi, result: imaging.RoiMeasurement) -> Measurement:
    return Measurement(
        roi_id=roi.id,
        total_flux_ps=result.total_flux_ps,
        radiance_mean=_finite(result.radiance_mean),
        radiance_std=_finite(result.radiance_std),
        radiance_min=_finite(result.radiance_min),
        radiance_max=_finite(result.radiance_max),
        area_cm2=result.area_cm2,
        area_pixels=result.area_pixels,
        saturated_pixels=result.saturated_pixels,
        background_radiance=result.background_radiance_mean,
        units=result.units,
        flags=sorted(result.flags),
        method=f"imaging.quantify:{result.method}",
        parameters=jsonable(dict(result.parameters)),
        imaging_version=result.imaging_version,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def get_acquisition(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> Acquisition:
    imaging_session, _ = get_imaging_session(session, principal, study_id, session_id)
    acquisition = session.scalar(
        select(Acquisition).where(
            Acquisition.id == acquisition_id, Acquisition.session_id == imaging_session.id
        )
    )
    if acquisition is None:
        raise NotFound(f"No acquisition with id {acquisition_id} in imaging session {session_id}.")
    return acquisition


def acquisition_read(
    session: Session, acquisition: Acquisition, *, already_stored: bool
) -> AcquisitionRead:
    sha = session.scalar(
        select(AcquisitionFile.blob_sha256).where(
            AcquisitionFile.acquisition_id == acquisition.id, AcquisitionFile.role.in_(IMAGE_ROLES)
        )
    )
    field = session.execute(
        select(AcquisitionAnimal.position, Animal.id, Animal.identifier)
        .join(Animal, Animal.id == AcquisitionAnimal.animal_id)
        .where(AcquisitionAnimal.acquisition_id == acquisition.id)
        .order_by(AcquisitionAnimal.position)
    ).all()
    rows = session.execute(
        select(Roi, Measurement, Animal.identifier)
        .join(Measurement, Measurement.roi_id == Roi.id)
        .outerjoin(Animal, Animal.id == Roi.animal_id)
        .where(
            Roi.acquisition_id == acquisition.id,
            Roi.is_current.is_(True),
            Measurement.is_current.is_(True),
        )
        .order_by(Roi.created_at, Roi.label)
    ).all()
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
        sha256=sha or "",
        already_stored=already_stored,
        animals=[
            AcquisitionAnimalRead(position=p, animal_id=i, identifier=ident)
            for p, i, ident in field
        ],
        measurements=[
            MeasurementRead(
                measurement_id=m.id,
                roi_id=r.id,
                animal=ident,
                site=r.site.value,
                label=r.label,
                roi_source=r.source.value,
                total_flux_ps=m.total_flux_ps,
                radiance_mean=m.radiance_mean,
                radiance_std=m.radiance_std,
                radiance_min=m.radiance_min,
                radiance_max=m.radiance_max,
                area_cm2=m.area_cm2,
                saturated_pixels=m.saturated_pixels,
                units=m.units,
                flags=list(m.flags),
                method=m.method,
            )
            for r, m, ident in rows
        ],
        calibration=acquisition.camera_metadata.get("calibration", []),
        created_at=acquisition.created_at,
    )


def list_acquisitions(
    session: Session, principal: Principal, study_id: uuid.UUID, session_id: uuid.UUID
) -> list[AcquisitionRead]:
    """Acquisitions of an imaging session with their current measurements."""
    imaging_session, _ = get_imaging_session(session, principal, study_id, session_id)
    rows = session.scalars(
        select(Acquisition)
        .where(Acquisition.session_id == imaging_session.id)
        .order_by(Acquisition.created_at)
    )
    return [acquisition_read(session, a, already_stored=True) for a in rows]


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
    row = session.execute(
        select(AcquisitionFile, Blob)
        .join(Blob, Blob.sha256 == AcquisitionFile.blob_sha256)
        .where(AcquisitionFile.acquisition_id == acquisition.id)
        .order_by(AcquisitionFile.role)
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"Acquisition {acquisition_id} has no stored file.")
    file, blob = row
    return store.open(blob.sha256), file.filename, blob.media_type


def current_rois(session: Session, acquisition: Acquisition) -> list[Roi]:
    return list(
        session.scalars(
            select(Roi)
            .where(Roi.acquisition_id == acquisition.id, Roi.is_current.is_(True))
            .order_by(Roi.created_at, Roi.label)
        )
    )


def image_roi(roi: Roi, image: imaging.CalibratedImage) -> imaging.Roi:
    geometry = from_json(roi.geometry, label=roi.label or roi.site.value)
    return for_image(geometry, image.binning, image.radiance.shape)


def quantify_stored(
    image: imaging.CalibratedImage, rois: Sequence[Roi], name: str
) -> list[Measurement]:
    """New measurement rows for these ROIs on this image."""
    results = quantify_rois(image, [image_roi(r, image) for r in rois], name)
    return [measurement_row(roi, result) for roi, result in zip(rois, results, strict=True)]
