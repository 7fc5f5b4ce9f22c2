"""Synthetic folders: known source flux must be recovered by read → calibrate → quantify."""

from __future__ import annotations

from pathlib import Path

import pytest
from numpy.testing import assert_allclose

from imaging import calibrate_click, quantify, read_ivis_click, rois_from_click
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


def test_labels_and_photograph(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=8)
    click = read_ivis_click(tmp_path)
    assert click.animal_numbers == tuple(m.animal_number for m in truth.mice)
    assert click.photograph is not None and click.photograph.binning == 4
    assert click.readbias is not None
    assert click.settings.exposure_s == pytest.approx(truth.exposure_s)
