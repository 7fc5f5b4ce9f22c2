"""Calibration (imaging.calibration): raw counts to radiance on the reference click and on
synthetic clicks — bias, dark, cosmic rays, the calibration sections it needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import (
    CalibrationError,
    CosmicRayRemoval,
    calibrate_click,
    calibrate_counts,
    quantify,
    read_ivis_click,
    remove_cosmic_rays,
    rois_from_click,
)
from imaging.synthetic import default_hotel, write_synthetic_click
from tests.imaging.test_imaging_quantify import LIVING_IMAGE_TOTAL_FLUX_PS
from tests.imaging.test_imaging_synthetic import FLUXES_PS


@pytest.fixture(scope="module")
def click(ivis_reference_folder: Path):
    return read_ivis_click(ivis_reference_folder)


def test_raw_counts_calibration_close_to_living_image(click) -> None:
    image = calibrate_click(click)
    flux = np.array([m.total_flux_ps for m in quantify(image, rois_from_click(click))])
    errors = flux / np.array(LIVING_IMAGE_TOTAL_FLUX_PS) - 1
    # The bright ROIs 2 and 3 (the 5 % criterion). The dim ROIs sit near the
    # background, where Living Image's dark-charge click (not in the folder) dominates.
    assert abs(errors[1]) < 0.05
    assert abs(errors[2]) < 0.05
    names = [s.name for s in image.steps]
    assert names == [
        "bias",
        "dark",
        "saturation",
        "cosmic_rays",
        "counts_to_radiance",
        "flat_field",
    ]
    steps = {s.name: s.parameters for s in image.steps}
    assert steps["bias"]["counts"] == pytest.approx(496.628)
    assert steps["dark"]["applied"] is False  # background.TIF is a constant 65534 placeholder
    assert steps["counts_to_radiance"]["c_ccd"] == 7.223e5
    assert steps["flat_field"]["shelf"] == "D"
    assert steps["cosmic_rays"]["replaced_pixels"] >= 1  # the raw maximum is a cosmic


def test_calibration_is_pure(click) -> None:
    before = click.luminescent.data.copy()
    image = calibrate_click(click, bias="frame", flat_field=False, cosmic=None)
    np.testing.assert_array_equal(click.luminescent.data, before)
    assert image.radiance.dtype == np.float32 and not image.radiance.flags.writeable
    expected = (before.astype(np.float64) - click.readbias.data / 10.0) * 7.223e5 / (40 * 64)
    assert_allclose(image.radiance, expected, rtol=1e-5, atol=1e-2)


def test_missing_calibration_section(click) -> None:
    from dataclasses import replace

    with pytest.raises(CalibrationError, match="Camera System Info"):
        calibrate_click(replace(click, camera=None))
    other_f = replace(click, settings=replace(click.settings, f_number=16.0))
    with pytest.raises(CalibrationError, match="f16"):
        calibrate_click(other_f)


def test_cosmic_removal_keeps_sources_and_removes_spikes() -> None:
    rows, cols = np.mgrid[0:64, 0:64]
    image = 5000.0 * np.exp(-((rows - 30) ** 2 + (cols - 30) ** 2) / (2 * 1.2**2))
    image[10, 50] = 9000.0
    image[50, 10:12] = 7000.0  # two-pixel track
    original = image.copy()
    cleaned, replaced = remove_cosmic_rays(image, settings=CosmicRayRemoval())
    np.testing.assert_array_equal(image, original)
    assert replaced[10, 50] and replaced[50, 10] and replaced[50, 11]
    assert int(replaced.sum()) == 3
    assert cleaned[30, 30] == pytest.approx(5000.0)


def test_mismatched_frames_are_a_calibration_error() -> None:
    with pytest.raises(CalibrationError, match="bias frame"):
        calibrate_counts(
            np.zeros((8, 8), np.uint16),
            exposure_s=1.0,
            binning=1,
            c_ccd=1.0,
            bias_counts=np.zeros((4, 4)),
        )


def test_cosmics_are_removed(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=4, cosmic_rays=40, seed=3)
    click = read_ivis_click(tmp_path)
    image = calibrate_click(click)
    steps = {s.name: s.parameters for s in image.steps}
    assert steps["cosmic_rays"]["replaced_pixels"] >= 35  # a few may land on each other
    r, c = truth.cosmic_positions[0]
    neighbours = np.delete(image.radiance[r - 1 : r + 2, c - 1 : c + 2].ravel(), 4)
    assert image.radiance[r, c] <= neighbours.max() + 1e-3


def test_dark_frame_is_subtracted(tmp_path: Path) -> None:
    mice, sources = default_hotel(FLUXES_PS)
    truth = write_synthetic_click(tmp_path, mice=mice, sources=sources, binning=4, dark_counts=40.0)
    click = read_ivis_click(tmp_path)
    image = calibrate_click(click)
    steps = {s.name: s.parameters for s in image.steps}
    assert steps["dark"]["applied"] is True
    measured = [m.total_flux_ps for m in quantify(image, truth.source_rois)]
    assert_allclose(measured, FLUXES_PS, rtol=0.02)
    without = calibrate_click(click, dark="none")
    biased = [m.total_flux_ps for m in quantify(without, truth.source_rois)]
    assert biased[4] > 1.05 * FLUXES_PS[4]  # 40 counts per pixel matter for the dimmest


def test_missing_calibration_section_in_folder(tmp_path: Path) -> None:
    write_synthetic_click(tmp_path, binning=8)
    text = (tmp_path / "ClickInfo.txt").read_bytes().decode("cp1252")
    (tmp_path / "ClickInfo.txt").write_bytes(text.split("*** Camera System Info")[0].encode())
    click = read_ivis_click(tmp_path)
    assert click.camera is None
    with pytest.raises(CalibrationError, match=r"ClickInfo\.txt: no 'Camera System Info'"):
        calibrate_click(click)
