"""An acquisition's image: read from its raw file (zip or TIFF), calibrated to radiance and
measured in ROIs — the same steps on arrival (ingest), after an ROI edit, on requantification
and for the overlay, so a stored measurement can always be reproduced from the raw file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

import imaging
from app.acquisitions import repository
from app.acquisitions.repository import CLICK_ROLE
from app.config import Settings
from app.errors import Unprocessable
from app.ingest.schemas import TiffImageMetadata
from app.models import Acquisition, Measurement, Roi
from app.rois.geometry import for_image, from_json
from app.storage import BlobStore


def image_limits(settings: Settings) -> imaging.ImageLimits:
    """What an uploaded image may be, from the configured pixel limit."""
    return imaging.ImageLimits(max_pixels=settings.max_image_pixels)


def calibrate(click: imaging.IvisClick, filename: str) -> imaging.CalibratedImage:
    try:
        return imaging.calibrate_click(click)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: cannot calibrate to radiance: {exc}") from exc


def read_tiff(path_or_bytes: object, name: str, settings: Settings) -> np.ndarray:
    try:
        return imaging.read_tiff(
            path_or_bytes,  # type: ignore[arg-type]
            name=name,
            limits=image_limits(settings),
        ).data
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{exc} — send a single-image TIFF within the size limits.") from exc


def tiff_image(data: np.ndarray, meta: TiffImageMetadata, name: str) -> imaging.CalibratedImage:
    """The image in the stated units; counts become radiance only with c_ccd and friends."""
    if data.ndim != 2:
        raise Unprocessable(
            f"{name}: expected one grey-level image, got an array of shape {data.shape}; send "
            "the luminescent image alone (one page, one channel)."
        )
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise Unprocessable(
                f"{name}: {bad} of {data.size} pixels are NaN or infinite, so no flux can be "
                "measured over them; export the image again without masked or saturated "
                "pixels set to NaN/Inf (e.g. as raw counts)."
            )
    try:
        if (counts := meta.counts_calibration) is not None:
            c_ccd, exposure_s, bias_counts = counts
            return imaging.calibrate_counts(
                data,
                exposure_s=exposure_s,
                binning=meta.binning,
                c_ccd=c_ccd,
                bias_counts=bias_counts,
                sensor_pixel_cm=meta.sensor_pixel_cm,
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


def load_calibrated(
    session: Session, store: BlobStore, settings: Settings, acquisition: Acquisition
) -> tuple[imaging.IvisClick | None, imaging.CalibratedImage]:
    """Read an acquisition's stored raw file again and calibrate it as on arrival
    (deterministic): the click, if it was one, and the image."""
    file = repository.image_file(session, acquisition.id)
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


def image_roi(roi: Roi, image: imaging.CalibratedImage) -> imaging.Roi:
    """A stored ROI as an ``imaging`` ROI for this image."""
    geometry = from_json(roi.geometry, label=roi.label or roi.site.value)
    return for_image(geometry, image.binning, image.radiance.shape)


def quantify_rois(
    image: imaging.CalibratedImage, rois: Sequence[imaging.Roi], filename: str
) -> tuple[imaging.RoiMeasurement, ...]:
    try:
        return imaging.quantify(image, rois)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: {exc}") from exc


def measure_stored(
    session: Session,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    rois: Sequence[Roi],
) -> list[Measurement]:
    """New (unsaved) measurement rows for these stored ROIs, measured on the acquisition's
    image rebuilt from its raw file."""
    _, image = load_calibrated(session, store, settings, acquisition)
    name = f"{acquisition.click_number}.zip"
    results = quantify_rois(image, [image_roi(r, image) for r in rois], name)
    return [measurement_row(roi, result) for roi, result in zip(rois, results, strict=True)]


def measurement_row(roi: Roi, result: imaging.RoiMeasurement) -> Measurement:
    """The (unsaved) measurement row of one ROI's result."""
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


def jsonable(value: Any) -> Any:
    """``value`` with only JSON types (non-finite floats become null), for JSON columns."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
