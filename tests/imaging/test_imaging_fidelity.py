"""Primary calibration (Living Image's corrected image) with the raw calibration beside it."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import (
    CalibrationTolerance,
    RectangleRoi,
    calibrate_click,
    compare_calibrations,
    corrected_image,
    flat_field_map,
    image_from_array,
    primary_image,
    quantify,
    quantify_click,
    read_ivis_click,
    roi_mask,
    rois_from_click,
)
from imaging.synthetic import default_hotel, write_synthetic_click

# Total flux [p/s] Living Image 4.7.3 printed on its own overlay DG20220105114235.PNG
LIVING_IMAGE_TOTAL_FLUX_PS = np.array((2.370e5, 9.330e6, 7.892e6, 4.445e5, 7.398e4))


@pytest.fixture(scope="module")
def click(ivis_reference_folder: Path):
    return read_ivis_click(ivis_reference_folder)


def test_primary_is_living_image_and_matches_its_printed_values(click) -> None:
    result = quantify_click(click, rois_from_click(click))
    assert result.primary == "living_image_corrected"
    flux = [m.total_flux_ps for m in result.measurements]
    # the printed values have 4 significant digits (±0.02 %)
    assert_allclose(flux, LIVING_IMAGE_TOTAL_FLUX_PS, rtol=1e-3)
    assert result.raw_measurements is not None and result.raw_image is not None
    assert result.image.steps[0].name == "living_image_corrected"


def test_calibration_disagrees_flag_follows_the_documented_tolerance(click) -> None:
    result = quantify_click(click, rois_from_click(click))
    raw = np.array([m.total_flux_ps for m in result.raw_measurements])
    area = np.array([m.area_cm2 for m in result.measurements])
    # The rule of imaging.fidelity, applied to Living Image's printed values.
    allowed = np.maximum(0.05 * LIVING_IMAGE_TOTAL_FLUX_PS, 100.0 * area * 4 * math.pi)
    expected = np.abs(raw - LIVING_IMAGE_TOTAL_FLUX_PS) > allowed
    got = np.array(["calibration_disagrees" in m.flags for m in result.measurements])
    np.testing.assert_array_equal(got, expected)
    # ROI 5 (the faintest mouse) is the one the raw counts cannot reproduce (missing dark)
    assert expected.tolist() == [False, False, False, False, True]
    assert result.calibration_disagrees
    for m, c, r in zip(result.measurements, result.comparisons, raw, strict=True):
        check = m.parameters["calibration_check"]
        assert check["raw_total_flux_ps"] == r
        assert check["living_image_total_flux_ps"] == m.total_flux_ps
        assert check["rtol"] == 0.05 and check["disagrees"] == c.disagrees
        assert_allclose(c.relative_difference, r / m.total_flux_ps - 1, rtol=1e-12)


def test_a_looser_tolerance_clears_the_flag(click) -> None:
    result = quantify_click(click, rois_from_click(click), tolerance=CalibrationTolerance(rtol=0.5))
    assert not any("calibration_disagrees" in m.flags for m in result.measurements)
    assert not result.calibration_disagrees


def _uniform(value: float, *, shape: tuple[int, int] = (20, 20)):
    return image_from_array(
        np.full(shape, value), units="p/s/cm²/sr", binning=1, sensor_pixel_cm=0.1
    )


@pytest.mark.parametrize(
    ("li", "raw", "disagrees"),
    [
        (10000.0, 10490.0, False),  # 4.9 % < 5 % (5 % = 500 > 100 p/s/cm²/sr)
        (10000.0, 10510.0, True),  # 5.1 % > 5 %
        (10000.0, 9510.0, False),
        (10000.0, 9490.0, True),
        (1000.0, 1090.0, False),  # +9 %, but 90 p/s/cm²/sr < 100 over the ROI
        (20.0, 110.0, False),  # +450 %, but 90 p/s/cm²/sr < 100 over the ROI
        (20.0, 130.0, True),  # 110 p/s/cm²/sr > 100
    ],
)
def test_tolerance_rule_on_uniform_images(li: float, raw: float, disagrees: bool) -> None:
    roi = RectangleRoi(center_row=10, center_col=10, width=10, height=10, label="A")
    (c,) = compare_calibrations(quantify(_uniform(li), [roi]), quantify(_uniform(raw), [roi]))
    assert c.disagrees is disagrees
    assert_allclose(c.relative_difference, raw / li - 1, rtol=1e-9)
    # allowed = max(5 % of F_LI, 100 · area · 4π); area 100 px × 0.01 cm²
    assert_allclose(
        c.allowed_difference_ps,
        max(0.05 * li * 1.0 * 4 * math.pi, 100.0 * 1.0 * 4 * math.pi),
        rtol=1e-9,
    )


def test_compare_refuses_different_rois() -> None:
    a = RectangleRoi(center_row=10, center_col=10, width=4, height=4, label="A")
    b = RectangleRoi(center_row=10, center_col=10, width=4, height=4, label="B")
    image = _uniform(1.0)
    with pytest.raises(ValueError, match="compared with"):
        compare_calibrations(quantify(image, [a]), quantify(image, [b]))
    with pytest.raises(ValueError, match="1 Living Image ROIs but 2"):
        compare_calibrations(quantify(image, [a]), quantify(image, [a, a]))
    with pytest.raises(ValueError, match="rtol"):
        CalibrationTolerance(rtol=-0.1)


def test_without_corrected_image_the_raw_counts_are_primary(tmp_path: Path) -> None:
    mice, sources = default_hotel((2e9, 1e10, 8e9, 5e9, 1e9))
    truth = write_synthetic_click(tmp_path, mice=mice, sources=sources, binning=8)
    click = read_ivis_click(tmp_path)
    assert click.corrected is None
    result = quantify_click(click, rois_from_click(click))
    assert result.primary == "raw_counts" and result.raw_measurements is None
    assert result.comparisons == () and not result.calibration_disagrees
    assert_allclose(
        [m.total_flux_ps for m in result.measurements],
        [s.total_flux_ps for s in truth.sources],
        rtol=0.02,
    )
    assert primary_image(click).steps[0].name == "bias"


def test_raw_calibration_impossible_keeps_the_primary(click) -> None:
    no_camera = replace(click, camera=None)
    result = quantify_click(no_camera, rois_from_click(click))
    assert result.primary == "living_image_corrected"
    assert result.raw_measurements is None and "Camera System Info" in result.raw_error
    assert_allclose(
        [m.total_flux_ps for m in result.measurements], LIVING_IMAGE_TOTAL_FLUX_PS, rtol=1e-3
    )


def test_corrected_image_flags_saturation_from_the_raw_counts(click) -> None:
    counts = np.array(click.luminescent.data)
    # ROI 2 (Xc 595.6, Yc 420.8 sensor px) → binned centre (51.1, 73.9); saturate 3 px of it
    counts[51, 74] = counts[52, 74] = counts[51, 75] = 61000
    counts.setflags(write=False)
    saturated = replace(click, luminescent=replace(click.luminescent, data=counts))
    image = corrected_image(saturated)
    assert image.saturation_mask is not None
    # the union of three 7 × 7 squares: rows 48–55 × cols 71–78 but for corner (55, 78)
    assert int(image.saturation_mask.sum()) == 8 * 8 - 1
    result = quantify_click(saturated, rois_from_click(click))
    flagged = ["saturated" in m.flags for m in result.measurements]
    assert flagged == [False, True, False, False, False]
    assert result.raw_measurements[1].saturated_pixels == 3
    exact = corrected_image(saturated, saturation_margin_px=0)
    assert int(exact.saturation_mask.sum()) == 3
    # the reference click itself never saturates (raw max 13108 < 61000)
    assert corrected_image(click).saturation_mask is None


def test_raw_image_can_be_supplied(click) -> None:
    raw = calibrate_click(click, flat_field=False)
    result = quantify_click(click, rois_from_click(click), raw_image=raw)
    assert result.raw_image is raw
    # without the flat field ROIs 1–4 are 12–23 % low (BLI.md); ROI 5's −3 % is within 5 %
    assert [c.disagrees for c in result.comparisons] == [True, True, True, True, False]


def test_dark_equivalent_counts_recovers_a_simulated_dark_offset(tmp_path: Path) -> None:
    # "Living Image's" image: the exact calibration of a noiseless synthetic click; the raw
    # counts then gain a uniform 0.5 count per pixel (a dark charge nobody subtracted).
    mice, sources = default_hotel((2e9, 1e10, 8e9, 5e9, 1e9))
    write_synthetic_click(tmp_path, mice=mice, sources=sources, binning=8)
    clean = read_ivis_click(tmp_path)
    truth = calibrate_click(clean, cosmic=None)
    lum = clean.luminescent
    corrected = replace(lum, role="corrected", filename="truth.TIF", data=truth.radiance)
    offset = replace(lum, data=lum.data.astype(np.float64) + 0.5)
    click = replace(clean, luminescent=offset, corrected=corrected)
    result = quantify_click(click, rois_from_click(click))
    assert_allclose([c.dark_equivalent_counts for c in result.comparisons], 0.5, rtol=1e-4)
    # Against a subtracted background square a uniform dark cancels but for the flat field:
    # 0.5 count is 0.5 / FF in radiance units, so what is left in ROI i is
    # 0.5 · (1 − ⟨1/FF⟩_background / ⟨1/FF⟩_i) counts.
    stage = RectangleRoi(center_row=1700, center_col=960, width=1600, height=200)
    subtracted = quantify_click(click, rois_from_click(click), background=stage)
    s = click.settings
    ff, _ = flat_field_map(
        lum.data.shape,
        binning=8,
        sensor_pixel_cm=click.sensor_pixel_cm,
        coefficients=click.camera.flat_field_for(s.fov_cm, s.f_number),
    )

    def mean_inverse_ff(roi) -> float:
        mask = roi_mask(roi, 8, method="center", within=ff.shape)
        return float((1.0 / ff[mask.slices].astype(np.float64))[mask.weights].mean())

    expected = [
        0.5 * (1 - mean_inverse_ff(stage) / mean_inverse_ff(roi)) for roi in rois_from_click(click)
    ]
    got = [c.dark_equivalent_counts for c in subtracted.comparisons]
    assert_allclose(got, expected, rtol=1e-3)
    # and the primary numbers are the truth image's, untouched by the offset
    assert_allclose(
        [m.total_flux_ps for m in result.measurements],
        [m.total_flux_ps for m in quantify(truth, rois_from_click(click))],
        rtol=1e-12,
    )


def test_reference_click_dark_equivalents(click) -> None:
    """The characterisation behind the closing note: ROIs 1, 4, 5 differ from Living Image
    by a fraction of a count of dark charge per pixel (its background click's dark frame is
    not in the folder), ROIs 2–3 by far more counts than any dark frame holds (a gain /
    resampling difference of ~2 %, not a dark level)."""
    result = quantify_click(click, rois_from_click(click))
    dark = np.array([c.dark_equivalent_counts for c in result.comparisons])
    assert np.all((dark[[0, 3, 4]] > 0.1) & (dark[[0, 3, 4]] < 1.0))
    assert np.all(np.abs(dark[[1, 2]]) > 5.0)
    rel = np.array([c.relative_difference for c in result.comparisons])
    assert np.all(np.abs(rel[[1, 2]]) < 0.025)
