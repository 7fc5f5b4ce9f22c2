"""Detection limit from a background ROI: analytic and simulated truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import binom, norm

from imaging import (
    DETECTION_K,
    CircleRoi,
    RectangleRoi,
    calibrate_click,
    detection_limit,
    image_from_array,
    quantify,
    read_ivis_click,
)
from imaging.synthetic import SyntheticSource, default_hotel, write_synthetic_click

PIXEL_CM = 0.1  # pixel area 0.01 cm²


def _checkerboard_image(roi_value: float):
    """Background: a checkerboard of 100 and 300 (mean 200, population SD 100 exactly)."""
    data = np.where((np.indices((60, 60)).sum(axis=0) % 2) == 0, 100.0, 300.0)
    data[20:30, 20:30] = roi_value
    return image_from_array(data, units="p/s/cm²/sr", binning=1, sensor_pixel_cm=PIXEL_CM)


ROI = RectangleRoi(center_row=25, center_col=25, width=10, height=10, label="roi")
BACKGROUND = RectangleRoi(center_row=50, center_col=50, width=10, height=10, label="bkg")


@pytest.mark.parametrize(("value", "below"), [(499.0, True), (501.0, False)])
def test_detection_limit_is_mean_plus_k_sd(value: float, below: bool) -> None:
    image = _checkerboard_image(value)
    (m,) = quantify(image, [ROI], background=BACKGROUND, subtract_background=False)
    # μ = 200, σ = 100 (population SD of two equally frequent values 100 and 300), k = 3
    assert m.background_radiance_mean == pytest.approx(200.0)
    assert m.background_radiance_std == pytest.approx(100.0)
    assert m.detection_limit_radiance == pytest.approx(500.0)
    # nothing subtracted: F_DL = 500 × (100 px × 0.01 cm²) × 4π
    assert m.detection_limit_ps == pytest.approx(500.0 * 1.0 * 4 * math.pi)
    assert ("below_detection" in m.flags) is below
    assert (m.total_flux_ps < m.detection_limit_ps) is below
    assert not m.background_subtracted and m.radiance_mean == pytest.approx(value)
    # the same numbers travel in the parameters a service stores as JSON
    assert m.parameters["detection"] == {
        "k": 3.0,
        "limit_radiance": pytest.approx(500.0),
        "limit_total_flux_ps": pytest.approx(500.0 * 4 * math.pi),
        "background_radiance_mean": pytest.approx(200.0),
        "background_radiance_std": pytest.approx(100.0),
    }


def test_subtracted_background_shifts_the_limit_to_the_same_scale() -> None:
    image = _checkerboard_image(450.0)
    (m,) = quantify(image, [ROI], background=BACKGROUND)
    assert m.background_subtracted and m.radiance_mean == pytest.approx(250.0)
    # F_DL = (500 − 200) × 1 cm² × 4π; the decision does not change with subtraction
    assert m.detection_limit_ps == pytest.approx(300.0 * 4 * math.pi)
    assert "below_detection" in m.flags
    (loose,) = quantify(image, [ROI], background=BACKGROUND, detection_k=2.0)
    assert loose.detection_limit_radiance == pytest.approx(400.0)
    assert "below_detection" not in loose.flags


def test_detection_limit_from_separate_measurements_agrees_with_quantify() -> None:
    image = _checkerboard_image(480.0)
    roi, bkg = quantify(image, [ROI, BACKGROUND])
    for k in (1.0, DETECTION_K, 5.0):
        limit = detection_limit(roi, bkg, k=k)
        (together,) = quantify(
            image, [ROI], background=BACKGROUND, subtract_background=False, detection_k=k
        )
        assert limit.radiance == pytest.approx(together.detection_limit_radiance)
        assert limit.total_flux_ps == pytest.approx(together.detection_limit_ps)
        assert limit.below_detection is ("below_detection" in together.flags)
        (subtracted,) = quantify(image, [ROI], background=BACKGROUND, detection_k=k)
        again = detection_limit(subtracted, bkg, k=k)
        assert again.total_flux_ps == pytest.approx(subtracted.detection_limit_ps)
        assert again.below_detection is limit.below_detection
    with pytest.raises(ValueError, match="k must be"):
        detection_limit(roi, bkg, k=-1.0)
    with pytest.raises(ValueError, match="detection_k"):
        quantify(image, [ROI], background=BACKGROUND, detection_k=float("nan"))


def test_absolute_floor_still_applies() -> None:
    # a perfectly flat background (σ = 0): only the 100 p/s/cm²/sr floor separates them
    data = np.full((60, 60), 1000.0)
    data[20:30, 20:30] = 1050.0
    image = image_from_array(data, units="p/s/cm²/sr", binning=1, sensor_pixel_cm=PIXEL_CM)
    (m,) = quantify(image, [ROI], background=BACKGROUND, subtract_background=False)
    assert m.detection_limit_radiance == pytest.approx(1000.0)
    assert "below_detection" in m.flags  # 50 above the background < 100
    data[20:30, 20:30] = 1150.0
    image = image_from_array(data, units="p/s/cm²/sr", binning=1, sensor_pixel_cm=PIXEL_CM)
    (m,) = quantify(image, [ROI], background=BACKGROUND, subtract_background=False)
    assert "below_detection" not in m.flags


def test_false_detection_rate_on_pure_gaussian_background() -> None:
    # One-pixel ROIs on pure N(μ, σ) noise are "detected" with probability 1 − Φ(k).
    rng = np.random.default_rng(20260105)
    data = rng.normal(5000.0, 400.0, (200, 200))
    image = image_from_array(data, units="p/s/cm²/sr", binning=1, sensor_pixel_cm=PIXEL_CM)
    background = RectangleRoi(center_row=50, center_col=100, width=200, height=100)
    rois = [
        RectangleRoi(center_row=r + 0.5, center_col=c + 0.5, width=1, height=1)
        for r in range(100, 200, 2)
        for c in range(0, 200, 4)
    ]
    k = 2.0  # enough false detections among 2500 ROIs to test the rate
    results = quantify(image, rois, background=background, subtract_background=False, detection_k=k)
    detected = sum("below_detection" not in m.flags for m in results)
    p = norm.sf(k)  # 0.02275
    lo, hi = binom.ppf([0.0005, 0.9995], len(rois), p)
    assert lo <= detected <= hi, (detected, len(rois) * p)


def test_synthetic_click_source_detected_and_empty_stage_not(tmp_path: Path) -> None:
    mice, _ = default_hotel((1.0,) * 5)
    sources = (
        SyntheticSource(center_row_cm=6.0, center_col_cm=5.0, total_flux_ps=5e7, sigma_cm=0.3),
    )
    write_synthetic_click(tmp_path, mice=mice, sources=sources, binning=8, noise=True, seed=3)
    image = calibrate_click(read_ivis_click(tmp_path))
    pix = 22.4 / 1920  # sensor pixel [cm]
    on_source = CircleRoi(center_row=6.0 / pix, center_col=5.0 / pix, radius=1.2 / pix)
    empty = CircleRoi(center_row=19.0 / pix, center_col=17.0 / pix, radius=1.2 / pix)
    stage = RectangleRoi(center_row=20.5 / pix, center_col=11.0 / pix, width=600, height=120)
    m_source, m_empty = quantify(image, [on_source, empty], background=stage)
    assert "below_detection" not in m_source.flags
    assert "below_detection" in m_empty.flags
    assert_allclose(m_source.total_flux_ps, 5e7, rtol=0.05)
    assert m_empty.total_flux_ps < m_empty.detection_limit_ps


def test_reference_click_faintest_mouse_is_below_detection(ivis_reference_folder: Path) -> None:
    """Living Image's ROI 5 (7.4e4 p/s, ~1080 p/s/cm²/sr: the autoluminescence of a nude
    mouse, 1000–1600 in BLI.md) is not distinguishable from the empty stage; ROI 1, the next
    faintest (3460 p/s/cm²/sr), is."""
    from imaging import quantify_click, rois_from_click

    click = read_ivis_click(ivis_reference_folder)
    stage = RectangleRoi(center_row=1750, center_col=960, width=1400, height=200)  # no mouse
    result = quantify_click(
        click, rois_from_click(click), background=stage, subtract_background=False
    )
    below = ["below_detection" in m.flags for m in result.measurements]
    assert below == [False, False, False, False, True]
    # five circles of one size (625–628 pixels): one limit, within their pixel counts
    limits = [m.detection_limit_ps for m in result.measurements]
    assert_allclose(limits, limits[0], rtol=0.01)
