"""Which calibration a click's numbers come from, and whether the two calibrations agree.

A Living Image export may carry ``luminescentFloatCorrected.TIF``: Living Image's own radiance
image, after corrections whose inputs are not all in the folder (the dark frame of the
instrument's background click, its lens-distortion resampling, its cosmic filter). Measured
with Living Image's ROIs it reproduces the numbers Living Image printed to 0.01 % on the
reference click, so when it is there it is the **primary** calibration: a lab's osteolux
numbers then continue its Living Image numbers without a step. The raw-count calibration
(:func:`imaging.calibrate_click`) is computed beside it, and the two are compared per ROI::

    disagrees = |F_raw − F_LI| > max(rtol · |F_LI|, L_atol · A_roi · 4π)

with ``F`` the total flux [p/s], ``A_roi`` the ROI area [cm²], ``rtol = 0.05`` and
``L_atol = 100 p/s/cm²/sr`` (:data:`imaging.DETECTION_FLOOR_RADIANCE`) by default.

Why 5 %: on the reference click the raw calibration differs from Living Image by 0.3–2.5 %
in ROIs well above background (lens-distortion resampling and Living Image's cosmic filter
moving flux across ROI edges, see :mod:`imaging.calibration`), so a difference beyond 5 % in
such an ROI means a wrong constant (C-ccd, flat field, f-number, exposure) or a different
dark frame. Why the absolute term: near background the difference is dominated by the dark
frame Living Image subtracted (not in the folder; ~0.2–0.7 counts per binned pixel on the
reference click), and a disagreement smaller than the detection floor over the ROI's area is
not a disagreement about the tumour. Both values are always reported, whether or not they
disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

import numpy as np

from .calibration import CalibratedImage, calibrate_click, calibrate_counts, corrected_image
from .errors import CalibrationError
from .geometry import Roi, WeightMethod
from .ivis import Frame, IvisClick
from .quantify import (
    DETECTION_FLOOR_RADIANCE,
    DETECTION_K,
    FOUR_PI_SR,
    RoiMeasurement,
    quantify,
)

__all__ = [
    "CalibrationComparison",
    "CalibrationTolerance",
    "ClickQuantification",
    "compare_calibrations",
    "primary_image",
    "quantify_click",
    "same_frame",
    "same_primary_inputs",
]

PrimarySource = Literal["living_image_corrected", "raw_counts"]


@dataclass(frozen=True, kw_only=True)
class CalibrationTolerance:
    """When the raw-count and Living Image calibrations of an ROI disagree (module docstring).

    Parameters
    ----------
    rtol : float
        Relative tolerance on total flux (default 5 %).
    radiance_atol : float
        Absolute tolerance as an average radiance over the ROI [p/s/cm²/sr].
    """

    rtol: float = 0.05
    radiance_atol: float = DETECTION_FLOOR_RADIANCE

    def __post_init__(self) -> None:
        for name in ("rtol", "radiance_atol"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class CalibrationComparison:
    """One ROI measured on both calibrations.

    Attributes
    ----------
    label : str
    living_image_total_flux_ps, raw_total_flux_ps : float or None
        [p/s]; ``None`` when that calibration gave no calibrated flux.
    relative_difference : float or None
        ``F_raw / F_LI − 1``; ``None`` when either flux is missing or ``F_LI == 0``.
    allowed_difference_ps : float or None
        ``max(rtol · |F_LI|, L_atol · A_roi · 4π)`` [p/s].
    disagrees : bool
        ``|F_raw − F_LI|`` exceeds ``allowed_difference_ps``; also ``True`` when one
        calibration gives a flux and the other none.
    dark_equivalent_counts : float or None
        The difference expressed as a uniform offset of the raw counts:
        ``(F_raw − F_LI) / F_1``, with ``F_1`` the ROI's flux for one count in every pixel
        under the raw calibration [counts per binned pixel]. A few tenths of a count in a
        faint ROI is the dark charge Living Image subtracted from its background click (not
        in the folder); many counts in a bright ROI is a gain or geometry difference, not a
        dark frame. ``None`` when not computed.
    """

    label: str
    living_image_total_flux_ps: float | None
    raw_total_flux_ps: float | None
    relative_difference: float | None
    allowed_difference_ps: float | None
    disagrees: bool
    dark_equivalent_counts: float | None = None

    def as_parameters(self, tolerance: CalibrationTolerance) -> dict[str, object]:
        """Plain JSON-able values for a measurement's ``parameters``."""
        return {
            "living_image_total_flux_ps": self.living_image_total_flux_ps,
            "raw_total_flux_ps": self.raw_total_flux_ps,
            "relative_difference": self.relative_difference,
            "allowed_difference_ps": self.allowed_difference_ps,
            "disagrees": self.disagrees,
            "dark_equivalent_counts": self.dark_equivalent_counts,
            "rtol": tolerance.rtol,
            "radiance_atol": tolerance.radiance_atol,
        }


def compare_calibrations(
    living_image: Sequence[RoiMeasurement],
    raw: Sequence[RoiMeasurement],
    *,
    tolerance: CalibrationTolerance = CalibrationTolerance(),
    flux_per_count_ps: Sequence[float | None] | None = None,
) -> tuple[CalibrationComparison, ...]:
    """Compare the same ROIs measured on Living Image's image and on the raw calibration.

    Parameters
    ----------
    living_image, raw : sequences of RoiMeasurement
        The same ROIs, in the same order.
    tolerance : CalibrationTolerance
    flux_per_count_ps : sequence of float, optional
        Per ROI, the raw calibration's total flux for one count in every pixel [p/s]; gives
        :attr:`CalibrationComparison.dark_equivalent_counts`.

    Raises
    ------
    ValueError
        The sequences differ in length or labels (not the same ROIs).
    """
    if len(living_image) != len(raw):
        raise ValueError(f"{len(living_image)} Living Image ROIs but {len(raw)} raw ROIs")
    per_count = list(flux_per_count_ps) if flux_per_count_ps is not None else [None] * len(raw)
    if len(per_count) != len(raw):
        raise ValueError(f"{len(per_count)} flux-per-count values for {len(raw)} ROIs")
    out = []
    for li, rw, unit in zip(living_image, raw, per_count, strict=True):
        if li.label != rw.label:
            raise ValueError(f"ROI {li.label!r} compared with ROI {rw.label!r}")
        f_li, f_raw = li.total_flux_ps, rw.total_flux_ps
        if f_li is None or f_raw is None or not (math.isfinite(f_li) and math.isfinite(f_raw)):
            one_missing = (f_li is None) != (f_raw is None)
            out.append(
                CalibrationComparison(
                    label=li.label,
                    living_image_total_flux_ps=f_li,
                    raw_total_flux_ps=f_raw,
                    relative_difference=None,
                    allowed_difference_ps=None,
                    disagrees=one_missing,
                )
            )
            continue
        area = li.area_cm2 or 0.0
        allowed = max(tolerance.rtol * abs(f_li), tolerance.radiance_atol * area * FOUR_PI_SR)
        out.append(
            CalibrationComparison(
                label=li.label,
                living_image_total_flux_ps=f_li,
                raw_total_flux_ps=f_raw,
                relative_difference=f_raw / f_li - 1.0 if f_li != 0 else None,
                allowed_difference_ps=allowed,
                disagrees=abs(f_raw - f_li) > allowed,
                dark_equivalent_counts=(f_raw - f_li) / unit if unit else None,
            )
        )
    return tuple(out)


def primary_image(click: IvisClick) -> CalibratedImage:
    """The image a click's numbers come from: Living Image's corrected image when the click
    carries it, else the raw counts calibrated by :func:`calibrate_click`.

    Raises
    ------
    CalibrationError
        No corrected image and the raw counts cannot be calibrated.
    """
    if click.corrected is not None:
        return corrected_image(click)
    return calibrate_click(click)


def same_primary_inputs(a: IvisClick, b: IvisClick) -> bool:
    """Whether :func:`primary_image` calibrates both clicks alike, from what it reads: the raw
    counts of each (neither carries Living Image's corrected image), the same luminescent and
    dark frames (and the bias frame when no bias level is stated, the only case it is used),
    settings, camera and names. Frame arrays are compared by identity first, then by value."""
    if a.corrected is not None or b.corrected is not None:
        return False
    frames = ["luminescent", "dark"]
    if a.settings.read_bias_level is None:
        frames.append("readbias")
    return (
        a.source == b.source
        and a.clickinfo.source == b.clickinfo.source
        and a.settings == b.settings
        and a.camera == b.camera
        and a.sensor_pixel_cm == b.sensor_pixel_cm
        and all(same_frame(getattr(a, role), getattr(b, role)) for role in frames)
    )


def same_frame(x: Frame | None, y: Frame | None) -> bool:
    """Whether two frames (or their absence) are alike: the same file, binning, multiplier,
    bias level, exposure and pixels (compared by identity first, then by value)."""
    if x is None or y is None:
        return x is y
    return (
        x.filename == y.filename
        and x.binning == y.binning
        and x.data_multiplier == y.data_multiplier
        and x.read_bias_level == y.read_bias_level
        and x.exposure_s == y.exposure_s
        and x.data.dtype == y.data.dtype
        and (x.data is y.data or np.array_equal(x.data, y.data))
    )


@dataclass(frozen=True, kw_only=True)
class ClickQuantification:
    """A click's ROIs measured on its primary calibration, with the raw one beside it.

    Attributes
    ----------
    measurements : tuple[RoiMeasurement, ...]
        On the primary image, one per ROI in order. With both calibrations, each carries
        ``parameters["calibration_check"]`` (:meth:`CalibrationComparison.as_parameters`) and
        the flag ``calibration_disagrees`` when they disagree.
    primary : {"living_image_corrected", "raw_counts"}
    image : CalibratedImage
        The primary image.
    raw_measurements : tuple[RoiMeasurement, ...] or None
        On the raw-count calibration when the primary is Living Image's (``None`` otherwise,
        or when the raw counts cannot be calibrated: ``raw_error`` says why).
    raw_image : CalibratedImage or None
    comparisons : tuple[CalibrationComparison, ...]
        Empty without both calibrations.
    tolerance : CalibrationTolerance
    raw_error : str or None
    """

    measurements: tuple[RoiMeasurement, ...]
    primary: PrimarySource
    image: CalibratedImage
    raw_measurements: tuple[RoiMeasurement, ...] | None
    raw_image: CalibratedImage | None
    comparisons: tuple[CalibrationComparison, ...]
    tolerance: CalibrationTolerance
    raw_error: str | None = None

    @property
    def calibration_disagrees(self) -> bool:
        """Any ROI's calibrations disagree."""
        return any(c.disagrees for c in self.comparisons)


def quantify_click(
    click: IvisClick,
    rois: Sequence[Roi],
    *,
    method: WeightMethod = "center",
    background: Roi | None = None,
    subtract_background: bool = True,
    detection_k: float = DETECTION_K,
    tolerance: CalibrationTolerance = CalibrationTolerance(),
    raw_image: CalibratedImage | None = None,
) -> ClickQuantification:
    """Measure ROIs on a click's primary calibration and cross-check the raw one.

    Parameters
    ----------
    click : IvisClick
    rois : sequence of Roi
    method, background, subtract_background, detection_k
        As :func:`imaging.quantify`, for both calibrations.
    tolerance : CalibrationTolerance
    raw_image : CalibratedImage, optional
        The raw-count calibration if the caller already has it (e.g. other calibration
        options); by default ``calibrate_click(click)``.

    Returns
    -------
    ClickQuantification

    Raises
    ------
    CalibrationError
        Neither calibration is possible.
    RoiError
        An ROI lies entirely outside the image.
    """

    def measure(on: CalibratedImage) -> tuple[RoiMeasurement, ...]:
        return quantify(
            on,
            rois,
            method=method,
            background=background,
            subtract_background=subtract_background,
            detection_k=detection_k,
        )

    if click.corrected is None:
        image = raw_image if raw_image is not None else calibrate_click(click)
        return ClickQuantification(
            measurements=measure(image),
            primary="raw_counts",
            image=image,
            raw_measurements=None,
            raw_image=None,
            comparisons=(),
            tolerance=tolerance,
        )
    image = corrected_image(click)
    primary = measure(image)
    raw_error: str | None = None
    per_count: list[float | None] | None = None
    if raw_image is None:
        try:
            raw_image = calibrate_click(click)
            unit = quantify(_one_count_image(click), rois, method=method)
            per_count = [m.total_flux_ps for m in unit]
        except CalibrationError as exc:
            raw_error = str(exc)
    if raw_image is None:
        return ClickQuantification(
            measurements=primary,
            primary="living_image_corrected",
            image=image,
            raw_measurements=None,
            raw_image=None,
            comparisons=(),
            tolerance=tolerance,
            raw_error=raw_error,
        )
    raw = measure(raw_image)
    comparisons = compare_calibrations(
        primary, raw, tolerance=tolerance, flux_per_count_ps=per_count
    )
    checked = tuple(_with_check(m, c, tolerance) for m, c in zip(primary, comparisons, strict=True))
    return ClickQuantification(
        measurements=checked,
        primary="living_image_corrected",
        image=image,
        raw_measurements=raw,
        raw_image=raw_image,
        comparisons=comparisons,
        tolerance=tolerance,
    )


def _one_count_image(click: IvisClick) -> CalibratedImage:
    """What :func:`calibrate_click` (default options) makes of one net count in every pixel."""
    s, camera, lum = click.settings, click.camera, click.luminescent
    if camera is None:
        raise CalibrationError(f"{click.source}: no 'Camera System Info' section")
    c_ccd = camera.c_ccd_for(s.fov_cm, s.f_number)
    if c_ccd is None:
        raise CalibrationError(f"{click.source}: no C-ccd for this FOV and f-number")
    return calibrate_counts(
        np.ones(lum.data.shape, dtype=np.float32),
        exposure_s=s.exposure_s,
        binning=lum.binning,
        c_ccd=c_ccd,
        bias_counts=0.0,
        flat_field=camera.flat_field_for(s.fov_cm, s.f_number),
        sensor_pixel_cm=click.sensor_pixel_cm,
        cosmic=None,
    )


def _with_check(
    m: RoiMeasurement, check: CalibrationComparison, tolerance: CalibrationTolerance
) -> RoiMeasurement:
    parameters: Mapping[str, object] = MappingProxyType(
        {**m.parameters, "calibration_check": check.as_parameters(tolerance)}
    )
    flags = m.flags | {"calibration_disagrees"} if check.disagrees else m.flags
    return replace(m, parameters=parameters, flags=frozenset(flags))
