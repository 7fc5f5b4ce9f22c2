"""The image layers and ROIs of an acquisition, for the workspace's viewer and ROI editor."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.acquisitions import repository
from app.acquisitions.images import BoundedCache, load_calibrated
from app.acquisitions.service import get_acquisition
from app.auth import Principal
from app.config import Settings
from app.errors import NotFound, Unprocessable
from app.models import Acquisition, Animal, Roi
from app.pagination import PageParams
from app.storage import BlobStore
from app.viewer.schemas import DefaultScales, ImageRead, PhotographLayer, RoiVersion, ScaleRange


def default_scales(radiance: np.ndarray) -> DefaultScales:
    """The overlay's colour ranges (imaging.render_overlay): log from 1/50 of the 99.9th
    percentile of positive pixels to it; linear from the median to the maximum."""
    finite = radiance[np.isfinite(radiance)].astype(np.float64)
    positive = finite[finite > 0]
    hi = float(np.percentile(positive, 99.9)) if positive.size else 10.0
    lo_lin = float(np.percentile(finite, 50)) if finite.size else 0.0
    hi_lin = float(finite.max()) if finite.size else 1.0
    return DefaultScales(
        log=ScaleRange(min=hi / 50.0, max=max(hi, hi / 50.0 * 1.0001)),
        linear=ScaleRange(min=lo_lin, max=max(hi_lin, lo_lin + 1e-12)),
    )


def roi_versions(
    session: Session,
    acquisition_id: uuid.UUID,
    *,
    history: bool,
    page: PageParams | None = None,
) -> list[RoiVersion]:
    query = (
        select(Roi, Animal.identifier)
        .outerjoin(Animal, Animal.id == Roi.animal_id)
        .where(Roi.acquisition_id == acquisition_id)
        .order_by(Roi.created_at, Roi.label, Roi.id)
    )
    if not history:
        query = query.where(Roi.is_current.is_(True))
    if page is not None:
        query = query.limit(page.limit).offset(page.offset)
    return [
        RoiVersion(
            roi_id=roi.id,
            animal=identifier,
            site=roi.site.value,
            label=roi.label,
            source=roi.source.value,
            geometry=roi.geometry,
            is_current=roi.is_current,
            supersedes_id=roi.supersedes_id,
            reason=roi.change_reason,
            created_at=roi.created_at,
        )
        for roi, identifier in session.execute(query)
    ]


@dataclass(frozen=True)
class Layers:
    """What the viewer shows of one stored image, computed once from its raw file."""

    info: ImageRead  # without ROIs (they change; the image does not)
    radiance: bytes  # little-endian float32, row-major
    rows: int
    cols: int
    photograph_png: bytes | None


class LayerCache(BoundedCache[Layers]):
    """The most recently viewed images' layers, bounded in bytes. A stored raw file never
    changes, so an entry keyed by its SHA-256 is never stale; the three requests a viewer
    makes for one image (info, radiance, photograph) read the raw file once."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size=lambda e: len(e.radiance) + len(e.photograph_png or b""))


#: About a dozen 2048² images, or hundreds of 240² ones.
CACHE = LayerCache(max_bytes=256 * 2**20)


def _layers(
    session: Session, store: BlobStore, settings: Settings, acquisition: Acquisition
) -> Layers:
    file = repository.image_file(session, acquisition.id)
    if file is None:
        raise Unprocessable(
            "This acquisition was imported from a table of measurements; it has no image."
        )

    def compute() -> Layers:
        click, image = load_calibrated(session, store, settings, acquisition)
        data = np.ascontiguousarray(image.radiance, dtype="<f4")
        rows, cols = data.shape
        photo = click.photograph if click is not None else None
        info = ImageRead(
            rows=rows,
            cols=cols,
            binning=image.binning,
            sensor_rows=rows * image.binning,
            sensor_cols=cols * image.binning,
            sensor_pixel_cm=image.sensor_pixel_cm,
            units=image.units,
            calibrated=image.calibrated,
            photograph=None
            if photo is None
            else PhotographLayer(
                rows=photo.data.shape[0], cols=photo.data.shape[1], binning=photo.binning
            ),
            scale=default_scales(np.asarray(image.radiance)),
            rois=[],
        )
        png = _grey_png(np.asarray(photo.data)) if photo is not None else None
        return Layers(info, data.tobytes(), rows, cols, png)

    return CACHE.get(file.blob_sha256, compute)


def _grey_png(data: np.ndarray) -> bytes:
    """8-bit grey PNG, stretched between the 0.5th and 99.5th percentiles."""
    from PIL import Image  # matplotlib's own dependency

    values = np.asarray(data, dtype=np.float64)
    lo, hi = np.percentile(values[np.isfinite(values)], [0.5, 99.5])
    grey = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    buffer = io.BytesIO()
    Image.fromarray(np.round(grey * 255).astype(np.uint8), mode="L").save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def image_info(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> ImageRead:
    """Shape, binning, units and default colour ranges of the image, and its current ROIs."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    layers = _layers(session, store, settings, acquisition)
    rois = roi_versions(session, acquisition.id, history=False)
    return layers.info.model_copy(update={"rois": rois})


def radiance_f32(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> tuple[bytes, int, int]:
    """The calibrated image as little-endian float32, row-major: (bytes, rows, cols)."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    layers = _layers(session, store, settings, acquisition)
    return layers.radiance, layers.rows, layers.cols


def photograph_png(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
) -> bytes:
    """The photograph as an 8-bit grey PNG, stretched between its 0.5th and 99.5th percentiles."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    png = _layers(session, store, settings, acquisition).photograph_png
    if png is None:
        raise NotFound(f"Acquisition {acquisition_id} has no photograph.")
    return png


def roi_history(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    page: PageParams,
) -> tuple[list[RoiVersion], int]:
    """A page of every version of every ROI of the acquisition, current or not, oldest first,
    and how many versions there are."""
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    total = session.scalar(
        select(func.count()).select_from(Roi).where(Roi.acquisition_id == acquisition.id)
    )
    return roi_versions(session, acquisition.id, history=True, page=page), int(total or 0)
