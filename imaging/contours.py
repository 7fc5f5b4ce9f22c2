"""Automatic ROIs: threshold → connected components → minimum area."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from .calibration import CalibratedImage
from .errors import RoiError
from .geometry import MaskRoi

__all__ = ["contour_rois"]


def contour_rois(
    image: CalibratedImage,
    *,
    threshold: float,
    mode: Literal["radiance", "percent_of_peak"] = "radiance",
    min_area_pixels: int = 4,
    connectivity: Literal[4, 8] = 8,
    max_rois: int | None = None,
    label_prefix: str = "contour",
) -> tuple[MaskRoi, ...]:
    """Trace ROIs where the image exceeds a threshold.

    Parameters
    ----------
    image : CalibratedImage
        Not modified.
    threshold : float
        In the image's units (``mode="radiance"``, p/s/cm²/sr when calibrated) or in
        percent of the image's finite maximum (``mode="percent_of_peak"``, 0–100).
    min_area_pixels : int
        Components smaller than this (image pixels) are dropped.
    connectivity : {4, 8}
    max_rois : int, optional
        Keep only the brightest (largest Σ value) components.

    Returns
    -------
    tuple[MaskRoi, ...]
        Brightest first, labelled ``"<prefix> 1"``, ``"<prefix> 2"``…; each applies to
        images of this binning only.
    """
    data = image.radiance
    if mode == "percent_of_peak":
        if not 0 < threshold <= 100:
            raise RoiError(f"percent_of_peak threshold must be in (0, 100], got {threshold}")
        finite = data[np.isfinite(data)]
        if finite.size == 0 or finite.max() <= 0:
            return ()
        level = float(finite.max()) * threshold / 100.0
    elif mode == "radiance":
        level = float(threshold)
    else:
        raise RoiError(f"unknown contour mode {mode!r}")
    above = data >= level
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, n = ndimage.label(above, structure=structure)
    if n == 0:
        return ()
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(above, labels, index)
    sums = ndimage.sum_labels(data.astype(np.float64), labels, index)
    slices = ndimage.find_objects(labels)
    order = [i for i in np.argsort(-sums) if areas[i] >= min_area_pixels]
    if max_rois is not None:
        order = order[:max_rois]
    out = []
    for rank, i in enumerate(order, start=1):
        sl = slices[i]
        mask = labels[sl] == i + 1
        mask.setflags(write=False)
        out.append(
            MaskRoi(
                row0=sl[0].start,
                col0=sl[1].start,
                mask_pixels=mask,
                binning=image.binning,
                label=f"{label_prefix} {rank}",
            )
        )
    return tuple(out)
