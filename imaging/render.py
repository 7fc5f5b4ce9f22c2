"""PNG of the luminescence overlay on the photograph (matplotlib, imported lazily)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .calibration import CalibratedImage
from .errors import ImagingError
from .geometry import Roi
from .quantify import RoiMeasurement

__all__ = ["render_overlay"]


def render_overlay(
    image: CalibratedImage,
    *,
    photograph: np.ndarray | None = None,
    photograph_binning: int | None = None,
    rois: Sequence[Roi] = (),
    measurements: Sequence[RoiMeasurement] = (),
    scale: Literal["log", "linear"] = "log",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    width_in: float = 8.0,
    dpi: int = 100,
) -> bytes:
    """Render the overlay a PI expects next to a number.

    Parameters
    ----------
    image : CalibratedImage
        Luminescence; pixels below ``vmin`` are transparent.
    photograph : ndarray, optional
        Grey photograph of the same field at ``photograph_binning`` (aligned through sensor
        coordinates, so binnings may differ).
    rois, measurements : sequences
        Outlines drawn with their label and, when a measurement of the same index is given,
        its total flux [p/s] (or signal sum when uncalibrated).
    scale : {"log", "linear"}
        Colour scale; the colour bar is labelled in the image's units.
    vmin, vmax : float, optional
        Colour range; default (log) the 99.9th percentile of positive pixels and 1/50 of it,
        (linear) the median and the maximum.

    Returns
    -------
    bytes
        PNG file content.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    data = np.asarray(image.radiance, dtype=np.float64)
    b = image.binning
    rows, cols = data.shape
    extent = (0.0, cols * b, rows * b, 0.0)  # sensor pixels: photo and luminescence align
    finite = data[np.isfinite(data)]
    positive = finite[finite > 0]
    if scale == "log":
        if positive.size == 0:
            raise ImagingError(f"{image.source}: no positive pixel, cannot draw a log scale")
        hi = vmax if vmax is not None else float(np.percentile(positive, 99.9))
        lo = vmin if vmin is not None else hi / 50.0
        norm: Normalize = LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))
    elif scale == "linear":
        lo = vmin if vmin is not None else float(np.percentile(finite, 50)) if finite.size else 0.0
        hi = vmax if vmax is not None else float(finite.max()) if finite.size else 1.0
        norm = Normalize(vmin=lo, vmax=max(hi, lo + 1e-12))
    else:
        raise ImagingError(f"unknown colour scale {scale!r}")
    overlay = np.ma.masked_where(~np.isfinite(data) | (data < lo), data)

    figure = Figure(figsize=(width_in, width_in * rows / cols * 0.9 + 0.6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if photograph is not None:
        photo = np.asarray(photograph, dtype=np.float64)
        pb = photograph_binning or b
        if (photo.shape[0] * pb, photo.shape[1] * pb) != (rows * b, cols * b):
            raise ImagingError(
                f"photograph {photo.shape} at binning {pb} does not cover the luminescent "
                f"image {data.shape} at binning {b}"
            )
        p_lo, p_hi = np.percentile(photo, [1, 99.5])
        axes.imshow(
            photo, cmap="gray", extent=extent, vmin=p_lo, vmax=p_hi, interpolation="nearest"
        )
    mappable = axes.imshow(
        overlay, cmap="jet", norm=norm, extent=extent, alpha=0.75, interpolation="nearest"
    )
    colorbar = figure.colorbar(mappable, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label(f"Radiance [{image.units}]" if image.calibrated else image.units)
    for index, roi in enumerate(rois):
        outline = roi.outline(b)
        sensor = (outline + 0.5) * b
        if sensor.shape[0] > 2:
            closed = np.vstack([sensor, sensor[:1]])
            axes.plot(closed[:, 1], closed[:, 0], color="white", linewidth=1.2)
        text = getattr(roi, "label", "") or f"ROI {index + 1}"
        if index < len(measurements):
            m = measurements[index]
            value = m.total_flux_ps if m.total_flux_ps is not None else m.signal_sum
            unit = "p/s" if m.total_flux_ps is not None else m.units
            text += f"\n{value:.3e} {unit}"
        axes.text(
            float(sensor[:, 1].mean()),
            float(sensor[:, 0].min()) - 8 * b,
            text,
            color="white",
            fontsize=7,
            ha="center",
            va="bottom",
        )
    axes.set_axis_off()
    if title:
        axes.set_title(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
