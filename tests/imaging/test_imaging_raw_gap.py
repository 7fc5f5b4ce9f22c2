"""The raw-count gap on the reference click, measured against Living Image's own numbers and
its ``luminescentFloatCorrected.TIF`` as per-pixel truth (issue 13 §1; module docstring of
:mod:`imaging.calibration`).

What osteolux reaches from raw counts (total flux vs Living Image's printed values)::

    ROI            1        2        3        4        5
    raw counts   +2.46 %  +1.67 %  −2.20 %  +2.12 %  +24.99 %    target: 1–4 ±0.5 %, 5 ±2 %

Why it stops there (each number checked below):

1. **Bias frame vs level.** Beyond the ``Read Bias Level`` (496.628) the luminescent section
   states, Living Image subtracted, in mouse-free pixels, an offset that follows
   ``readbias.TIF``'s fixed pattern (±0.4 count from the top-left to the bottom-right corner;
   correlation 0.70 over 158 mouse-free 15×15 blocks, slope 1.2) plus a further
   0.74 ± 0.28 count (mean ± block-to-block SD): the bias frame shifted to the stated level,
   and the **dark frame** of its background click ``BKG20220105025931``. That frame is not in
   the folder (``background.TIF`` is the constant 65534 placeholder). Using the bias pattern
   without the dark makes ROIs 1, 4, 5 worse (+6.5, +2.3, +28.9 %), so the level stays.
2. **The dark is most of the gap, and only its frame gives it.** With the bias pattern and a
   uniform 0.74-count dark *taken from Living Image's own image* (an oracle osteolux cannot
   have), ROIs 1–5 come to −1.6, +1.6, −2.4, −1.4, +3.9 %. ROI 5 moves 34 % per count per
   pixel, so its 2 % needs the dark to ±0.06 count, while the dark varies by 0.28 count from
   block to block: a uniform level, or one estimated from the luminescent image's own stage
   (1.3 counts there: it holds light, not only dark charge), cannot reach it.
3. **What remains (±1.4–2.4 % on every ROI)** is not an offset: Living Image resamples its
   image through a lens-distortion model whose coefficients the folder does not hold, flattens
   the brightest heads with its cosmic filter, and is ~2 % brighter than ``C_ccd / FF`` gives
   (module docstring of :mod:`imaging.calibration`).

The primary result is Living Image's corrected image (0.01 % on all five ROIs), so these
differences only show as ``raw_total_flux_ps`` and ``calibration_disagrees``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage

import imaging
from imaging import calibrate_click, calibrate_counts, quantify, read_ivis_click, rois_from_click
from tests.imaging.test_imaging_fidelity import LIVING_IMAGE_TOTAL_FLUX_PS


@pytest.fixture(scope="module")
def click(ivis_reference_folder: Path) -> imaging.IvisClick:
    return read_ivis_click(ivis_reference_folder)


def _relative(click: imaging.IvisClick, image: imaging.CalibratedImage) -> np.ndarray:
    flux = np.array([m.total_flux_ps for m in quantify(image, rois_from_click(click))])
    return flux / LIVING_IMAGE_TOTAL_FLUX_PS - 1


def _with_bias(click: imaging.IvisClick, bias: np.ndarray) -> imaging.CalibratedImage:
    s, camera = click.settings, click.camera
    assert camera is not None
    return calibrate_counts(
        click.luminescent.data,
        exposure_s=s.exposure_s,
        binning=click.luminescent.binning,
        c_ccd=camera.c_ccd_for(s.fov_cm, s.f_number),  # type: ignore[arg-type]
        bias_counts=bias.astype(np.float32),
        flat_field=camera.flat_field_for(s.fov_cm, s.f_number),
        sensor_pixel_cm=click.sensor_pixel_cm,
    )


def _bias_pattern(click: imaging.IvisClick) -> np.ndarray:
    """readbias.TIF's fixed pattern, shifted to the luminescent image's stated level."""
    assert click.readbias is not None and click.settings.read_bias_level is not None
    frame = click.readbias.data / click.readbias.data_multiplier
    return frame - frame.mean() + click.settings.read_bias_level


def _beyond_level_blocks(
    click: imaging.IvisClick,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per mouse-free 15×15 block: the bias pattern (frame − its mean), what Living Image
    subtracted beyond the stated level (raw − level − its corrected image in net counts) and
    the raw counts above the level, as 6-count-clipped means."""
    assert click.corrected is not None and click.photograph is not None
    raw = click.luminescent.data.astype(np.float64)
    level = click.settings.read_bias_level
    assert level is not None
    ones = calibrate_counts(
        np.ones(raw.shape, dtype=np.float32),
        exposure_s=click.settings.exposure_s,
        binning=8,
        c_ccd=click.camera.c_ccd_for(click.settings.fov_cm, click.settings.f_number),  # type: ignore[arg-type, union-attr]
        bias_counts=0.0,
        flat_field=click.camera.flat_field_for(click.settings.fov_cm, click.settings.f_number),  # type: ignore[union-attr]
        sensor_pixel_cm=click.sensor_pixel_cm,
        cosmic=None,
    )
    living_image_net = click.corrected.data / ones.radiance.astype(np.float64)
    beyond = raw - level - living_image_net
    pattern = _bias_pattern(click) - level
    mice = np.zeros(raw.shape, dtype=bool)
    photo = click.photograph
    for body in imaging.find_animals(photo.data, binning=photo.binning, n_animals=5):
        mask = imaging.roi_mask(body.body_roi, 8, within=raw.shape)
        mice[mask.slices] |= mask.weights > 0
    free = ~ndimage.binary_dilation(mice, iterations=6)
    xs, ys, zs = [], [], []
    for i in range(0, raw.shape[0], 15):
        for j in range(0, raw.shape[1], 15):
            block = (slice(i, i + 15), slice(j, j + 15))
            f = free[block]
            if f.sum() > 150:
                v = beyond[block][f]
                keep = np.abs(v - np.median(v)) < 6
                xs.append(pattern[block][f][keep].mean())
                ys.append(v[keep].mean())
                zs.append((raw - level)[block][f][keep].mean())
    return np.array(xs), np.array(ys), np.array(zs)


def test_raw_counts_reach_these_differences_from_living_image(click: imaging.IvisClick) -> None:
    assert_allclose(
        _relative(click, calibrate_click(click)) * 100,
        [2.46, 1.67, -2.20, 2.12, 24.99],
        atol=0.05,  # percentage points: the closing note's figures
    )


def test_living_image_subtracted_the_bias_frame_pattern_and_a_missing_dark(
    click: imaging.IvisClick,
) -> None:
    pattern, beyond, above = _beyond_level_blocks(click)
    assert pattern.size > 150
    slope, _ = np.polyfit(pattern, beyond, 1)
    assert np.corrcoef(pattern, beyond)[0, 1] > 0.6
    assert 0.9 < slope < 1.5  # the frame's pattern, one for one within the noise
    dark = beyond - pattern
    assert_allclose(dark.mean(), 0.74, atol=0.03)  # counts per binned pixel
    assert 0.2 < dark.std() < 0.35  # not one level: only the frame gives it
    # the stage of the luminescent image itself is 1.3 counts above the level: light as well
    # as dark charge (Living Image's corrected image keeps ~0.5 count there)
    assert_allclose((above - pattern).mean(), 1.3, atol=0.1)
    # the pattern alone (no dark) moves every faint ROI further from Living Image
    alone = _relative(click, _with_bias(click, _bias_pattern(click)))
    level = _relative(click, calibrate_click(click))
    assert np.all(alone[[0, 3, 4]] > level[[0, 3, 4]])


def test_with_living_images_own_dark_roi_5_comes_within_4_percent(
    click: imaging.IvisClick,
) -> None:
    """An oracle (the dark taken from Living Image's corrected image): what the missing frame
    would give. ROI 5 then differs by +3.9 % instead of +25 %; the ±1.4–2.4 % left on every
    ROI is resampling, cosmic filtering and gain, not an offset."""
    pattern, beyond, _ = _beyond_level_blocks(click)
    dark = float((beyond - pattern).mean())
    rel = _relative(click, _with_bias(click, _bias_pattern(click) + dark)) * 100
    assert_allclose(rel, [-1.64, 1.55, -2.39, -1.42, 3.86], atol=0.15)
    # 2 % on ROI 5 needs the dark to ±0.06 count: one count moves it by ~34 %
    shifted = _relative(click, _with_bias(click, _bias_pattern(click) + dark + 0.1)) * 100
    assert_allclose((rel[4] - shifted[4]) / 0.1, 34, rtol=0.1)
