"""An acquisition's image: read from its raw file (zip or TIFF), calibrated to radiance and
measured in ROIs — the same steps on arrival (ingest), after an ROI edit, on requantification
and for the overlay, so a stored measurement can always be reproduced from the raw file.

Which calibration: a click that carries Living Image's own ``luminescentFloatCorrected.TIF``
is measured on it (its numbers continue the lab's Living Image numbers), with the raw-count
calibration computed beside it (``parameters["calibration_check"]``, flag
``calibration_disagrees`` beyond the tolerance of :mod:`imaging.fidelity`); other clicks on
their raw counts (:func:`imaging.quantify_click`). The acquisition's background ROI (site
``background``) gives every ROI its detection limit (``parameters["detection"]``, flag
``below_detection``); it is recorded, never subtracted.

Acquisition QC (:func:`acquisition_qc`) goes on every measurement of the acquisition, as
flags and ``parameters["acquisition_qc"]``: minutes since D-luciferin injection
(``outside_luciferin_window``, ``acquired_before_injection``; window from the settings),
exposure of the raw counts (``near_saturation``, ``underexposed``; ``saturated`` stays a per-ROI
flag: the ROI's own pixels) and camera settings against the study's series
(``camera_settings_changed``, ``<setting>_changed``). The series is the study's acquisitions
at the time of measurement: requantifying the study brings every acquisition's flags up to
date after later uploads changed the series' most common settings."""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from sqlalchemy.orm import Session

import imaging
from app.acquisitions import repository
from app.acquisitions.repository import CLICK_ROLE
from app.config import Settings
from app.errors import Unprocessable
from app.ingest.schemas import TiffImageMetadata
from app.models import Acquisition, ImagingSession, Measurement, Roi, Site
from app.rois.geometry import for_image, from_json
from app.storage import BlobStore


def image_limits(settings: Settings) -> imaging.ImageLimits:
    """What an uploaded image may be, from the configured pixel limit."""
    return imaging.ImageLimits(max_pixels=settings.max_image_pixels)


def primary_image(click: imaging.IvisClick, filename: str) -> imaging.CalibratedImage:
    """The image a click's numbers come from: Living Image's corrected image when the click
    carries it, else its raw counts calibrated (:func:`imaging.primary_image`)."""
    try:
        return imaging.primary_image(click)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: cannot calibrate to radiance: {exc}") from exc


def primary_source(click: imaging.IvisClick | None) -> str | None:
    """``living_image_corrected`` or ``raw_counts`` for a click; ``None`` for a TIFF."""
    if click is None:
        return None
    return "living_image_corrected" if click.corrected is not None else "raw_counts"


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


_V = TypeVar("_V")


class BoundedCache(Generic[_V]):
    """The most recently used values, bounded in bytes (``size`` of each value; the newest is
    kept even alone above the bound). For values derived from a stored raw file, keyed by its
    SHA-256 (it never changes, so an entry is never stale): an optimisation only, nothing
    depends on a hit. Concurrent requests for one key compute it once."""

    def __init__(self, max_bytes: int, *, size: Callable[[_V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size
        self._entries: OrderedDict[Hashable, tuple[_V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, compute: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
            busy = self._computing.setdefault(key, threading.Lock())
        with busy:  # concurrent requests for one key compute it once
            with self._lock:
                if key in self._entries:
                    return self._entries[key][0]
            try:
                value = compute()
            except BaseException:
                with self._lock:
                    self._computing.pop(key, None)
                raise
            self.put(key, value)
            return value

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._entries[key] = (value, self._size_of(value))
            self._entries.move_to_end(key)
            self._computing.pop(key, None)
            total = sum(n for _, n in self._entries.values())
            while len(self._entries) > 1 and total > self.max_bytes:
                _, (_, n) = self._entries.popitem(last=False)
                total -= n

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class Calibrated:
    """A stored raw file read and calibrated: the click (``None`` for a TIFF), its primary
    image, and for a click the raw-count calibration its measurements are checked against
    (the primary image itself when the click has no Living Image corrected image); the
    click's exposure check is computed once, when first asked for."""

    click: imaging.IvisClick | None
    image: imaging.CalibratedImage
    raw: imaging.CalibratedImage | None
    _exposure: list[imaging.ExposureCheck | None] = field(default_factory=list, repr=False)

    def exposure(self) -> imaging.ExposureCheck | None:
        if not self._exposure and self.click is not None:
            # a race computes it twice, to the same value
            self._exposure.append(click_exposure(self.click, self.raw))
        return self._exposure[0] if self._exposure else None


def _calibrated_bytes(entry: Calibrated) -> int:
    arrays: list[np.ndarray | None] = []
    for image in {id(entry.image): entry.image, id(entry.raw): entry.raw}.values():
        if image is not None:
            arrays += [image.radiance, image.saturation_mask]
    if entry.click is not None:
        c = entry.click
        frames = (c.luminescent, c.photograph, c.readbias, c.dark, c.corrected)
        arrays += [f.data for f in frames if f is not None]
    return sum(a.nbytes for a in arrays if a is not None)


#: Calibrated raw files by SHA-256: an ROI edit, the overlay or a kinetics figure after the
#: upload (or another edit) of the same click does not read and calibrate it again. About
#: eight 2048² clicks (~30 MB each) or hundreds of 240² ones.
CALIBRATED = BoundedCache[Calibrated](256 * 2**20, size=_calibrated_bytes)


def _read_only(image: imaging.CalibratedImage | None) -> None:
    if image is not None:
        for array in (image.radiance, image.saturation_mask):
            if array is not None:
                array.setflags(write=False)  # shared between requests: nobody may change it


def calibrated_key(
    file_sha256: str, role: str, acquisition: Acquisition | None, settings: Settings
) -> Hashable:
    """What a stored file's calibration depends on besides the code: its bytes, how it was
    uploaded, a TIFF's metadata, and the image limits."""
    tiff = None
    if role != CLICK_ROLE and acquisition is not None:
        tiff = (acquisition.camera_metadata or {}).get("tiff")
    return (file_sha256, role, json.dumps(tiff, sort_keys=True), settings.max_image_pixels)


def remember_click(
    file_sha256: str, settings: Settings, calibrated: Calibrated, filename: str
) -> None:
    """Keep what an upload computed for its raw file (:func:`uploaded`), so the first ROI
    edit need not read it again — when it is exactly what :func:`load_calibration` would
    compute: read under the name it uses (measurements record the image's source), with its
    raw-count calibration at hand."""
    click = calibrated.click
    if click is None or calibrated.raw is None or filename != f"{click.click_number}.zip":
        return
    _read_only(calibrated.image)
    CALIBRATED.put(calibrated_key(file_sha256, CLICK_ROLE, None, settings), calibrated)


class _Unchecked:
    """The exposure check has not been computed (``None`` is a result: no bias known)."""


_UNCHECKED = _Unchecked()


def uploaded(
    click: imaging.IvisClick,
    image: imaging.CalibratedImage,
    *,
    checked: imaging.ExposureCheck | _Unchecked | None = _UNCHECKED,
) -> Calibrated:
    """An uploaded click with its primary image (and that image as its raw-count calibration
    when there is no Living Image corrected image); ``checked``: its exposure check when
    already computed (on a click calibrated alike)."""
    calibrated = Calibrated(click, image, image if click.corrected is None else None)
    if not isinstance(checked, _Unchecked):
        calibrated._exposure.append(checked)
    return calibrated


def load_calibrated(
    session: Session, store: BlobStore, settings: Settings, acquisition: Acquisition
) -> tuple[imaging.IvisClick | None, imaging.CalibratedImage]:
    """Read an acquisition's stored raw file again and calibrate it as on arrival
    (deterministic): the click, if it was one, and the image."""
    calibrated = load_calibration(session, store, settings, acquisition)
    return calibrated.click, calibrated.image


def load_calibration(
    session: Session, store: BlobStore, settings: Settings, acquisition: Acquisition
) -> Calibrated:
    """:func:`load_calibrated` with the raw-count calibration of a click, from
    :data:`CALIBRATED` when this raw file was calibrated recently (the arrays are read-only)."""
    file = repository.image_file(session, acquisition.id)
    if file is None:
        raise Unprocessable(
            "This acquisition was imported from a table of measurements; it has no image."
        )

    def compute() -> Calibrated:
        with store.open(file.blob_sha256) as handle:
            content = handle.read()
        if file.role != CLICK_ROLE:
            meta = TiffImageMetadata.model_validate(acquisition.camera_metadata["tiff"])
            image = tiff_image(read_tiff(content, file.filename, settings), meta, file.filename)
            _read_only(image)
            return Calibrated(None, image, None)
        name = f"{acquisition.click_number}.zip"
        click = imaging.read_ivis_click(content, name=name, limits=image_limits(settings))
        image = primary_image(click, name)
        raw = image if click.corrected is None else raw_calibration(click, name)
        _read_only(image)
        _read_only(raw)
        return Calibrated(click, image, raw)

    key = calibrated_key(file.blob_sha256, file.role, acquisition, settings)
    return CALIBRATED.get(key, compute)


def raw_calibration(click: imaging.IvisClick, filename: str) -> imaging.CalibratedImage:
    """The click's raw counts calibrated (the check beside Living Image's corrected image)."""
    try:
        return imaging.calibrate_click(click)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: cannot calibrate the raw counts: {exc}") from exc


def image_roi(roi: Roi, image: imaging.CalibratedImage) -> imaging.Roi:
    """A stored ROI as an ``imaging`` ROI for this image."""
    geometry = from_json(roi.geometry, label=roi.label or roi.site.value)
    return for_image(geometry, image.binning, image.radiance.shape)


def quantify_rois(
    image: imaging.CalibratedImage,
    rois: Sequence[imaging.Roi],
    filename: str,
    *,
    click: imaging.IvisClick | None = None,
    background: imaging.Roi | None = None,
    raw_image: imaging.CalibratedImage | None = None,
) -> tuple[imaging.RoiMeasurement, ...]:
    """ROIs measured on ``image`` (a click's primary image, or a TIFF's), the background ROI
    recorded and not subtracted; for a click with Living Image's corrected image, each
    result also carries the raw-count calibration check (module docstring), on ``raw_image``
    when the caller has it."""
    try:
        if click is not None:
            return imaging.quantify_click(
                click,
                rois,
                background=background,
                subtract_background=False,
                # without a corrected image the primary *is* the raw calibration: not twice
                raw_image=image if click.corrected is None else raw_image,
            ).measurements
        return imaging.quantify(image, rois, background=background, subtract_background=False)
    except imaging.ImagingError as exc:
        raise Unprocessable(f"{filename}: {exc}") from exc


def background_of(rois: Sequence[Roi]) -> Roi | None:
    """The ROI whose pixels give an acquisition's detection limits: its first current
    ``background`` ROI."""
    return next((r for r in rois if r.site == Site.background and r.is_current), None)


@dataclass(frozen=True)
class AcquisitionQc:
    """Acquisition-level QC: flags for every measurement of the acquisition and the values
    behind them (``parameters["acquisition_qc"]``)."""

    flags: frozenset[str] = frozenset()
    parameters: dict[str, Any] = field(default_factory=dict)


def settings_of(acquisition: Acquisition) -> imaging.AcquisitionSettings:
    """An acquisition's luminescent settings from its row (filters from its metadata)."""
    recorded = (acquisition.camera_metadata or {}).get("settings") or {}
    return imaging.AcquisitionSettings(
        exposure_s=acquisition.exposure_s,
        binning=acquisition.binning,
        f_number=acquisition.f_number,
        fov_cm=acquisition.fov_cm,
        emission_filter=recorded.get("emission_filter"),
        excitation_filter=recorded.get("excitation_filter"),
    )


def click_settings_metadata(click: imaging.IvisClick) -> dict[str, Any]:
    """What an acquisition row keeps of a click for the series QC (``camera_metadata``)."""
    s = imaging.AcquisitionSettings.from_click(click)
    return {"emission_filter": s.emission_filter, "excitation_filter": s.excitation_filter}


def click_exposure(
    click: imaging.IvisClick, raw: imaging.CalibratedImage | None = None
) -> imaging.ExposureCheck | None:
    """:func:`imaging.check_exposure` of the click's raw counts against its bias level (the
    bias frame's mean when no level is stated); ``None`` without either. ``raw``: the click's
    raw-count calibration, whose recorded peak is the check's when it subtracted the same
    level and no dark with the default cosmic filter (one pass over the image fewer)."""
    bias = click.settings.read_bias_level
    if bias is None and click.readbias is not None:
        frame = click.readbias
        bias = float(frame.data.mean(dtype=np.float64)) / frame.data_multiplier
    if bias is None:
        return None
    saturation = click.camera.saturation_counts if click.camera is not None else None
    return imaging.check_exposure(
        click.luminescent.data,
        bias_counts=bias,
        saturation_counts=saturation,
        peak_counts=_calibrated_peak(raw, bias),
    )


def _calibrated_peak(raw: imaging.CalibratedImage | None, bias: float) -> float | None:
    steps = {s.name: s.parameters for s in raw.steps} if raw is not None else {}
    cosmic = steps.get("cosmic_rays", {})
    default = imaging.CosmicRayRemoval()
    same = (
        steps.get("bias", {}).get("source") == "level"
        and steps.get("bias", {}).get("counts") == bias
        and steps.get("dark", {}).get("applied") is False
        and cosmic.get("min_excess_counts") == default.min_excess_counts
        and cosmic.get("min_ratio") == default.min_ratio
    )
    peak = cosmic.get("peak_counts") if same else None
    return float(peak) if isinstance(peak, int | float) else None


def backfill_from_click(acquisition: Acquisition, click: imaging.IvisClick) -> None:
    """What acquisitions stored before osteolux read it from the click get from their raw file
    when measured again (deterministic): the acquisition time and the filters."""
    if acquisition.acquired_at is None:
        acquisition.acquired_at = imaging.acquisition_time(click).utc
    metadata = dict(acquisition.camera_metadata or {})
    if "settings" not in metadata:
        metadata["settings"] = click_settings_metadata(click)
        acquisition.camera_metadata = metadata


def acquisition_qc(
    session: Session,
    settings: Settings,
    acquisition: Acquisition,
    click: imaging.IvisClick | None,
    *,
    series: Sequence[Acquisition] | None = None,
    calibrated: Calibrated | None = None,
) -> AcquisitionQc:
    """Time since D-luciferin injection, exposure and camera settings against the study's
    series (``series``: the study's acquisitions, when the caller has them), for one (flushed)
    acquisition (``calibrated``: its loaded raw file, whose exposure check is kept with it)."""
    flags: set[str] = set()
    parameters: dict[str, Any] = {}
    imaging_session = session.get_one(ImagingSession, acquisition.session_id)
    # time since injection
    acquired_at = acquisition.acquired_at
    injected_at = imaging_session.luciferin_injected_at
    parameters["acquired_at"] = acquired_at.isoformat() if acquired_at else None
    parameters["minutes_since_injection"] = None
    if acquired_at is not None and injected_at is not None:
        window = settings.luciferin_window_min
        timing = imaging.luciferin_timing(injected_at, acquired_at, window_min=window)
        parameters["minutes_since_injection"] = timing.minutes
        parameters["luciferin"] = {
            "window_min": list(timing.window_min),
            "flags": sorted(timing.flags),
        }
        flags |= timing.flags
    # exposure of the raw counts
    if click is not None:
        exposure = calibrated.exposure() if calibrated is not None else click_exposure(click)
        if exposure is not None:
            parameters["exposure"] = {
                "peak_counts": exposure.peak_counts,
                "saturated_pixels": exposure.saturated_pixels,
                "saturation_counts": exposure.saturation_counts,
                "flags": sorted(exposure.flags),
            }
            # ``saturated`` stays the ROI's own: quantify flags the ROIs whose pixels saturated
            flags |= exposure.flags - {"saturated"}
    # camera settings against the study's series
    if series is None:
        of_series = repository.series_settings(session, imaging_session.study_id)
    else:
        of_series = [(a.id, settings_of(a)) for a in series]
    checks = imaging.check_settings_series([s for _, s in of_series])
    mine = next(
        (c for (id_, _), c in zip(of_series, checks, strict=True) if id_ == acquisition.id), None
    )
    if mine is not None:
        own = settings_of(acquisition)
        parameters["camera_settings"] = {
            "changed": {
                n: [getattr(own, n), getattr(mine.reference, n)] for n in sorted(mine.changed)
            },
            "impact": mine.impact,
            "series": "study",
            "acquisitions_in_series": len(of_series),
        }
        flags |= mine.flags
    return AcquisitionQc(frozenset(flags), parameters)


_IMPACT = {
    "incomparable": "incomparable with the rest of the study (another filter counts another "
    "part of the spectrum)",
    "caution": "compare with care (resolution, flat field and the pixels in each ROI change)",
}


def qc_warnings(parameters: dict[str, Any]) -> list[str]:
    """Sentences for a person from an acquisition's stored ``acquisition_qc`` parameters."""
    out = []
    luciferin = parameters.get("luciferin") or {}
    minutes = parameters.get("minutes_since_injection")
    if luciferin.get("flags") and minutes is not None:
        lo, hi = luciferin["window_min"]
        out.append(
            f"Acquired {minutes:.1f} min after the D-luciferin injection, outside the "
            f"{lo:g}–{hi:g} min window: off the signal's plateau, not comparable with "
            "acquisitions taken inside it."
        )
    exposure = parameters.get("exposure") or {}
    flags = set(exposure.get("flags") or ())
    if flags & {"saturated", "near_saturation"}:
        out.append(
            f"The raw counts peak at {exposure['peak_counts']:.0f} above bias "
            f"({exposure['saturated_pixels']} pixels at the CCD saturation level "
            f"{exposure['saturation_counts']:g}): the brightest source is outside the CCD's "
            "linear range; take a shorter exposure."
        )
    if "underexposed" in flags:
        out.append(
            f"The brightest pixel is {exposure['peak_counts']:.0f} counts above bias: "
            "underexposed (noise and dark charge dominate); take a longer exposure."
        )
    camera = parameters.get("camera_settings") or {}
    # an exposure change alone ("info") is flagged, not a warning: radiance is per second
    if camera.get("changed") and camera.get("impact") in ("caution", "incomparable"):
        changes = ", ".join(
            f"{name} {mine} (study: {reference})"
            for name, (mine, reference) in camera["changed"].items()
        )
        out.append(
            f"Camera settings differ from the study's most common: {changes}; "
            f"{_IMPACT.get(camera.get('impact', ''), '')}."
        )
    return out


def measure_stored(
    session: Session,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    rois: Sequence[Roi],
    *,
    series: Sequence[Acquisition] | None = None,
) -> list[Measurement]:
    """New (unsaved) measurement rows for these stored ROIs, measured on the acquisition's
    image rebuilt from its raw file, against its current background ROI, with the
    acquisition's QC."""
    calibrated = load_calibration(session, store, settings, acquisition)
    click, image = calibrated.click, calibrated.image
    name = f"{acquisition.click_number}.zip"
    background = background_of(rois) or background_of(
        repository.current_rois(session, acquisition.id)
    )
    results = quantify_rois(
        image,
        [image_roi(r, image) for r in rois],
        name,
        click=click,
        background=image_roi(background, image) if background is not None else None,
        raw_image=calibrated.raw,
    )
    if click is not None:
        backfill_from_click(acquisition, click)
    qc = acquisition_qc(session, settings, acquisition, click, series=series, calibrated=calibrated)
    source = primary_source(click)
    return [
        measurement_row(roi, result, source=source, qc=qc)
        for roi, result in zip(rois, results, strict=True)
    ]


def measurement_row(
    roi: Roi,
    result: imaging.RoiMeasurement,
    *,
    source: str | None = None,
    qc: AcquisitionQc | None = None,
) -> Measurement:
    """The (unsaved) measurement row of one ROI's result; ``source`` is the click's primary
    calibration (``None``: a TIFF measured with :func:`imaging.quantify`)."""
    qc = qc or AcquisitionQc()
    parameters = dict(result.parameters)
    if source is not None:
        parameters["primary_calibration"] = source
    parameters["acquisition_qc"] = qc.parameters
    method = (
        f"imaging.quantify_click:{source}:{result.method}"
        if source is not None
        else f"imaging.quantify:{result.method}"
    )
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
        flags=sorted(result.flags | qc.flags),
        method=method,
        parameters=jsonable(parameters),
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
