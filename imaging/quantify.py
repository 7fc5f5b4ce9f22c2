"""Per-ROI quantification: total flux [p/s], radiance statistics, area, QC flags.

Total flux (``design/domain/BLI.md``, checked against Living Image on the reference folder)::

    total_flux_ps = Σ_i w_i · (L_i − L_bkg) · A_pixel · 4π

with ``L_i`` radiance [p/s/cm²/sr], ``w_i`` the pixel weight (``center``: 0/1, ``exact``:
fractional overlap), ``A_pixel`` the binned pixel area [cm²] and ``L_bkg`` the mean radiance
of an optional background ROI. Average radiance is ``Σ w L / Σ w``; the standard deviation is
the weighted population one, ``sqrt(Σ w (L − mean)² / Σ w)``. Sums are accumulated in float64.

Detection limit (given a background ROI: a patch of the field with no animal)::

    L_DL = μ_bkg + k · σ_bkg                                  [p/s/cm²/sr]
    F_DL = (L_DL − μ_subtracted) · A_roi · 4π                 [p/s]

``μ_bkg`` and ``σ_bkg`` are the mean and (population) standard deviation of the background
ROI's pixel radiances, ``A_roi`` the ROI's area and ``μ_subtracted`` the background actually
subtracted from the ROI (``μ_bkg`` or 0), so ``F_DL`` is on the scale of ``total_flux_ps``.
An ROI is ``below_detection`` when its total flux is below ``F_DL`` — its average radiance
does not exceed the background by ``k`` pixel standard deviations — or when its
(background-subtracted) average radiance is below the absolute floor
:data:`DETECTION_FLOOR_RADIANCE`. ``k = 3`` by default (:data:`DETECTION_K`): Currie's
criterion of a 3σ excess, ~0.13 % one-sided false detections per independent pixel of pure
Gaussian background. The per-pixel σ (not σ/√n of an ROI mean) is deliberate: pixels of a
Living Image corrected image are correlated by its resampling, the dark stage's readout noise
is not the only background (autoluminescence of a mouse ≈ 1000–1600 p/s/cm²/sr, BLI.md), and
a criterion that calls every ROI over a noisy stage "detected" is of no use to a statistician
deciding what is censored.

Why one long module: the per-ROI statistics, the detection limit and the fast closed-form
ellipse path must give the same numbers for the same ROI (tests compare them), and the
Living Image ROI conversion at the end feeds the same :func:`quantify`; splitting would
separate the formulas above from their only implementation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ._version import __version__
from .calibration import RADIANCE_UNITS, CalibratedImage
from .errors import RoiError
from .geometry import (
    CircleRoi,
    EllipseRoi,
    RectangleRoi,
    Roi,
    WeightMethod,
    _ellipse_runs,
    _EllipseRuns,
    roi_mask,
)
from .ivis import IvisClick, LivingImageRoi

__all__ = [
    "DETECTION_FLOOR_RADIANCE",
    "DETECTION_K",
    "DetectionLimit",
    "RoiMeasurement",
    "detection_limit",
    "quantify",
    "quantify_roi",
    "roi_from_living_image",
    "rois_from_click",
]

#: Detection floor [p/s/cm²/sr] (Living Image 3.1 manual, appendix).
DETECTION_FLOOR_RADIANCE = 100.0
#: Background standard deviations an ROI's average radiance must exceed (module docstring).
DETECTION_K = 3.0
FOUR_PI_SR = 4.0 * math.pi


@dataclass(frozen=True, kw_only=True)
class RoiMeasurement:
    """Measurement of one ROI on one image.

    Attributes
    ----------
    label : str
    total_flux_ps : float or None
        Σ w (L − L_bkg) · A_pixel · 4π [p/s]; ``None`` when the image is uncalibrated or its
        pixel size unknown.
    signal_sum : float
        Σ w (L − L_bkg) in ``units`` (pixel sum, the uncalibrated analogue).
    radiance_mean, radiance_std, radiance_min, radiance_max : float
        In ``units`` (p/s/cm²/sr when calibrated), background-subtracted except ``std``.
    area_cm2 : float or None
        Σ w · A_pixel.
    area_pixels : float
        Σ w (image pixels; fractional with ``exact``).
    saturated_pixels : int
        Pixels of non-zero weight whose raw counts reached the CCD saturation level.
    background_radiance_mean : float or None
        Mean radiance of the background ROI (subtracted only when ``background_subtracted``).
    units : str
    flags : frozenset[str]
        ``saturated``, ``below_detection`` (see the module docstring), ``partly_off_image``
        (part of the shape lies beyond the image's edge; only the part on the image is
        measured), ``uncalibrated``, ``background_partly_off_image``, ``non_finite``.
    method : str
        ``"center"`` or ``"exact"``.
    parameters : Mapping[str, object]
        binning, pixel area, detection floor, calibration steps' names; with a background ROI
        also ``detection`` (``k``, ``limit_radiance``, ``limit_total_flux_ps``,
        ``background_radiance_mean``, ``background_radiance_std``).
    imaging_version : str
    background_radiance_std : float or None
        Population SD of the background ROI's pixel radiances ``σ_bkg``.
    background_subtracted : bool
        Whether ``background_radiance_mean`` was subtracted from this ROI's values.
    detection_limit_radiance : float or None
        ``L_DL = μ_bkg + k σ_bkg`` [p/s/cm²/sr]; ``None`` without a background ROI.
    detection_limit_ps : float or None
        ``F_DL`` on the scale of ``total_flux_ps`` [p/s]; ``None`` without a background ROI
        or a calibrated pixel size.
    """

    label: str
    total_flux_ps: float | None
    signal_sum: float
    radiance_mean: float
    radiance_std: float
    radiance_min: float
    radiance_max: float
    area_cm2: float | None
    area_pixels: float
    saturated_pixels: int
    background_radiance_mean: float | None
    units: str
    flags: frozenset[str]
    method: str
    parameters: Mapping[str, object] = field(repr=False)
    imaging_version: str = __version__
    background_radiance_std: float | None = None
    background_subtracted: bool = False
    detection_limit_radiance: float | None = None
    detection_limit_ps: float | None = None


@dataclass(frozen=True, kw_only=True)
class DetectionLimit:
    """An ROI's detection limit from a background ROI (formula: module docstring).

    Attributes
    ----------
    radiance : float
        ``L_DL = μ_bkg + k σ_bkg`` [p/s/cm²/sr] (in the image's units when uncalibrated).
    total_flux_ps : float or None
        ``(L_DL − μ_subtracted) · A_roi · 4π`` [p/s]; ``None`` when the ROI has no area in cm².
    below_detection : bool
        The ROI's average radiance is below ``L_DL`` (or, background-subtracted, below the
        absolute floor).
    k : float
    background_radiance_mean, background_radiance_std : float
    """

    radiance: float
    total_flux_ps: float | None
    below_detection: bool
    k: float
    background_radiance_mean: float
    background_radiance_std: float


def detection_limit(
    roi: RoiMeasurement,
    background: RoiMeasurement,
    *,
    k: float = DETECTION_K,
    detection_floor_radiance: float = DETECTION_FLOOR_RADIANCE,
) -> DetectionLimit:
    """Detection limit of one measured ROI from a separately measured background ROI.

    For callers that measure the background square as an ordinary ROI (nothing subtracted):
    ``roi`` and ``background`` are two results of :func:`quantify` on the same image. When
    ``roi`` had a background subtracted (``roi.background_subtracted``), that mean is taken
    into account, so the answer is the same as ``quantify(..., background=...)`` gives.

    Parameters
    ----------
    roi, background : RoiMeasurement
    k : float
        Background standard deviations (default :data:`DETECTION_K`).
    detection_floor_radiance : float
        Absolute floor [p/s/cm²/sr] on the background-subtracted average radiance.

    Raises
    ------
    ValueError
        ``k`` negative or not finite, or the two measurements are in different units.
    """
    if not (math.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number ≥ 0, got {k!r}")
    if roi.units != background.units:
        raise ValueError(
            f"ROI in {roi.units!r} and background in {background.units!r}: measure both on "
            "the same image"
        )
    mean_b = background.radiance_mean
    if background.background_subtracted and background.background_radiance_mean is not None:
        mean_b += background.background_radiance_mean
    sd_b = background.radiance_std
    subtracted = (
        roi.background_radiance_mean
        if roi.background_subtracted and roi.background_radiance_mean is not None
        else 0.0
    )
    return _detection(
        roi.radiance_mean + subtracted,
        roi.area_cm2 if roi.units == RADIANCE_UNITS else None,
        mean_b,
        sd_b,
        subtracted,
        k,
        detection_floor_radiance if roi.units == RADIANCE_UNITS else None,
    )


def _detection(
    roi_mean: float,
    area_cm2: float | None,
    mean_b: float,
    sd_b: float,
    subtracted: float,
    k: float,
    floor: float | None,
) -> DetectionLimit:
    """``roi_mean`` is the ROI's average radiance before any background subtraction;
    ``floor`` applies to ``roi_mean − mean_b`` (``None``: uncalibrated, no floor)."""
    limit = mean_b + k * sd_b
    flux = (limit - subtracted) * area_cm2 * FOUR_PI_SR if area_cm2 is not None else None
    below = bool(roi_mean < limit or (floor is not None and roi_mean - mean_b < floor))
    return DetectionLimit(
        radiance=limit,
        total_flux_ps=flux,
        below_detection=below,
        k=k,
        background_radiance_mean=mean_b,
        background_radiance_std=sd_b,
    )


def _detection_parameters(limit: DetectionLimit) -> dict[str, float | None]:
    """A measurement's detection limit as plain values (stored with its parameters)."""
    return {
        "k": limit.k,
        "limit_radiance": limit.radiance,
        "limit_total_flux_ps": limit.total_flux_ps,
        "background_radiance_mean": limit.background_radiance_mean,
        "background_radiance_std": limit.background_radiance_std,
    }


@dataclass(frozen=True)
class _Stats:
    weight: float
    total: float
    mean: float
    std: float
    vmin: float
    vmax: float
    saturated: int
    off_image: bool  # part of the shape lies beyond the image's edge
    finite: bool


def _stats(image: CalibratedImage, roi: Roi, method: WeightMethod) -> _Stats:
    mask = roi_mask(roi, image.binning, method=method, within=image.radiance.shape)
    weights = mask.weights
    selected = weights if weights.dtype == bool else weights > 0
    values = image.radiance[mask.slices][selected].astype(np.float64)
    if values.size == 0:
        raise RoiError(
            f"ROI {getattr(roi, 'label', '')!r} lies entirely outside the "
            f"{image.radiance.shape[0]}×{image.radiance.shape[1]} image {image.source!r}"
        )
    # inf − inf in the spread of a non-finite ROI: the ``non_finite`` flag reports it
    with np.errstate(invalid="ignore"):
        if weights.dtype == bool:
            weight = float(values.size)
            total = float(values.sum())
            mean = total / weight
            std = float(values.std())
        else:
            w = weights[selected]
            weight = float(w.sum())
            total = float(np.dot(w, values))
            mean = total / weight
            std = math.sqrt(max(float(np.dot(w, (values - mean) ** 2)) / weight, 0.0))
    saturated = 0
    if image.saturation_mask is not None:
        saturated = int(np.count_nonzero(image.saturation_mask[mask.slices][selected]))
    return _Stats(
        weight=weight,
        total=total,
        mean=mean,
        std=std,
        vmin=float(values.min()),
        vmax=float(values.max()),
        saturated=saturated,
        off_image=mask.cut,
        finite=bool(np.isfinite(total)),
    )


def _row_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``Σ_j x[i, j] y[i, j]`` for every row ``i`` (float64)."""
    if hasattr(np, "vecdot"):  # numpy ≥ 2.0
        return np.vecdot(x, y)
    return np.einsum("ij,ij->i", x, y)


#: Relative size of ``Σ w L² / Σ w`` below which the one-pass variance is not trusted.
_VARIANCE_CANCELLATION = 1e-6


def _axis_ellipse(roi: Roi, binning: int) -> tuple[float, float, float, float] | None:
    """``(cy, cx, a, b)`` (image indices, image pixels) of an axis-aligned circle/ellipse."""
    if type(roi) is CircleRoi:
        r = roi.radius / binning
        return roi.center_row / binning - 0.5, roi.center_col / binning - 0.5, r, r
    if type(roi) is EllipseRoi and math.sin(math.radians(roi.angle_deg)) == 0.0:
        return (
            roi.center_row / binning - 0.5,
            roi.center_col / binning - 0.5,
            roi.semi_axis_col / binning,
            roi.semi_axis_row / binning,
        )
    return None


def _stats_all(image: CalibratedImage, rois: Sequence[Roi], method: WeightMethod) -> list[_Stats]:
    """:func:`_stats` of every ROI.

    Axis-aligned circles and ellipses whose bounding box lies on the image are measured by
    :func:`_ellipse_stats` (row runs, no weight array); the others, and any of those whose
    one-pass numbers are not trustworthy, by :func:`_stats`.
    """
    n_rows, n_cols = image.radiance.shape
    fast: list[tuple[int, float, float, float, float]] = []
    for k, roi in enumerate(rois):
        shape = _axis_ellipse(roi, image.binning)
        if shape is None:
            continue
        cy, cx, a, b = shape
        if (
            math.floor(cy - b + 0.5) >= 0
            and math.floor(cx - a + 0.5) >= 0
            and math.ceil(cy + b - 0.5) < n_rows
            and math.ceil(cx + a - 0.5) < n_cols
        ):
            fast.append((k, cy, cx, a, b))
    out: list[_Stats | None] = [None] * len(rois)
    if fast:
        for (k, *_), st in zip(fast, _ellipse_stats(image, fast, method), strict=True):
            out[k] = st
    return [
        st if st is not None else _stats(image, roi, method)
        for st, roi in zip(out, rois, strict=True)
    ]


def _pixels(array: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``array[rows, cols]``, by a flat ``take`` (twice as fast) when ``array`` is contiguous."""
    if array.flags.c_contiguous:
        return array.ravel().take(rows * array.shape[1] + cols)
    return array[rows, cols]


@dataclass(frozen=True)
class _PartialSums:
    """Per-ROI Σw, Σw·L, Σw·L², min, max (NaN: none) and saturated count of partial pixels."""

    weight: np.ndarray
    total: np.ndarray
    square: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    saturated: np.ndarray


def _partial_pixel_stats(
    radiance: np.ndarray, saturation: np.ndarray | None, runs: _EllipseRuns
) -> _PartialSums:
    """Sums over the partial pixels of every ROI (one ``reduceat`` per statistic)."""
    w = runs.part_weight
    values = _pixels(radiance, runs.part_row, runs.part_col).astype(np.float64)
    n_rois = runs.part_start.size - 1
    # reduceat over the ROIs that own partial pixels: each segment is then exactly one ROI's
    # pixels (an ROI without any gets zero sums and NaN extremes)
    owners = np.flatnonzero(np.diff(runs.part_start) > 0)
    starts = runs.part_start[owners]
    stacked = np.empty((3, w.size))
    stacked[0] = w
    np.multiply(w, values, out=stacked[1])
    np.multiply(stacked[1], values, out=stacked[2])
    sums = np.zeros((3, n_rois))
    sums[:, owners] = np.add.reduceat(stacked, starts, axis=1)
    values[w <= 0] = np.nan  # min and max over pixels of non-zero weight
    vmin = np.full(n_rois, np.nan)
    vmax = np.full(n_rois, np.nan)
    vmin[owners] = np.fmin.reduceat(values, starts)
    vmax[owners] = np.fmax.reduceat(values, starts)
    saturated = np.zeros(n_rois, dtype=np.int64)
    if saturation is not None:
        hit = _pixels(saturation, runs.part_row, runs.part_col) & (w > 0)
        saturated[owners] = np.add.reduceat(hit, starts, dtype=np.int64)
    return _PartialSums(sums[0], sums[1], sums[2], vmin, vmax, saturated)


def _ellipse_stats(
    image: CalibratedImage,
    shapes: Sequence[tuple[int, float, float, float, float]],
    method: WeightMethod,
) -> list[_Stats | None]:
    """Statistics of axis-aligned ellipses ``(k, cy, cx, a, b)`` whose boxes lie on the image.

    Whole pixels are summed over row runs (a 0/1 mask of the bounding box, float64 sums), the
    few partial pixels from their list. Returns ``None`` for an ROI whose one-pass numbers are
    not trustworthy (non-finite values, no pixel, variance lost to cancellation).

    Work arrays stay per ROI and small: fresh multi-megabyte temporaries cost more in page
    faults than the arithmetic done on them.
    """
    radiance = image.radiance
    saturation = image.saturation_mask
    params = np.array([shape[1:] for shape in shapes], dtype=np.float64)
    cy, cx, a, b = params.T
    row0 = np.floor(cy - b + 0.5)
    box_rows = (np.ceil(cy + b - 0.5) - row0 + 1).astype(np.int64)
    n_rows = int(box_rows.max())
    runs = _ellipse_runs(cy, cx, a, b, n_rows=n_rows, method=method)
    col0 = np.floor(cx - a + 0.5).astype(np.int64)
    box_cols = np.ceil(cx + a - 0.5).astype(np.int64) - col0 + 1
    n_ell = len(shapes)
    width = box_cols[:, None]
    # ``center`` may place an empty run just past the box
    lo = np.minimum(runs.run_lo - col0[:, None], width)
    hi = np.minimum(runs.run_hi - col0[:, None], width)
    # (before, run, after) pixels of every box row: np.repeat lays a pattern out on the box
    lengths: np.ndarray = np.empty((n_ell, n_rows, 3), dtype=np.int64)
    lengths[:, :, 0] = lo
    run = np.subtract(hi, lo, out=lengths[:, :, 1])
    np.subtract(width, hi, out=lengths[:, :, 2])
    lengths = lengths.reshape(n_ell, -1)
    count = run.sum(axis=1).astype(np.float64)
    ones = np.zeros(3 * n_rows, dtype=np.float32)
    ones[1::3] = 1.0
    nans = np.full(3 * n_rows, np.nan, dtype=np.float32)
    nans[1::3] = 1.0
    total = np.empty(n_ell)
    square = np.empty(n_ell)
    vmin = np.empty(n_ell)
    vmax = np.empty(n_ell)
    saturated = np.zeros(n_ell, dtype=np.int64)
    for k, (r0, c0, h, w) in enumerate(
        zip(runs.row0.tolist(), col0.tolist(), box_rows.tolist(), box_cols.tolist(), strict=True)
    ):
        box = radiance[r0 : r0 + h, c0 : c0 + w].copy()  # read the image rows once
        n = 3 * h
        inner = np.multiply(box, ones[:n].repeat(lengths[k, :n]).reshape(h, w))
        inner = inner.astype(np.float64)
        # pairwise sums (a BLAS dot accumulates Σ L² with ~10× the rounding error, which the
        # one-pass variance amplifies by mean² / var)
        total[k] = inner.sum()
        square[k] = _row_dot(inner, inner).sum()
        shown = np.multiply(box, nans[:n].repeat(lengths[k, :n]).reshape(h, w))
        vmin[k] = np.fmin.reduce(shown, axis=None)
        vmax[k] = np.fmax.reduce(shown, axis=None)
        if saturation is not None:
            whole = shown == shown  # the run pixels (NaN elsewhere)
            saturated[k] = np.count_nonzero(saturation[r0 : r0 + h, c0 : c0 + w] & whole)
    if runs.part_weight.size:
        part = _partial_pixel_stats(radiance, saturation, runs)
        count += part.weight
        total += part.total
        square += part.square
        vmin = np.fmin(vmin, part.vmin)
        vmax = np.fmax(vmax, part.vmax)
        saturated += part.saturated
    out: list[_Stats | None] = []
    for weight, tot, sq, lo_v, hi_v, sat in zip(
        count.tolist(),
        total.tolist(),
        square.tolist(),
        vmin.tolist(),
        vmax.tolist(),
        saturated.tolist(),
        strict=True,
    ):
        if not (weight > 0 and math.isfinite(tot) and math.isfinite(sq) and lo_v == lo_v):
            out.append(None)
            continue
        mean = tot / weight
        second = sq / weight
        var = second - mean * mean
        if second > 0 and var <= _VARIANCE_CANCELLATION * second:
            out.append(None)
            continue
        out.append(
            _Stats(
                weight=weight,
                total=tot,
                mean=mean,
                std=math.sqrt(var),
                vmin=lo_v,
                vmax=hi_v,
                saturated=sat,
                off_image=False,
                finite=True,
            )
        )
    return out


def quantify_roi(
    image: CalibratedImage,
    roi: Roi,
    *,
    method: WeightMethod = "center",
    background: Roi | None = None,
    detection_floor_radiance: float = DETECTION_FLOOR_RADIANCE,
    subtract_background: bool = True,
    detection_k: float = DETECTION_K,
) -> RoiMeasurement:
    """Measure one ROI; see :func:`quantify`."""
    return quantify(
        image,
        [roi],
        method=method,
        background=background,
        detection_floor_radiance=detection_floor_radiance,
        subtract_background=subtract_background,
        detection_k=detection_k,
    )[0]


def quantify(
    image: CalibratedImage,
    rois: Sequence[Roi],
    *,
    method: WeightMethod = "center",
    background: Roi | None = None,
    detection_floor_radiance: float = DETECTION_FLOOR_RADIANCE,
    subtract_background: bool = True,
    detection_k: float = DETECTION_K,
) -> tuple[RoiMeasurement, ...]:
    """Measure ROIs on a calibrated (or stated-units) image.

    Parameters
    ----------
    image : CalibratedImage
        Not modified.
    rois : sequence of Roi
        Geometry in un-binned sensor pixels (see :mod:`imaging.geometry`).
    method : {"center", "exact"}
        Pixel weighting; ``center`` reproduces Living Image.
    background : Roi, optional
        A patch of the field without animals. Its pixel radiances give the detection limit of
        every ROI (module docstring) and, with ``subtract_background``, its mean radiance is
        subtracted from every pixel of every ROI.
    detection_floor_radiance : float
        ``below_detection`` is also flagged when the (background-subtracted) average radiance
        is below this [p/s/cm²/sr].
    subtract_background : bool
        ``False`` records the background and its detection limit without subtracting it (the
        service's convention: Living Image does not subtract either unless asked).
    detection_k : float
        ``k`` of the detection limit ``μ_bkg + k σ_bkg`` (default :data:`DETECTION_K`).

    Returns
    -------
    tuple[RoiMeasurement, ...]
        One per ROI, in order.

    Raises
    ------
    RoiError
        An ROI (or the background ROI) lies entirely outside the image.
    ValueError
        ``detection_k`` negative or not finite.
    """
    if not (math.isfinite(detection_k) and detection_k >= 0):
        raise ValueError(f"detection_k must be a finite number ≥ 0, got {detection_k!r}")
    pixel_area = image.pixel_area_cm2
    bs: _Stats | None = None
    base_flags: set[str] = set()
    if not image.calibrated:
        base_flags.add("uncalibrated")
    if background is not None:
        bs = _stats_all(image, [background], method)[0]
        if bs.off_image:
            base_flags.add("background_partly_off_image")
    subtracted = bs is not None and subtract_background
    parameters = MappingProxyType(
        {
            "binning": image.binning,
            "pixel_area_cm2": pixel_area,
            "detection_floor_radiance": detection_floor_radiance,
            "detection_k": detection_k if bs is not None else None,
            "background_subtracted": subtracted,
            "calibration_steps": tuple(s.name for s in image.steps),
            "source": image.source,
        }
    )
    floor = detection_floor_radiance if image.calibrated else None
    out = []
    for roi, st in zip(rois, _stats_all(image, rois, method), strict=True):
        offset = bs.mean if subtracted and bs is not None else 0.0
        signal = st.total - offset * st.weight
        mean = st.mean - offset
        flags = set(base_flags)
        if st.saturated:
            flags.add("saturated")
        if st.off_image:
            flags.add("partly_off_image")
        if not st.finite:
            flags.add("non_finite")
        calibrated_area = image.calibrated and pixel_area is not None
        area_cm2 = st.weight * pixel_area if pixel_area is not None else None
        limit: DetectionLimit | None = None
        if bs is not None:
            limit = _detection(
                st.mean,
                area_cm2 if calibrated_area else None,
                bs.mean,
                bs.std,
                offset,
                detection_k,
                floor,
            )
            if limit.below_detection:
                flags.add("below_detection")
        elif floor is not None and mean < floor:
            flags.add("below_detection")
        out.append(
            RoiMeasurement(
                label=getattr(roi, "label", ""),
                total_flux_ps=(
                    signal * pixel_area * FOUR_PI_SR
                    if calibrated_area and pixel_area is not None
                    else None
                ),
                signal_sum=signal,
                radiance_mean=mean,
                radiance_std=st.std,
                radiance_min=st.vmin - offset,
                radiance_max=st.vmax - offset,
                area_cm2=area_cm2,
                area_pixels=st.weight,
                saturated_pixels=st.saturated,
                background_radiance_mean=bs.mean if bs is not None else None,
                units=image.units,
                flags=frozenset(flags),
                method=method,
                parameters=parameters
                if limit is None
                else MappingProxyType({**parameters, "detection": _detection_parameters(limit)}),
                background_radiance_std=bs.std if bs is not None else None,
                background_subtracted=subtracted,
                detection_limit_radiance=limit.radiance if limit is not None else None,
                detection_limit_ps=limit.total_flux_ps if limit is not None else None,
            )
        )
    return tuple(out)


def roi_from_living_image(roi: LivingImageRoi) -> Roi:
    """Convert a Living Image ROI line to a geometry object (same un-binned coordinates).

    ``Xc`` maps to ``col``, ``Yc`` to ``row``; ``Width``/``Height`` are full extents.

    Raises
    ------
    RoiError
        Unsupported shape (only Circle, Ellipse, Rectangle, Square are stored as lines).
    """
    shape = roi.shape.casefold()
    label = roi.label or roi.name
    if shape == "circle" and math.isclose(roi.width, roi.height, rel_tol=1e-9):
        return CircleRoi(center_row=roi.yc, center_col=roi.xc, radius=roi.width / 2, label=label)
    if shape in ("circle", "ellipse", "oval"):  # a "circle" stretched by the user is an ellipse
        return EllipseRoi(
            center_row=roi.yc,
            center_col=roi.xc,
            semi_axis_col=roi.width / 2,
            semi_axis_row=roi.height / 2,
            angle_deg=roi.angle_deg,
            label=label,
        )
    if shape in ("rectangle", "square"):
        return RectangleRoi(
            center_row=roi.yc,
            center_col=roi.xc,
            width=roi.width,
            height=roi.height,
            angle_deg=roi.angle_deg,
            label=label,
        )
    raise RoiError(f"{roi.name}: Living Image ROI shape {roi.shape!r} is not supported")


def rois_from_click(click: IvisClick) -> tuple[Roi, ...]:
    """The click's Living Image ROIs as geometry objects.

    Raises
    ------
    RoiError
        An ROI's ``cm per pixel`` disagrees with the click's sensor pixel size (the ROI was
        drawn for another geometry) or its shape is unsupported.
    """
    out = []
    for li in click.rois:
        if li.cm_per_pixel is not None and not math.isclose(
            li.cm_per_pixel, click.sensor_pixel_cm, rel_tol=1e-6
        ):
            raise RoiError(
                f"{click.source}: {li.name} says {li.cm_per_pixel} cm per pixel, the click "
                f"{click.sensor_pixel_cm:.9g}; the ROI belongs to another field of view"
            )
        out.append(roi_from_living_image(li))
    return tuple(out)
