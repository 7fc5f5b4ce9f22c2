"""Test helper: an un-cut weight mask's part on an image, cropped by hand (the reference for
``roi_mask(..., within=shape)``)."""

from __future__ import annotations

import numpy as np

from imaging import RoiMask


def crop(mask: RoiMask, shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray]:
    """``(rows, cols, weights)``: ``image[rows, cols]`` lies under ``weights``."""
    r0, c0 = max(mask.row0, 0), max(mask.col0, 0)
    r1 = max(min(mask.row0 + mask.weights.shape[0], shape[0]), r0)
    c1 = max(min(mask.col0 + mask.weights.shape[1], shape[1]), c0)
    weights = mask.weights[r0 - mask.row0 : r1 - mask.row0, c0 - mask.col0 : c1 - mask.col0]
    return slice(r0, r1), slice(c0, c1), weights
