"""Ingest of a plain TIFF with JSON metadata, for instruments other than an IVIS: the pixel
values are read in the units the metadata states, calibrated only when it gives the
constants, and measured in the ROIs it lists."""

from __future__ import annotations

import uuid
from typing import BinaryIO

import numpy as np
from sqlalchemy.orm import Session

import imaging
from app import idempotency
from app.acquisitions.roi_geometry import from_json
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.service import (
    TIFF_ROLE,
    PlacedRoi,
    acquisition_read,
    check_alive,
    existing_acquisition,
    field_animals,
    image_limits,
    jsonable,
    quantify_placed,
    store_acquisition,
)
from app.acquisitions.tiff_schemas import TiffImageMetadata, TiffMetadata
from app.auth import Principal
from app.config import Settings
from app.errors import Unprocessable
from app.models import Acquisition, RoiSource
from app.sessions.service import get_imaging_session
from app.storage import BlobStore
from app.studies.service import lock_study
from app.uploads import staged_upload


def tiff_image(data: np.ndarray, meta: TiffImageMetadata, name: str) -> imaging.CalibratedImage:
    """The image in the stated units; counts become radiance only with c_ccd and friends."""
    if data.ndim != 2:
        raise Unprocessable(
            f"{name}: expected one grey-level image, got an array of shape {data.shape}; send "
            "the luminescent image alone (one page, one channel)."
        )
    try:
        if meta.units == "counts" and meta.c_ccd is not None:
            return imaging.calibrate_counts(
                data,
                exposure_s=meta.exposure_s,
                binning=meta.binning,
                c_ccd=meta.c_ccd,  # type: ignore[arg-type]
                bias_counts=meta.bias_counts,
                sensor_pixel_cm=meta.sensor_pixel_cm,  # type: ignore[arg-type]
                saturation_counts=meta.saturation_counts,
                source=name,
            )
        return imaging.image_from_array(
            data,
            units=meta.units,
            binning=meta.binning,
            sensor_pixel_cm=meta.sensor_pixel_cm,
            source=name,
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{name}: {exc}") from exc


def read_tiff(path_or_bytes: object, name: str, settings: Settings) -> np.ndarray:
    try:
        return imaging.read_tiff(
            path_or_bytes,
            name=name,  # type: ignore[arg-type]
            limits=image_limits(settings),
        ).data
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{exc} — send a single-image TIFF within the size limits.") from exc


def ingest_tiff(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    upload: BinaryIO,
    *,
    filename: str,
    metadata: TiffMetadata,
    idempotency_key: str | None = None,
) -> AcquisitionRead:
    """Store a TIFF unchanged and measure the ROIs its metadata gives (stored once)."""
    principal.require_write(allow_instrument=True)
    with staged_upload(
        store, upload, max_bytes=settings.max_upload_bytes, filename=filename
    ) as staged:
        # The body is staged before the first query, so no transaction (on SQLite: no
        # write lock) is held while it streams in.
        imaging_session, study = get_imaging_session(session, principal, study_id, session_id)
        return idempotency.run_once(
            session,
            principal,
            idempotency_key,
            idempotency.fingerprint("tiff", session_id, staged.sha256, metadata.model_dump_json()),
            AcquisitionRead,
            lambda: _ingest(
                session,
                principal,
                store,
                settings,
                imaging_session,
                study,
                staged,
                filename=filename,
                metadata=metadata,
            ),
        )


def _ingest(
    session, principal, store, settings, imaging_session, study, staged, *, filename, metadata
):  # type: ignore[no-untyped-def]
    existing = existing_acquisition(session, study, staged.sha256)
    if existing is not None:
        return acquisition_read(session, existing, already_stored=True)
    image = tiff_image(read_tiff(staged.path, filename, settings), metadata, filename)
    animals = field_animals(session, study, metadata.animals, filename)
    check_alive(animals, imaging_session, filename)
    by_id = {a.identifier: a for a in animals}
    placed = [
        PlacedRoi(
            from_json(r.geometry),
            by_id[r.animal],
            r.site,
            r.label or f"{r.animal} {r.site.value}",
            RoiSource.client,
        )
        for r in metadata.rois
    ]
    results = quantify_placed(image, placed, filename)
    lock_study(session, study.id)
    existing = existing_acquisition(session, study, staged.sha256)
    if existing is not None:
        return acquisition_read(session, existing, already_stored=True)
    acquisition = Acquisition(
        session_id=imaging_session.id,
        view=metadata.view,
        click_number=metadata.name,
        exposure_s=metadata.exposure_s,
        binning=metadata.binning,
        f_number=metadata.f_number,
        fov_cm=metadata.fov_cm,
        units=image.units,
        camera_metadata=jsonable(
            {
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
        acquisition,
        animals=animals,
        placed=placed,
        results=results,
        staged=staged,
        filename=filename,
        role=TIFF_ROLE,
        media_type="image/tiff",
    )
