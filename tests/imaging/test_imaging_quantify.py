"""Quantification: Living Image's printed totals, QC flags, partial pixels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import (
    RADIANCE_UNITS,
    CircleRoi,
    EllipseRoi,
    RectangleRoi,
    RoiError,
    calibrate_counts,
    corrected_image,
    image_from_array,
    quantify,
    quantify_roi,
    read_ivis_click,
    roi_mask,
    rois_from_click,
)
from tests.imaging.masks import crop

# Total flux [p/s] Living Image 4.7.3 printed on its own overlay DG20220105114235.PNG
LIVING_IMAGE_TOTAL_FLUX_PS = (2.370e5, 9.330e6, 7.892e6, 4.445e5, 7.398e4)


@pytest.fixture(scope="module")
def click(ivis_reference_folder: Path):
    return read_ivis_click(ivis_reference_folder)


def test_float_corrected_reproduces_living_image(click) -> None:
    image = corrected_image(click)
    results = quantify(image, rois_from_click(click), method="center")
    flux = [m.total_flux_ps for m in results]
    assert_allclose(flux, LIVING_IMAGE_TOTAL_FLUX_PS, rtol=5e-3)
    assert [m.label for m in results] == [f"ROI {i}" for i in range(1, 6)]
    for m in results:
        assert m.units == RADIANCE_UNITS
        assert m.method == "center"
        # area: pixel count × (0.0116667 cm × 8)²
        assert_allclose(m.area_cm2, m.area_pixels * (22.4 / 1920 * 8) ** 2, rtol=1e-12)
        assert m.radiance_min <= m.radiance_mean <= m.radiance_max
        assert "uncalibrated" not in m.flags


def test_quantify_flags_and_background() -> None:
    data = np.full((100, 100), 200.0, dtype=np.float32)
    data[40:60, 40:60] = 5200.0
    saturated = np.zeros((100, 100), dtype=bool)
    saturated[50, 50] = True
    image = calibrate_counts(
        data,
        exposure_s=1.0,
        binning=1,
        c_ccd=1.0,
        bias_counts=0.0,
        sensor_pixel_cm=0.01,
        saturation_counts=None,
        cosmic=None,
    )
    from dataclasses import replace

    image = replace(image, saturation_mask=saturated)
    source = RectangleRoi(center_row=50, center_col=50, width=20, height=20)
    bkg = RectangleRoi(center_row=10, center_col=10, width=10, height=10)
    m = quantify_roi(image, source, background=bkg, method="exact")
    assert m.background_radiance_mean == pytest.approx(200.0)
    assert m.radiance_mean == pytest.approx(5000.0)
    assert m.total_flux_ps == pytest.approx(5000.0 * 400 * 1e-4 * 4 * math.pi)
    assert m.area_cm2 == pytest.approx(400 * 1e-4)
    assert m.saturated_pixels == 1 and "saturated" in m.flags
    edge = quantify_roi(image, CircleRoi(center_row=2, center_col=50, radius=5))
    assert "partly_off_image" in edge.flags
    faint = quantify_roi(image, bkg, background=bkg)
    assert "below_detection" in faint.flags
    with pytest.raises(RoiError, match="entirely outside"):
        quantify_roi(image, CircleRoi(center_row=500, center_col=500, radius=5))


def test_uncalibrated_image_says_so() -> None:
    data = np.arange(100, dtype=np.uint16).reshape(10, 10)
    image = image_from_array(data, units="counts")
    m = quantify_roi(image, RectangleRoi(center_row=5, center_col=5, width=4, height=4))
    assert "uncalibrated" in m.flags
    assert m.total_flux_ps is None and m.units == "counts"
    assert m.signal_sum == pytest.approx(data[3:7, 3:7].sum())
    assert data.flags.writeable  # input untouched


def test_quantify_does_not_modify_image(click) -> None:
    image = corrected_image(click)
    before = image.radiance.copy()
    quantify(image, rois_from_click(click), method="exact", background=rois_from_click(click)[4])
    np.testing.assert_array_equal(image.radiance, before)


def _photutils_sum(image: np.ndarray, roi, method: str) -> float:
    """photutils' aperture sum (pixel centres at integers, so a position is ours − 0.5)."""
    aperture = pytest.importorskip("photutils.aperture")
    y, x = roi.center_row - 0.5, roi.center_col - 0.5
    if isinstance(roi, CircleRoi):
        shape = aperture.CircularAperture((x, y), roi.radius)
    else:
        shape = aperture.EllipticalAperture(
            (x, y), roi.semi_axis_col, roi.semi_axis_row, theta=math.radians(roi.angle_deg)
        )
    table = aperture.aperture_photometry(image, shape, method=method)
    return float(table["aperture_sum"][0])


def _edge_rois(n_rows: int, n_cols: int) -> list:
    """Circles and ellipses inside, touching and crossing every edge, tiny and huge."""
    rois = [
        CircleRoi(center_row=10.5, center_col=40.2, radius=10.5),  # box touches row 0
        CircleRoi(center_row=40.3, center_col=n_cols - 12.0, radius=12.0),  # touches last col
        CircleRoi(center_row=n_rows - 0.3, center_col=70.6, radius=9.1),  # crosses bottom
        CircleRoi(center_row=30.0, center_col=-2.0, radius=7.5),  # crosses left
        CircleRoi(center_row=0.0, center_col=0.0, radius=15.0),  # a quarter on the image
        CircleRoi(center_row=50.2, center_col=60.9, radius=0.4),  # tiny
        CircleRoi(center_row=50.0, center_col=61.0, radius=2.0),  # on pixel edges
        CircleRoi(center_row=n_rows / 2, center_col=n_cols / 2, radius=n_rows / 2),  # whole
        CircleRoi(center_row=n_rows / 2, center_col=n_cols / 2, radius=n_rows),  # huge
        EllipseRoi(center_row=80.4, center_col=90.1, semi_axis_col=20.0, semi_axis_row=6.5),
        EllipseRoi(center_row=5.0, center_col=90.1, semi_axis_col=3.0, semi_axis_row=9.0),
        EllipseRoi(
            center_row=80.4, center_col=40.1, semi_axis_col=20.0, semi_axis_row=6.5, angle_deg=30
        ),
    ]
    rng = np.random.default_rng(7)
    for _ in range(20):
        r = rng.uniform(0.3, 40)
        y, x = rng.uniform(-10, n_rows + 10), rng.uniform(-10, n_cols + 10)
        rois.append(CircleRoi(center_row=y, center_col=x, radius=r))
    # quantify refuses an ROI without a pixel on the image
    return [
        roi
        for roi in rois
        if all(
            roi_mask(roi, 1, method=m, within=(n_rows, n_cols)).weights.sum() > 0
            for m in ("exact", "center")
        )
    ]


@pytest.mark.parametrize("method", ["exact", "center"])
def test_quantify_matches_photutils_inside_and_across_edges(method: str) -> None:
    rng = np.random.default_rng(11)
    data = rng.random((150, 170), dtype=np.float32)
    image = image_from_array(data, units="counts")
    rois = _edge_rois(*data.shape)
    if method == "center":  # pixel centres exactly on a circle: photutils decides otherwise
        rois = [r for r in rois if r.center_row % 0.5 or r.center_col % 0.5]
    results = quantify(image, rois, method=method)
    ones = np.ones(data.shape)
    for roi, m in zip(rois, results, strict=True):
        on_image = _photutils_sum(ones, roi, method)
        if on_image == 0:
            continue
        assert_allclose(
            m.signal_sum, _photutils_sum(data.astype(np.float64), roi, method), rtol=1e-9
        )
        assert_allclose(m.area_pixels, on_image, rtol=1e-9)
        full = math.pi * (
            roi.radius**2 if isinstance(roi, CircleRoi) else roi.semi_axis_col * roi.semi_axis_row
        )
        if method == "exact":
            assert ("partly_off_image" in m.flags) == (on_image < full * (1 - 1e-9))


def _reference_stats(
    data: np.ndarray, saturated: np.ndarray, roi, method: str, binning: int = 1
) -> dict:
    """Statistics straight from the dense weight mask (the definition in quantify's docs)."""
    mask = roi_mask(roi, binning, method=method)
    rows, cols, weights = crop(mask, data.shape)
    w = weights.astype(np.float64)
    values = data[rows, cols].astype(np.float64)
    inside = w > 0
    mean = np.sum(w * values) / np.sum(w)
    return {
        "signal_sum": np.sum(w * values),
        "area_pixels": np.sum(w),
        "radiance_mean": mean,
        "radiance_std": math.sqrt(np.sum(w * (values - mean) ** 2) / np.sum(w)),
        "radiance_min": values[inside].min(),
        "radiance_max": values[inside].max(),
        "saturated_pixels": int(np.count_nonzero(saturated[rows, cols] & inside)),
    }


@pytest.mark.parametrize("method", ["exact", "center"])
def test_row_run_statistics_equal_the_dense_mask_definition(method: str) -> None:
    rng = np.random.default_rng(12)
    data = (1e4 * rng.standard_normal((150, 170)) + 3e4).astype(np.float32)
    saturated = rng.random(data.shape) < 0.05
    image = image_from_array(data, units="counts")
    from dataclasses import replace

    image = replace(image, saturation_mask=saturated)
    rois = _edge_rois(*data.shape)
    before = data.copy()
    results = quantify(image, rois, method=method)
    np.testing.assert_array_equal(data, before)
    for roi, m in zip(rois, results, strict=True):
        ref = _reference_stats(data, saturated, roi, method)
        for name in ("signal_sum", "area_pixels", "radiance_mean", "radiance_std"):
            assert_allclose(getattr(m, name), ref[name], rtol=1e-9, err_msg=name)
        for name in ("radiance_min", "radiance_max", "saturated_pixels"):
            assert getattr(m, name) == ref[name], name


@pytest.mark.parametrize("binning", [1, 2, 3])
@pytest.mark.parametrize("method", ["exact", "center"])
def test_narrow_ellipses_and_binned_images_equal_the_dense_mask_definition(
    method: str, binning: int
) -> None:
    """Row runs on binned images, signed values, a saturation mask, and ellipses narrower
    than a pixel (whose bounding box is one column wide: the empty runs of their end rows
    must not fall outside it)."""
    rng = np.random.default_rng(15 + binning)
    data = (1e3 * rng.standard_normal((90, 110)) + 200).astype(np.float32)
    saturated = rng.random(data.shape) < 0.05
    from dataclasses import replace

    image = replace(
        image_from_array(data, units="counts", binning=binning), saturation_mask=saturated
    )
    b = binning
    rois = [
        EllipseRoi(
            center_row=44.4 * b, center_col=27.5 * b, semi_axis_col=a * b, semi_axis_row=9.7 * b
        )
        for a in (0.43, 0.3, 0.12, 0.9)
    ]
    rois += [
        EllipseRoi(
            center_row=20.3 * b, center_col=c * b, semi_axis_col=0.45 * b, semi_axis_row=6.2 * b
        )
        for c in (60.0, 60.5, 61.2)
    ]
    rois += [
        CircleRoi(center_row=45.2 * b, center_col=55.7 * b, radius=30.4 * b),
        CircleRoi(center_row=70.0 * b, center_col=90.0 * b, radius=0.7 * b),
        EllipseRoi(
            center_row=30.1 * b, center_col=80.6 * b, semi_axis_col=17.3 * b, semi_axis_row=4.1 * b
        ),
        EllipseRoi(center_row=50.5 * b, center_col=20.2 * b, semi_axis_col=3.3, semi_axis_row=25.0),
    ]
    # quantify refuses an ROI without a pixel (a sliver between pixel centres, ``center``)
    rois = [r for r in rois if roi_mask(r, binning, method=method).weights.any()]
    assert len(rois) >= 9
    for roi, m in zip(rois, quantify(image, rois, method=method), strict=True):
        ref = _reference_stats(data, saturated, roi, method, binning)
        for name in ("signal_sum", "area_pixels", "radiance_mean", "radiance_std"):
            assert_allclose(getattr(m, name), ref[name], rtol=1e-9, err_msg=name)
        for name in ("radiance_min", "radiance_max", "saturated_pixels"):
            assert getattr(m, name) == ref[name], name


def test_one_call_equals_one_roi_at_a_time() -> None:
    rng = np.random.default_rng(13)
    image = image_from_array(rng.random((150, 170), dtype=np.float32), units="counts")
    rois = [*_edge_rois(150, 170), RectangleRoi(center_row=50, center_col=50, width=9, height=4)]
    for method in ("exact", "center"):
        together = quantify(image, rois, method=method)
        for roi, m in zip(rois, together, strict=True):
            assert quantify_roi(image, roi, method=method) == m


def test_non_finite_and_flat_images_keep_their_meaning() -> None:
    data = np.full((60, 60), 7.25, dtype=np.float32)
    roi = CircleRoi(center_row=30.2, center_col=29.7, radius=10.3)
    for method in ("exact", "center"):
        flat = quantify_roi(image_from_array(data, units="counts"), roi, method=method)
        assert flat.radiance_std < 1e-12 and flat.radiance_mean == pytest.approx(7.25, rel=1e-12)
        assert flat.radiance_min == flat.radiance_max == 7.25
        corner = data.copy()
        corner[20, 20] = np.nan  # in the bounding box, outside the circle
        m = quantify_roi(image_from_array(corner, units="counts"), roi, method=method)
        assert "non_finite" not in m.flags and m.signal_sum == pytest.approx(flat.signal_sum)
        inside = data.copy()
        inside[30, 30] = np.inf
        m = quantify_roi(image_from_array(inside, units="counts"), roi, method=method)
        assert "non_finite" in m.flags and m.radiance_max == np.inf


@pytest.mark.parametrize("spread", [1e-2, 2e-3, 1e-3, 1e-4])
def test_spread_of_nearly_flat_rois_keeps_its_digits(spread: float) -> None:
    """The row-run path sums L and L² in one pass; near the cancellation guard (std ≈ 0.1 %
    of the level) it must still agree with the two-pass definition."""
    rng = np.random.default_rng(14)
    data = (1e5 * (1 + spread * rng.standard_normal((200, 200)))).astype(np.float32)
    saturated = np.zeros(data.shape, dtype=bool)
    image = image_from_array(data, units="counts")
    rois = [CircleRoi(center_row=100.3, center_col=99.6, radius=r) for r in (3.2, 20.0, 60.5)]
    for method in ("exact", "center"):
        for roi, m in zip(rois, quantify(image, rois, method=method), strict=True):
            ref = _reference_stats(data, saturated, roi, method)
            assert_allclose(m.radiance_std, ref["radiance_std"], rtol=1e-9)


def test_partial_pixel_sums_when_some_rois_have_none() -> None:
    # Not reachable through quantify today (every exact ellipse has partial pixels), but the
    # helper must not shift pixels between ROIs when the first or last ones own none.
    from imaging.geometry import _EllipseRuns
    from imaging.quantify import _partial_pixel_stats

    radiance = np.arange(20, dtype=np.float32).reshape(4, 5)
    rows, cols = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    weights = np.array([0.5, 0.25, 0.0, 1.0])
    runs = _EllipseRuns(
        row0=np.zeros(4, dtype=np.int64),
        run_lo=np.zeros((4, 1), dtype=np.int64),
        run_hi=np.zeros((4, 1), dtype=np.int64),
        part_row=rows,
        part_col=cols,
        part_weight=weights,
        part_start=np.array([0, 0, 2, 4, 4]),  # ROI 0 and 3 own none
    )
    saturated = np.zeros((4, 5), dtype=bool)
    saturated[1, 2] = saturated[2, 3] = True  # the second has weight 0: not counted

    part = _partial_pixel_stats(radiance, saturated, runs)

    values = radiance[rows, cols].astype(np.float64)
    assert_allclose(part.weight, [0, 0.75, 1.0, 0], rtol=1e-12)
    assert_allclose(part.total, [0, 0.5 * values[0] + 0.25 * values[1], values[3], 0], rtol=1e-12)
    assert_allclose(
        part.square, [0, 0.5 * values[0] ** 2 + 0.25 * values[1] ** 2, 19.0**2, 0], rtol=1e-12
    )
    assert_allclose(part.vmin, [np.nan, values[0], 19.0, np.nan], rtol=1e-12)
    assert_allclose(part.vmax, [np.nan, values[1], 19.0, np.nan], rtol=1e-12)
    assert part.saturated.tolist() == [0, 1, 0, 0]
