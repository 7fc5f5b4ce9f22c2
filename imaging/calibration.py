"""Counts → radiance [p/s/cm²/sr] for IVIS acquisitions.

Formula (``design/domain/BLI.md``; Living Image 3.1 manual, appendix)::

    radiance = (counts − bias − dark) · C_ccd(FOV, f) / (exposure_s · binning²) / FF(r)

with ``FF(r) = k0 + k1 r + k2 r² + k3 r³ + k4 r⁴``, ``r`` in cm from the optical centre
``(x0, −y0)`` (relative to the image centre, ``y`` along rows), clamped to
``[flat_field_min, flat_field_max]``. Cosmic rays / hot pixels are replaced by the median of
their eight neighbours before scaling. Every step that ran is recorded in
:attr:`CalibratedImage.steps` with its constants; a step that was skipped says why.

Where this differs from Living Image's ``luminescentFloatCorrected.TIF``
--------------------------------------------------------------------------
Compared pixel by pixel on the reference click (``DG20220105114235``, 40 s, binning 8, f/1,
FOV 22.4 cm), total flux from raw counts differs from Living Image by +2.5, +1.7, −2.2, +2.1
and +25 % in ROIs 1–5. What differs, and why it cannot be reproduced from the folder:

* **Dark frame.** Living Image subtracts the dark frame of the instrument's background click
  (``Background Click: BKG20220105025931``), which is not in the folder: ``background.TIF`` is
  a constant 65534 placeholder, ``readbias.TIF`` (mean 496.20 counts) is that click's bias
  only, and the ``readbiasonly.TIF`` whose level (496.628) the luminescent section quotes is
  missing. Expressed as a uniform offset the differences of the faint ROIs 1, 4, 5 are
  +0.22, +0.43, +0.74 counts per binned pixel — a dark charge of the expected size for a
  −90 °C CCD over 40 s × 64 pixels, and spatially varying (it is not one level). ROI 5 moves
  34 % per count, so 2 % needs the dark to ±0.06 counts: only the frame gives that.
  Against the corrected image pixel by pixel (``tests/imaging/test_imaging_raw_gap.py``), what
  Living Image subtracted beyond the stated level follows ``readbias.TIF``'s fixed pattern
  (±0.4 count corner to corner; r = 0.70 over 158 mouse-free blocks) plus 0.74 ± 0.28 count
  of dark: with that dark taken from its own image (an oracle) ROIs 1–5 come to −1.6, +1.6,
  −2.4, −1.4, +3.9 %. Without the dark the pattern makes the faint ROIs worse, so the level
  is kept.
* **Resampling.** The corrected image is resampled through a radial lens-distortion model
  (bilinear, flux-conserving): features sit up to ~2.5 binned pixels further from the optical
  axis (≈ row 117.5, col 118.5 of 240) at the field's edge, and neighbouring noise pixels
  correlate by ~0.3. Its coefficients are not in ``ClickInfo.txt``; fitted to the shift field
  they move the edge ROIs 1, 4, 5 by −2.0, −1.1, −6.3 % and leave ROIs 2–3 unchanged.
* **Cosmic filter.** Living Image's cosmic correction also flattens the sharp peaks of the
  brightest heads (ROI 2's central 3×3 by ~25 %, −4.7 % of its flux; ROI 3 −0.9 %); a median
  replacement above 25 √median counts reproduces those pixels (rms 181 → 42 counts). It is
  not emulated here: it removes real signal.
* **Gain.** Even so, Living Image is brighter than ``C_ccd / FF`` gives: with its cosmic
  filter emulated, one gain of 1.02–1.03 and a dark of 0.4–1.0 counts per pixel account for
  all five ROIs (the bright ROIs 2–3 then agree within ~0.4 %). No constant of the folder
  (C-ccd, exposure, the FF polynomial, its centre conventions, the distortion's Jacobian)
  gives that gain; it is fitted, so it is reported here and not applied.

:func:`imaging.quantify_click` therefore uses the corrected image when the click has it and
reports the raw-count result beside it (``calibration_disagrees``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast

import numpy as np
from scipy import ndimage

from ._version import __version__
from .errors import CalibrationError
from .ivis import FlatFieldCoefficients, IvisClick

__all__ = [
    "RADIANCE_UNITS",
    "CalibratedImage",
    "CalibrationStep",
    "CosmicRayRemoval",
    "calibrate_click",
    "calibrate_counts",
    "corrected_image",
    "image_from_array",
    "remove_cosmic_rays",
]

RADIANCE_UNITS = "p/s/cm²/sr"


@dataclass(frozen=True)
class CalibrationStep:
    """One calibration step: its name and the constants it used (or why it was skipped)."""

    name: str
    parameters: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))


@dataclass(frozen=True, kw_only=True)
class CosmicRayRemoval:
    """Settings of the cosmic-ray / hot-pixel filter.

    A pixel is replaced by the median of its 8 neighbours when it exceeds the **second**
    brightest neighbour (so two-pixel events are caught too) by more than
    ``min_excess_counts`` *and* by a factor ``min_ratio``. Real sources are spread by the
    optics over several pixels and do not pass both tests.

    Parameters
    ----------
    min_excess_counts : float
        Minimal excess over the neighbours [counts after bias subtraction].
    min_ratio : float
        Minimal ratio pixel / second-brightest neighbour.
    """

    min_excess_counts: float = 50.0
    min_ratio: float = 3.0


@dataclass(frozen=True, kw_only=True)
class CalibratedImage:
    """An image ready for quantification.

    Attributes
    ----------
    radiance : ndarray of float32, shape (rows, cols)
        Read-only pixel values in ``units`` (p/s/cm²/sr when ``calibrated``).
    units : str
    calibrated : bool
        ``True`` when ``radiance`` is in p/s/cm²/sr.
    binning : int
        Sensor pixels per image pixel along each axis.
    sensor_pixel_cm : float or None
        Side of one un-binned sensor pixel [cm]; ``None`` when unknown.
    saturation_mask : ndarray of bool or None
        Pixels whose raw counts reached the CCD saturation level.
    steps : tuple[CalibrationStep, ...]
    source : str
    imaging_version : str
    """

    radiance: np.ndarray = field(repr=False)
    units: str
    calibrated: bool
    binning: int
    sensor_pixel_cm: float | None
    saturation_mask: np.ndarray | None = field(repr=False, default=None)
    steps: tuple[CalibrationStep, ...] = ()
    source: str = ""
    imaging_version: str = __version__

    @property
    def pixel_size_cm(self) -> float | None:
        """Side of one image (binned) pixel [cm]."""
        return None if self.sensor_pixel_cm is None else self.sensor_pixel_cm * self.binning

    @property
    def pixel_area_cm2(self) -> float | None:
        size = self.pixel_size_cm
        return None if size is None else size * size


def image_from_array(
    data: np.ndarray,
    *,
    units: str,
    binning: int = 1,
    sensor_pixel_cm: float | None = None,
    source: str = "",
) -> CalibratedImage:
    """Wrap an image in its stated units (no calibration applied).

    ``units == "p/s/cm²/sr"`` declares the data already radiance; anything else
    (``"counts"``, ``"a.u."``…) stays in those units and is flagged ``uncalibrated`` by
    quantification. ``data`` is copied to float32 and never modified.
    """
    array = np.asarray(data)
    if array.ndim != 2:
        raise CalibrationError(f"{source or 'image'}: expected a 2-D image, got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise CalibrationError(f"{source or 'image'}: dtype {array.dtype} is not a real number")
    out = array.astype(np.float32, copy=True)
    out.setflags(write=False)
    calibrated = units in (RADIANCE_UNITS, "p/s/cm2/sr")
    return CalibratedImage(
        radiance=out,
        units=RADIANCE_UNITS if calibrated else units,
        calibrated=calibrated,
        binning=int(binning),
        sensor_pixel_cm=sensor_pixel_cm,
        steps=(CalibrationStep("stated_units", {"units": units}),),
        source=source,
    )


def corrected_image(click: IvisClick, *, saturation_margin_px: int = 3) -> CalibratedImage:
    """Living Image's own ``luminescentFloatCorrected.TIF`` (radiance) as a CalibratedImage.

    Its ``saturation_mask`` comes from the raw counts (the corrected image no longer shows
    saturation): pixels at or above the CCD saturation level, grown by
    ``saturation_margin_px`` binned pixels, because Living Image resamples the corrected image
    (lens distortion; up to ~3 binned pixels at the edge of the reference camera's field), so
    a saturated raw pixel may sit a few pixels away in it.

    Raises
    ------
    CalibrationError
        The click has no saved corrected image, or it is not on the luminescent image's grid.
    """
    frame = click.corrected
    if frame is None:
        raise CalibrationError(
            f"{click.source}: no 'saved luminescent corrected image' in AnalyzedClickInfo.txt; "
            "calibrate the raw counts with calibrate_click()"
        )
    where = f"{click.source}/{frame.filename}"
    lum = click.luminescent
    _check_same_grid(frame.data, frame.binning, lum.data, lum.binning, where, frame.filename)
    if saturation_margin_px < 0:
        raise CalibrationError(f"saturation_margin_px must be ≥ 0, got {saturation_margin_px}")
    image = image_from_array(
        frame.data,
        units=RADIANCE_UNITS,
        binning=frame.binning,
        sensor_pixel_cm=click.sensor_pixel_cm,
        source=where,
    )
    saturation_mask = None
    level = click.camera.saturation_counts if click.camera is not None else None
    n_saturated = 0
    if level is not None and lum.data.size and lum.data.max() >= level:
        raw_saturated = lum.data >= level
        n_saturated = int(np.count_nonzero(raw_saturated))
        saturation_mask = raw_saturated
        if saturation_margin_px:
            saturation_mask = ndimage.binary_dilation(
                raw_saturated, structure=np.ones((3, 3), bool), iterations=saturation_margin_px
            )
        saturation_mask.setflags(write=False)
    steps = (
        CalibrationStep(
            "living_image_corrected",
            {
                "file": frame.filename,
                "intensity_calibration": frame.section.get("Intensity Calibration"),
                "background_corrected": frame.section.get("Background Corrected"),
                "flat_field_corrected": frame.section.get("Flat Field Corrected"),
                "cosmic_corrected": frame.section.get("Cosmic Corrected"),
            },
        ),
        CalibrationStep(
            "saturation",
            {
                "level_counts": level,
                "saturated_pixels": n_saturated,
                "source": lum.filename,
                "margin_px": saturation_margin_px,
            },
        ),
    )
    return _replace(image, steps=steps, saturation_mask=saturation_mask)


def _replace(image: CalibratedImage, **changes: Any) -> CalibratedImage:
    from dataclasses import replace

    return replace(image, **changes)


def calibrate_click(
    click: IvisClick,
    *,
    bias: Literal["auto", "level", "frame"] = "auto",
    dark: Literal["auto", "frame", "none"] = "auto",
    flat_field: Literal["auto"] | bool = "auto",
    cosmic: CosmicRayRemoval | None = CosmicRayRemoval(),
    flat_field_min: float = 0.5,
    flat_field_max: float = 2.0,
) -> CalibratedImage:
    """Calibrate the luminescent counts of an IVIS click to radiance [p/s/cm²/sr].

    Parameters
    ----------
    click : IvisClick
    bias : {"auto", "level", "frame"}
        ``"level"``: the luminescent image's ``Read Bias Level``; ``"frame"``:
        ``readbias.TIF ÷ Data Multiplier``; ``"auto"``: the level if stated, else the frame.
    dark : {"auto", "frame", "none"}
        Dark charge from ``background.TIF`` (÷ multiplier − its bias level, scaled by
        exposure). ``"auto"`` skips a missing or placeholder frame (constant at the uint16
        ceiling, as Living Image writes when no dark was taken) and records why.
    flat_field : "auto" or bool
        ``"auto"`` applies it when coefficients exist for this FOV and f-number.
    cosmic : CosmicRayRemoval or None
        ``None`` disables cosmic-ray removal.
    flat_field_min, flat_field_max : float
        Clamp of ``FF(r)`` (the polynomial misbehaves near the corners).

    Returns
    -------
    CalibratedImage

    Raises
    ------
    CalibrationError
        No ``Camera System Info``, no ``C-ccd`` for this FOV / f-number, missing bias, frames
        of mismatched binning, or a requested step without its data.
    """
    where = f"{click.source}/{click.clickinfo.source.rsplit('/', 1)[-1]}"
    camera = click.camera
    s = click.settings
    if camera is None:
        raise CalibrationError(
            f"{where}: no 'Camera System Info' section, so counts cannot be converted to "
            "radiance; re-export the click with its calibration or use image_from_array()"
        )
    c_ccd = camera.c_ccd_for(s.fov_cm, s.f_number)
    if c_ccd is None:
        raise CalibrationError(
            f"{where}: no 'Coef C-ccd at FOV {s.fov_cm:g}, f{s.f_number:g}' line; the instrument "
            "is not calibrated for this field of view and f-number"
        )
    lum = click.luminescent
    # bias
    bias_value: float | np.ndarray
    if bias == "auto":
        bias = "level" if s.read_bias_level is not None else "frame"
    if bias == "level":
        if s.read_bias_level is None:
            raise CalibrationError(f"{where}: the luminescent image states no Read Bias Level")
        bias_value = float(s.read_bias_level)
        bias_step = CalibrationStep("bias", {"source": "level", "counts": bias_value})
    elif bias == "frame":
        frame = click.readbias
        if frame is None:
            raise CalibrationError(f"{where}: no readbias image to subtract")
        _check_same_grid(frame.data, frame.binning, lum.data, lum.binning, where, frame.filename)
        bias_value = frame.data.astype(np.float32) / np.float32(frame.data_multiplier)
        bias_step = CalibrationStep(
            "bias",
            {
                "source": "frame",
                "file": frame.filename,
                "data_multiplier": frame.data_multiplier,
                "mean_counts": float(bias_value.mean(dtype=np.float64)),
            },
        )
    else:
        raise CalibrationError(f"unknown bias mode {bias!r}")
    # dark
    dark_counts: np.ndarray | None = None
    dark_step: CalibrationStep
    dframe = click.dark
    if dark == "none":
        dark_step = CalibrationStep("dark", {"applied": False, "reason": "disabled"})
    elif dframe is None:
        if dark == "frame":
            raise CalibrationError(f"{where}: no darkcharge image in the click")
        dark_step = CalibrationStep("dark", {"applied": False, "reason": "no darkcharge image"})
    else:
        _check_same_grid(dframe.data, dframe.binning, lum.data, lum.binning, where, dframe.filename)
        placeholder = dframe.data.min() == dframe.data.max() and int(dframe.data.max()) >= 65534
        if placeholder:
            if dark == "frame":
                raise CalibrationError(
                    f"{click.source}/{dframe.filename}: dark frame is a constant placeholder "
                    f"({int(dframe.data.max())}); it holds no dark charge"
                )
            dark_step = CalibrationStep(
                "dark",
                {
                    "applied": False,
                    "file": dframe.filename,
                    "reason": f"constant placeholder frame ({int(dframe.data.max())})",
                },
            )
        else:
            scale = 1.0
            if dframe.exposure_s and s.exposure_s:
                scale = s.exposure_s / dframe.exposure_s
            level = dframe.read_bias_level or 0.0
            dark_counts = (
                dframe.data.astype(np.float32) / np.float32(dframe.data_multiplier)
                - np.float32(level)
            ) * np.float32(scale)
            dark_step = CalibrationStep(
                "dark",
                {
                    "applied": True,
                    "file": dframe.filename,
                    "bias_level_counts": level,
                    "exposure_scale": scale,
                    "data_multiplier": dframe.data_multiplier,
                },
            )
    ff = camera.flat_field_for(s.fov_cm, s.f_number)
    if flat_field is True and ff is None:
        raise CalibrationError(
            f"{where}: no 'Shelf Position … FF5 f/{s.f_number:g} Coefs' line for FOV "
            f"{s.fov_cm:g} cm; pass flat_field=False to calibrate without flat-field correction"
        )
    use_ff = ff if flat_field in (True, "auto") else None
    result = calibrate_counts(
        lum.data,
        exposure_s=s.exposure_s,
        binning=lum.binning,
        c_ccd=c_ccd,
        bias_counts=bias_value,
        dark_counts=dark_counts,
        flat_field=use_ff,
        sensor_pixel_cm=click.sensor_pixel_cm,
        saturation_counts=camera.saturation_counts,
        cosmic=cosmic,
        flat_field_min=flat_field_min,
        flat_field_max=flat_field_max,
        source=f"{click.source}/{lum.filename}",
    )
    steps = (bias_step, dark_step, *result.steps[1:])
    if use_ff is None:
        reason = "disabled" if flat_field is False else "no coefficients for this FOV/f-number"
        steps += (CalibrationStep("flat_field", {"applied": False, "reason": reason}),)
    return _replace(result, steps=steps)


def _check_same_grid(
    data: np.ndarray, binning: int, ref: np.ndarray, ref_binning: int, where: str, name: str
) -> None:
    if binning != ref_binning or data.shape != ref.shape:
        raise CalibrationError(
            f"{where}: {name} is {data.shape} at binning {binning}, the luminescent image "
            f"{ref.shape} at binning {ref_binning}; frames must share the luminescent binning"
        )


def calibrate_counts(
    counts: np.ndarray,
    *,
    exposure_s: float,
    binning: int,
    c_ccd: float,
    bias_counts: float | np.ndarray,
    dark_counts: np.ndarray | None = None,
    flat_field: FlatFieldCoefficients | None = None,
    sensor_pixel_cm: float | None = None,
    saturation_counts: float | None = None,
    cosmic: CosmicRayRemoval | None = CosmicRayRemoval(),
    flat_field_min: float = 0.5,
    flat_field_max: float = 2.0,
    source: str = "",
) -> CalibratedImage:
    """Convert raw counts to radiance with explicit constants (see module docstring).

    Parameters
    ----------
    counts : ndarray, shape (rows, cols)
        Raw camera counts, any real dtype; not modified.
    exposure_s : float
    binning : int
    c_ccd : float
        [p/s/cm²/sr per count/s].
    bias_counts : float or ndarray (rows, cols)
    dark_counts : ndarray (rows, cols), optional
        Dark charge for this exposure [counts], bias already removed.
    flat_field : FlatFieldCoefficients, optional
        Requires ``sensor_pixel_cm``.
    saturation_counts : float, optional
        Raw counts at or above this level are marked in ``saturation_mask``.
    cosmic : CosmicRayRemoval or None

    Returns
    -------
    CalibratedImage
        float32 radiance; the first step records the bias.
    """
    where = source or "image"
    raw = np.asarray(counts)
    if raw.ndim != 2:
        raise CalibrationError(f"{where}: expected a 2-D image, got shape {raw.shape}")
    if exposure_s <= 0 or c_ccd <= 0 or binning < 1:
        raise CalibrationError(f"{where}: exposure, C-ccd and binning must be positive")
    for name, frame in (("bias", bias_counts), ("dark", dark_counts)):
        if isinstance(frame, np.ndarray) and frame.shape != raw.shape:
            raise CalibrationError(
                f"{where}: {name} frame is {frame.shape}, the image {raw.shape}; "
                "frames must have the luminescent image's binning"
            )
    net = np.empty(raw.shape, dtype=np.float32)
    # cast: np.isscalar's TypeGuard widens the float to numpy's whole scalar union
    bias_arg = np.float32(cast(float, bias_counts)) if np.isscalar(bias_counts) else bias_counts
    np.subtract(raw, bias_arg, out=net, dtype=np.float32, casting="unsafe")
    steps = [
        CalibrationStep("bias", {"counts": bias_counts if np.isscalar(bias_counts) else "frame"})
    ]
    if dark_counts is not None:
        net -= dark_counts
    saturation_mask = None
    if saturation_counts is not None:
        n_saturated = 0
        # max() first: one cheap pass; the mask is only built for saturated images.
        if raw.size and raw.max() >= saturation_counts:
            saturation_mask = at_least(raw, saturation_counts)
            saturation_mask.setflags(write=False)
            n_saturated = int(np.count_nonzero(saturation_mask))
        steps.append(
            CalibrationStep(
                "saturation",
                {"level_counts": saturation_counts, "saturated_pixels": n_saturated},
            )
        )
    if cosmic is not None:
        replaced = _remove_cosmics_inplace(net, cosmic)
        steps.append(
            CalibrationStep(
                "cosmic_rays",
                {
                    "min_excess_counts": cosmic.min_excess_counts,
                    "min_ratio": cosmic.min_ratio,
                    "replaced_pixels": replaced,
                    # the exposure check's peak (imaging.check_exposure), for one pass fewer
                    "peak_counts": float(net.max()) if net.size else None,
                },
            )
        )
    scale = c_ccd / (exposure_s * binning * binning)
    steps.append(
        CalibrationStep(
            "counts_to_radiance",
            {
                "c_ccd": c_ccd,
                "exposure_s": exposure_s,
                "binning": binning,
                "scale": scale,
                "formula": "(counts − bias − dark) · C_ccd / (exposure_s · binning²)",
            },
        )
    )
    if flat_field is not None:
        if sensor_pixel_cm is None:
            raise CalibrationError(f"{where}: flat-field correction needs the pixel size")
        factor, clamped = _flat_field_factor(
            raw.shape,
            binning,
            sensor_pixel_cm,
            flat_field,
            flat_field_min,
            flat_field_max,
            scale,
        )
        net *= factor
        steps.append(
            CalibrationStep(
                "flat_field",
                {
                    "applied": True,
                    "shelf": flat_field.shelf,
                    "f_number": flat_field.f_number,
                    "k": flat_field.k,
                    "x0_cm": flat_field.x0_cm,
                    "y0_cm": flat_field.y0_cm,
                    "clamp": (flat_field_min, flat_field_max),
                    "clamped_pixels": clamped,
                },
            )
        )
    else:
        net *= np.float32(scale)
    net.setflags(write=False)
    return CalibratedImage(
        radiance=net,
        units=RADIANCE_UNITS,
        calibrated=True,
        binning=int(binning),
        sensor_pixel_cm=sensor_pixel_cm,
        saturation_mask=saturation_mask,
        steps=tuple(steps),
        source=source,
    )


def flat_field_map(
    shape: tuple[int, int],
    *,
    binning: int,
    sensor_pixel_cm: float,
    coefficients: FlatFieldCoefficients,
    clamp: tuple[float, float] = (0.5, 2.0),
) -> tuple[np.ndarray, int]:
    """``FF(r)`` at every pixel centre (float32) and the number of clamped pixels.

    ``r`` [cm] is measured from the optical centre ``(x0, −y0)`` relative to the image
    centre, ``x`` along columns and ``y`` along rows (reproduces Living Image's corrected
    image on the reference folder).
    """
    rows, cols = shape
    pix_cm = sensor_pixel_cm * binning
    x = (np.arange(cols) + 0.5 - cols / 2) * pix_cm - coefficients.x0_cm
    y = (np.arange(rows) + 0.5 - rows / 2) * pix_cm + coefficients.y0_cm
    # float32, built in place (r plus one buffer): memory matters on 2048² images.
    r = np.add.outer((y * y).astype(np.float32), (x * x).astype(np.float32))
    np.sqrt(r, out=r)
    k0, k1, k2, k3, k4 = coefficients.k
    ff = r * np.float32(k4)
    for k in (k3, k2, k1):
        ff += np.float32(k)
        ff *= r
    ff += np.float32(k0)
    del r
    clamped = int(np.count_nonzero(ff < clamp[0]) + np.count_nonzero(ff > clamp[1]))
    np.clip(ff, np.float32(clamp[0]), np.float32(clamp[1]), out=ff)
    return ff, clamped


@functools.lru_cache(maxsize=8)
def _flat_field_factor(
    shape: tuple[int, int],
    binning: int,
    sensor_pixel_cm: float,
    coefficients: FlatFieldCoefficients,
    ff_min: float,
    ff_max: float,
    scale: float,
) -> tuple[np.ndarray, int]:
    # Cached: an instrument constant for one geometry; saves two full-image passes per image.
    ff, clamped = flat_field_map(
        shape,
        binning=binning,
        sensor_pixel_cm=sensor_pixel_cm,
        coefficients=coefficients,
        clamp=(ff_min, ff_max),
    )
    factor = np.divide(np.float32(scale), ff, out=ff)
    factor.setflags(write=False)
    return factor, clamped


def remove_cosmic_rays(
    image: np.ndarray, *, settings: CosmicRayRemoval = CosmicRayRemoval()
) -> tuple[np.ndarray, np.ndarray]:
    """Replace isolated outliers by the median of their 8 neighbours.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Bias-subtracted counts; not modified.
    settings : CosmicRayRemoval

    Returns
    -------
    cleaned : ndarray of float32
    replaced : ndarray of bool
        Pixels that were replaced.
    """
    work = np.array(image, dtype=np.float32, copy=True)
    mask = np.zeros(work.shape, dtype=bool)
    _remove_cosmics_inplace(work, settings, replaced_mask=mask)
    return work, mask


def at_least(values: np.ndarray, level: float) -> np.ndarray:
    """``values >= level`` as a mask; an integer image is compared in its own type (``v >=
    level`` is ``v >= ceil(level)`` for an integer ``v``), not cast to float64 first: ~5× less
    work on a 2048² uint16 image."""
    if values.dtype.kind in "ui" and math.isfinite(level):
        info = np.iinfo(values.dtype)
        threshold = math.ceil(level)
        if threshold > info.max:
            return np.zeros(values.shape, dtype=bool)
        if threshold <= info.min:
            return np.ones(values.shape, dtype=bool)
        return values >= values.dtype.type(threshold)
    return np.asarray(values >= level)


def _remove_cosmics_inplace(
    net: np.ndarray, settings: CosmicRayRemoval, *, replaced_mask: np.ndarray | None = None
) -> int:
    rows, cols = net.shape
    if rows < 3 or cols < 3:
        return 0
    # Only pixels above the excess threshold can be cosmics: gather their neighbours only,
    # instead of filtering the whole image (a 3×3 median filter costs ~250 image passes).
    candidates = np.flatnonzero(net > settings.min_excess_counts)
    if candidates.size == 0:
        return 0
    # Cheap necessary condition first: a hit has at most one neighbour above value / ratio,
    # so smooth sources (left and right neighbours both bright) drop out after two 1-D
    # gathers. Pixels in the first or last column (whose flat neighbours wrap) are kept.
    flat = net.reshape(-1)
    values = flat[candidates]
    limit = values * np.float32(1.0 / settings.min_ratio)
    left = flat[np.maximum(candidates - 1, 0)]
    right = flat[np.minimum(candidates + 1, flat.size - 1)]
    keep = (left < limit) | (right < limit)
    col = candidates % cols
    keep |= (col == 0) | (col == cols - 1)
    candidates, values = candidates[keep], values[keep]
    if candidates.size == 0:
        return 0
    r, c = np.divmod(candidates, cols)
    neighbours = np.empty((candidates.size, 8), dtype=np.float32)
    k = 0
    for dr in (-1, 0, 1):
        rr = np.abs(r + dr)
        rr = np.where(rr >= rows, 2 * rows - 2 - rr, rr)
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            cc = np.abs(c + dc)
            cc = np.where(cc >= cols, 2 * cols - 2 - cc, cc)
            neighbours[:, k] = net[rr, cc]
            k += 1
    neighbours.sort(axis=1)
    second = neighbours[:, 6]
    hit = (values - second > settings.min_excess_counts) & (
        values > settings.min_ratio * np.maximum(second, 0.0)
    )
    if not hit.any():
        return 0
    median = 0.5 * (neighbours[hit, 3] + neighbours[hit, 4])
    flat[candidates[hit]] = median
    if replaced_mask is not None:
        replaced_mask.reshape(-1)[candidates[hit]] = True
    return int(np.count_nonzero(hit))
