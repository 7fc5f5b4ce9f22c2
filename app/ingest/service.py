"""Ingest of uploaded images — an IVIS / Living Image click (zip) or a plain TIFF with JSON
metadata: stored unchanged, calibrated, ROIs placed on the right mice and quantified on
arrival, all in one transaction (all of it is kept, or none of it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import imaging
from app import audit, idempotency
from app.acquisitions import repository
from app.acquisitions.images import (
    Calibrated,
    acquisition_qc,
    image_limits,
    jsonable,
    primary_source,
    quantify_rois,
    read_tiff,
    remember_click,
    tiff_image,
)
from app.acquisitions.images import measurement_row as new_measurement
from app.acquisitions.repository import CLICK_ROLE, TIFF_ROLE
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.service import acquisition_read
from app.auth import Principal
from app.blobs import keep_blob
from app.config import Settings
from app.errors import BadRequest, Conflict, Unprocessable
from app.ingest import click as clicks
from app.ingest.placement import PlacedRoi, place_rois
from app.ingest.schemas import TiffImageMetadata, TiffMetadata
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    AcquisitionFile,
    Animal,
    ImagingSession,
    Roi,
    RoiSource,
    Site,
    Study,
    View,
)
from app.rois.geometry import for_image, from_json, to_json
from app.sessions.service import get_imaging_session
from app.storage import BlobStore, StagedFile
from app.studies.roi_template import study_template
from app.studies.service import lock_study
from app.uploads import Readable, staged_upload

_Prepared = TypeVar("_Prepared")


def _ingest_upload(
    session: Session,
    reader: sessionmaker[Session],
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    upload: Readable,
    *,
    filename: str,
    idempotency_key: str | None,
    request: Sequence[object],
    prepare: Callable[[StagedFile], _Prepared],
    keep: Callable[[ImagingSession, Study, StagedFile, _Prepared], AcquisitionRead],
    stored: Callable[[Acquisition, ImagingSession], AcquisitionRead],
    expected_sha256: str | None = None,
) -> AcquisitionRead:
    """Check the session exists (a short read-only transaction: a wrong or another lab's
    session answers 404 before the body is read or decoded), stage the upload and ``prepare``
    it (read, check, calibrate) with no transaction held (on SQLite: no write lock), then
    ``keep`` it, once per Idempotency-Key (``request`` and the content's SHA-256 identify it).
    Bytes stored before are recognised by their SHA-256 and answered by ``stored`` without
    being decoded again."""
    principal.require_write(allow_instrument=True)
    with reader() as lookup:
        _, study_row = get_imaging_session(lookup, principal, study_id, session_id)
    with staged_upload(
        store, upload, max_bytes=settings.max_upload_bytes, filename=filename
    ) as staged:
        if expected_sha256 is not None and staged.sha256 != expected_sha256:
            raise BadRequest(
                f"Content-Digest says sha-256 {expected_sha256} but the body received hashes to "
                f"{staged.sha256}: the upload was corrupted or truncated; send it again."
            )
        with reader() as lookup:
            known = repository.by_file(lookup, study_row.id, staged.sha256)
        prepared = None if known is not None else prepare(staged)
        imaging_session, study = get_imaging_session(session, principal, study_id, session_id)
        kind, *details = request

        def answer() -> AcquisitionRead:
            if prepared is None:  # stored content is never deleted: found again here
                existing = repository.by_file(session, study.id, staged.sha256)
                if existing is not None:
                    return stored(existing, imaging_session)
            decoded = prepared if prepared is not None else prepare(staged)
            return keep(imaging_session, study, staged, decoded)

        return idempotency.run_once(
            session,
            principal,
            idempotency_key,
            idempotency.fingerprint(kind, session_id, staged.sha256, *details),
            AcquisitionRead,
            answer,
        )


def ingest_click(
    session: Session,
    reader: sessionmaker[Session],
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    upload: Readable,
    *,
    filename: str,
    view: View | None = None,
    animals: Sequence[str] | None = None,
    expected_sha256: str | None = None,
    expected_click: str | None = None,
    idempotency_key: str | None = None,
) -> AcquisitionRead:
    """Store a zipped Living Image click and quantify it (the same click twice is stored once)."""
    streamed = clicks.StreamedUpload(
        upload, filename=filename, animals=animals, limits=image_limits(settings)
    )

    def prepare(staged: StagedFile) -> clicks.PreparedClick:
        return clicks.prepare(
            staged, settings, filename=filename, animals=animals, streamed=streamed
        )

    def stored(existing: Acquisition, imaging_session: ImagingSession) -> AcquisitionRead:
        return _already_stored(
            session, existing, imaging_session, filename=filename, animals=animals, view=view
        )

    def keep(
        imaging_session: ImagingSession,
        study: Study,
        staged: StagedFile,
        prepared: clicks.PreparedClick,
    ) -> AcquisitionRead:
        return _keep_click(
            session,
            principal,
            store,
            settings,
            imaging_session,
            study,
            staged,
            prepared,
            filename=filename,
            view=view,
            requested_animals=animals,
            expected_click=expected_click,
        )

    try:
        return _ingest_upload(
            session,
            reader,
            principal,
            store,
            settings,
            study_id,
            session_id,
            streamed,
            filename=filename,
            idempotency_key=idempotency_key,
            request=("click", view, animals),
            prepare=prepare,
            keep=keep,
            stored=stored,
            expected_sha256=expected_sha256,
        )
    finally:
        streamed.close()


def _keep_click(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    imaging_session: ImagingSession,
    study: Study,
    staged: StagedFile,
    prepared: clicks.PreparedClick,
    *,
    filename: str,
    view: View | None,
    requested_animals: Sequence[str] | None,
    expected_click: str | None,
) -> AcquisitionRead:
    click = prepared.click
    # Concurrent uploads to one study serialise here, so the duplicate checks see each other.
    lock_study(session, study.id)
    existing = repository.by_file(session, study.id, staged.sha256)
    if existing is not None:
        return _already_stored(
            session,
            existing,
            imaging_session,
            filename=filename,
            animals=requested_animals,
            view=view,
        )
    if expected_click is not None and click.click_number != expected_click:
        raise Unprocessable(
            f"The URL names click {expected_click} but the zip holds click "
            f"{click.click_number}; PUT it to …/acquisitions/{click.click_number}."
        )
    duplicate = repository.by_click_number(session, study.id, click.click_number)
    if duplicate is not None:
        raise Conflict(
            f"Click {click.click_number} is already stored in this study (acquisition "
            f"{duplicate.id}) with different content; a click's raw files never change."
        )
    field = field_animals(session, study, prepared.identifiers, imaging_session, filename)
    chosen_view = clicks.choose_view(view, click)
    placed = place_rois(prepared, field, chosen_view, study_template(study))
    calibrated = prepared.calibrated
    stored = store_acquisition(
        session,
        principal,
        store,
        settings,
        clicks.click_acquisition(imaging_session, click, chosen_view, prepared.image),
        animals=field,
        placed=placed,
        # measured on a thread while the acquisition's rows are written
        results=clicks.beside(quantify_placed, prepared.image, placed, filename, click=click),
        click=click,
        staged=staged,
        filename=filename,
        role=CLICK_ROLE,
        media_type="application/zip",
        calibrated=calibrated,
    )
    remember_click(staged.sha256, settings, calibrated, filename)  # for the ROI edits
    return stored


def ingest_tiff(
    session: Session,
    reader: sessionmaker[Session],
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    upload: Readable,
    *,
    filename: str,
    metadata: TiffMetadata,
    idempotency_key: str | None = None,
) -> AcquisitionRead:
    """Store a TIFF unchanged and measure the ROIs its metadata gives (stored once)."""

    def prepare(staged: StagedFile) -> imaging.CalibratedImage:
        return tiff_image(read_tiff(staged.path, filename, settings), metadata, filename)

    def stored(existing: Acquisition, imaging_session: ImagingSession) -> AcquisitionRead:
        return _already_stored(
            session,
            existing,
            imaging_session,
            filename=filename,
            animals=metadata.animals,
            view=metadata.view,
        )

    def keep(
        imaging_session: ImagingSession,
        study: Study,
        staged: StagedFile,
        image: imaging.CalibratedImage,
    ) -> AcquisitionRead:
        return _keep_tiff(
            session,
            principal,
            store,
            settings,
            imaging_session,
            study,
            staged,
            image,
            filename=filename,
            metadata=metadata,
        )

    return _ingest_upload(
        session,
        reader,
        principal,
        store,
        settings,
        study_id,
        session_id,
        upload,
        filename=filename,
        idempotency_key=idempotency_key,
        request=("tiff", metadata.model_dump_json()),
        prepare=prepare,
        keep=keep,
        stored=stored,
    )


def _keep_tiff(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    imaging_session: ImagingSession,
    study: Study,
    staged: StagedFile,
    image: imaging.CalibratedImage,
    *,
    filename: str,
    metadata: TiffMetadata,
) -> AcquisitionRead:
    lock_study(session, study.id)
    existing = repository.by_file(session, study.id, staged.sha256)
    if existing is not None:
        return _already_stored(
            session,
            existing,
            imaging_session,
            filename=filename,
            animals=metadata.animals,
            view=metadata.view,
        )
    animals = field_animals(session, study, metadata.animals, imaging_session, filename)
    by_id = {a.identifier: a for a in animals}
    placed = [
        PlacedRoi(
            from_json(r.geometry),
            by_id[r.animal] if r.animal is not None else None,
            r.site,
            r.label or f"{r.animal or 'no animal'} {r.site.value}",
            RoiSource.client,
        )
        for r in metadata.rois
    ]
    acquisition = Acquisition(
        session_id=imaging_session.id,
        view=metadata.view,
        click_number=metadata.name,
        exposure_s=metadata.exposure_s,
        binning=metadata.binning,
        f_number=metadata.f_number,
        fov_cm=metadata.fov_cm,
        acquired_at=metadata.acquired_at,
        units=image.units,
        camera_metadata=jsonable(
            {
                "settings": {
                    "emission_filter": (metadata.emission_filter or "").strip().casefold() or None
                },
                "tiff": metadata.model_dump(
                    mode="json", include=set(TiffImageMetadata.model_fields)
                ),
                "calibration": [{"name": s.name, **dict(s.parameters)} for s in image.steps],
            }
        ),
    )
    return store_acquisition(
        session,
        principal,
        store,
        settings,
        acquisition,
        animals=animals,
        placed=placed,
        results=quantify_placed(image, placed, filename),
        staged=staged,
        filename=filename,
        role=TIFF_ROLE,
        media_type="image/tiff",
    )


def _already_stored(
    session: Session,
    existing: Acquisition,
    imaging_session: ImagingSession,
    *,
    filename: str,
    animals: Sequence[str] | None,
    view: View | None,
) -> AcquisitionRead:
    """The stored acquisition of the same content (200) — unless this upload asks for another
    session, other animals or another view, which would otherwise be silently ignored (409,
    saying what is stored and which audited correction route changes it)."""
    base = (
        f"/studies/{imaging_session.study_id}/sessions/{existing.session_id}"
        f"/acquisitions/{existing.id}"
    )
    stored_animals = [
        identifier
        for (identifier,) in session.execute(
            select(Animal.identifier)
            .join(AcquisitionAnimal, AcquisitionAnimal.animal_id == Animal.id)
            .where(AcquisitionAnimal.acquisition_id == existing.id)
            .order_by(AcquisitionAnimal.position)
        )
    ]
    differences = []
    if existing.session_id != imaging_session.id:
        stored_in = session.get_one(ImagingSession, existing.session_id)
        differences.append(
            f"it is in the imaging session of {stored_in.acquired_on} ({existing.session_id}), "
            f"not the one of {imaging_session.acquired_on}; to move it, POST {base}/move "
            '{"session_id": …} with a reason'
        )
    if animals is not None and list(animals) != stored_animals:
        differences.append(
            f"its animals, left to right, are {', '.join(stored_animals) or 'none'}, not "
            f"{', '.join(animals)}; to correct them, PUT {base}/field with a reason"
        )
    if view is not None and view != existing.view:
        differences.append(f"its view is {existing.view.value}, not {view.value}")
    if differences:
        raise Conflict(
            f"{filename} was uploaded before (same SHA-256) and is stored as acquisition "
            f"{existing.id}, but " + "; and ".join(differences) + ". Nothing was changed."
        )
    return acquisition_read(session, existing, already_stored=True)


def field_animals(
    session: Session,
    study: Study,
    identifiers: Sequence[str],
    imaging_session: ImagingSession,
    filename: str,
) -> list[Animal]:
    """The study's animals with these (distinct) identifiers, in the given (left → right)
    order, each alive on the session's date."""
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
    field = [animals[i] for i in identifiers]
    for animal in field:
        if animal.end_date is not None and imaging_session.acquired_on > animal.end_date:
            raise Unprocessable(
                f"{filename}: animal {animal.identifier} ended on {animal.end_date} "
                f"({animal.end_reason}) but this session is on {imaging_session.acquired_on}."
            )
    return field


def quantify_placed(
    image: imaging.CalibratedImage,
    placed: Sequence[PlacedRoi],
    filename: str,
    *,
    click: imaging.IvisClick | None = None,
) -> tuple[imaging.RoiMeasurement, ...]:
    """The placed ROIs measured on the primary image, the first background ROI giving every
    ROI its detection limit (recorded, not subtracted)."""
    shape = image.radiance.shape
    rois = [for_image(p.geometry, image.binning, shape) for p in placed]
    background = next(
        (r for r, p in zip(rois, placed, strict=True) if p.site == Site.background), None
    )
    return quantify_rois(image, rois, filename, click=click, background=background)


def store_acquisition(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    *,
    animals: list[Animal],
    placed: list[PlacedRoi],
    results: Sequence[imaging.RoiMeasurement] | Callable[[], Sequence[imaging.RoiMeasurement]],
    staged: StagedFile,
    filename: str,
    role: str,
    media_type: str,
    click: imaging.IvisClick | None = None,
    calibrated: Calibrated | None = None,
) -> AcquisitionRead:
    """Save an acquisition with its raw file (moved into the store), the animals in its
    field, its ROIs and their measurements (with the acquisition's QC), and audit it
    (``calibrated``: the click as uploaded, whose exposure check the QC takes; ``results``:
    the ROIs' measurements in ``placed`` order, or what gives them once the rows are in)."""
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
    qc = acquisition_qc(session, settings, acquisition, click, calibrated=calibrated)
    source = primary_source(click)
    rois = []
    for roi_spec in placed:
        geometry = to_json(roi_spec.geometry)
        roi = Roi(
            acquisition_id=acquisition.id,
            animal_id=roi_spec.animal.id if roi_spec.animal else None,
            site=roi_spec.site,
            label=roi_spec.label,
            shape=geometry["type"],
            geometry=geometry,
            source=roi_spec.source,
            created_by_key_id=principal.key_id,
        )
        session.add(roi)
        rois.append(roi)
    session.flush()  # all ROIs in one flush, then their measurements in one more
    measured = results() if callable(results) else results
    session.add_all(
        new_measurement(roi, result, source=source, qc=qc)
        for roi, result in zip(rois, measured, strict=True)
    )
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
