"""Synthetic folders: known source flux must be recovered by read → calibrate → quantify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import CalibrationError, calibrate_click, quantify, read_ivis_click, rois_from_click
from imaging.synthetic import (
    SyntheticSource,
    default_hotel,
    synthetic_c_ccd,
    write_synthetic_click,
)

# Bright enough to be detected at every setting without hitting the 600 s exposure cap.
FLUXES_PS = (2e9, 1e10, 8e9, 5e9, 1e9)
GRID = [(b, f) for b in (2, 4, 8, 16) for f in (1, 2, 4, 8)] + [(1, 1), (1, 8)]


@pytest.mark.parametrize(("binning", "f_number"), GRID)
def test_recovers_known_flux(tmp_path: Path, binning: int, f_number: int) -> None:
    mice, sources = default_hotel(FLUXES_PS)
    truth = write_synthetic_click(
        tmp_path,
        mice=mice,
        sources=sources,
        binning=binning,
        f_number=f_number,
        cosmic_rays=5,
        noise=True,
        seed=binning * 10 + f_number,
    )
    click = read_ivis_click(tmp_path)
    assert click.settings.binning == binning and click.settings.f_number == f_number
    image = calibrate_click(click)
    measured = [m.total_flux_ps for m in quantify(image, rois_from_click(click))]
    assert_allclose(measured, [s.total_flux_ps for s in truth.sources], rtol=0.02)


def test_other_fov_and_exact_weighting(tmp_path: Path) -> None:
    sources = (
        SyntheticSource(center_row_cm=4.0, center_col_cm=4.0, total_flux_ps=3e8, sigma_cm=0.2),
        SyntheticSource(center_row_cm=9.0, center_col_cm=8.0, total_flux_ps=6e8, sigma_cm=0.3),
    )
    mice, _ = default_hotel((1.0,), fov_cm=13.2)
    truth = write_synthetic_click(
        tmp_path,
        mice=mice,
        sources=sources,
        fov_cm=13.2,
        binning=4,
        f_number=2,
        exposure_s=30.0,
    )
    click = read_ivis_click(tmp_path)
    assert click.camera is not None
    assert click.camera.c_ccd_for(13.2, 2) == pytest.approx(synthetic_c_ccd(2))
    image = calibrate_click(click)
    measured = [m.total_flux_ps for m in quantify(image, truth.source_rois, method="exact")]
    assert_allclose(measured, [3e8, 6e8], rtol=0.02)


def test_saturation_is_flagged(tmp_path: Path) -> None:
    write_synthetic_click(tmp_path, binning=8, saturate=True)
    click = read_ivis_click(tmp_path)
    results = quantify(calibrate_click(click), rois_from_click(click))
    assert "saturated" in results[1].flags  # the brightest default source
    assert results[1].saturated_pixels > 0
    assert "saturated" not in results[0].flags


def test_cosmics_are_removed(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=4, cosmic_rays=40, seed=3)
    click = read_ivis_click(tmp_path)
    image = calibrate_click(click)
    steps = {s.name: s.parameters for s in image.steps}
    assert steps["cosmic_rays"]["replaced_pixels"] >= 35  # a few may land on each other
    r, c = truth.cosmic_positions[0]
    neighbours = np.delete(image.radiance[r - 1 : r + 2, c - 1 : c + 2].ravel(), 4)
    assert image.radiance[r, c] <= neighbours.max() + 1e-3


def test_labels_and_photograph(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=8)
    click = read_ivis_click(tmp_path)
    assert click.animal_numbers == tuple(m.animal_number for m in truth.mice)
    assert click.photograph is not None and click.photograph.binning == 4
    assert click.readbias is not None
    assert click.settings.exposure_s == pytest.approx(truth.exposure_s)


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
