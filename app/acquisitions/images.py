"""An acquisition's image rebuilt from its stored raw file, and the overlay drawn on it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

import imaging
from app.acquisitions.service import (
    CLICK_ROLE,
    IMAGE_ROLES,
    calibrate,
    current_rois,
    get_acquisition,
    image_limits,
    image_roi,
    quantify_rois,
)
from app.acquisitions.tiff_ingest import read_tiff, tiff_image
from app.acquisitions.tiff_schemas import TiffImageMetadata
from app.auth import Principal
from app.config import Settings
from app.errors import Unprocessable
from app.models import Acquisition, AcquisitionFile
from app.storage import BlobStore


def load_calibrated(
    session: Session, store: BlobStore, settings: Settings, acquisition: Acquisition
) -> tuple[imaging.IvisClick | None, imaging.CalibratedImage]:
    """Read an acquisition's stored raw file again and calibrate it as on arrival
    (deterministic): the click, if it was one, and the image."""
    file = session.scalar(
        select(AcquisitionFile).where(
            AcquisitionFile.acquisition_id == acquisition.id,
            AcquisitionFile.role.in_(IMAGE_ROLES),
        )
    )
    if file is None:
        raise Unprocessable(
            "This acquisition was imported from a table of measurements; it has no image."
        )
    with store.open(file.blob_sha256) as handle:
        content = handle.read()
    if file.role != CLICK_ROLE:
        meta = TiffImageMetadata.model_validate(acquisition.camera_metadata["tiff"])
        return None, tiff_image(read_tiff(content, file.filename, settings), meta, file.filename)
    name = f"{acquisition.click_number}.zip"
    click = imaging.read_ivis_click(content, name=name, limits=image_limits(settings))
    return click, calibrate(click, name)


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
) -> bytes:
    """The luminescence on the photograph with each current ROI, its label and its flux."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    click, image = load_calibrated(session, store, settings, acquisition)
    rows = current_rois(session, acquisition)
    rois = [image_roi(r, image) for r in rows]
    measurements = quantify_rois(image, rois, f"{acquisition.click_number}.zip")
    photo = click.photograph if click is not None else None
    return imaging.render_overlay(
        image,
        photograph=photo.data if photo is not None else None,
        photograph_binning=photo.binning if photo is not None else None,
        rois=rois,
        measurements=measurements,
        scale="linear" if scale == "linear" else "log",
        title=f"{acquisition.click_number} — {acquisition.view.value}",
    )
