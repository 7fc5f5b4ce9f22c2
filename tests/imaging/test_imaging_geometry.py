"""ROI weight masks against photutils aperture photometry (test-only dependency) and
analytic areas (π r², π a b, w h)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import (
    CircleRoi,
    EllipseRoi,
    PolygonRoi,
    RectangleRoi,
    RoiError,
    roi_mask,
)
from tests.imaging.masks import crop

photutils_aperture = pytest.importorskip("photutils.aperture")

RNG_SEED = 20260101
# photutils puts pixel centres at integer (x, y); our sensor coordinates put the edge of
# pixel 0 at 0 (binning 1), so a photutils position p is our p + 0.5.
SHIFT = 0.5


def _sum(image: np.ndarray, roi, method: str) -> tuple[float, float]:
    mask = roi_mask(roi, 1, method=method)
    rows, cols, weights = crop(mask, image.shape)
    return float(np.sum(weights * image[rows, cols])), float(weights.sum())


def _photutils(image: np.ndarray, aperture, method: str) -> float:
    table = photutils_aperture.aperture_photometry(image, aperture, method=method)
    return float(table["aperture_sum"][0])


@pytest.mark.parametrize("method", ["exact", "center"])
def test_circle_and_ellipse_match_photutils(method: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    image = rng.random((200, 200))
    for _ in range(25):
        x, y = rng.uniform(40, 160, 2)
        r = rng.uniform(0.3, 35)
        ours, _ = _sum(
            image, CircleRoi(center_row=y + SHIFT, center_col=x + SHIFT, radius=r), method
        )
        ref = _photutils(image, photutils_aperture.CircularAperture((x, y), r), method)
        assert_allclose(ours, ref, rtol=1e-9)
        a, b = rng.uniform(0.4, 35, 2)
        theta = rng.uniform(0, 2 * np.pi)
        roi = EllipseRoi(
            center_row=y + SHIFT,
            center_col=x + SHIFT,
            semi_axis_col=a,
            semi_axis_row=b,
            angle_deg=math.degrees(theta),
        )
        ours, _ = _sum(image, roi, method)
        ref = _photutils(
            image, photutils_aperture.EllipticalAperture((x, y), a, b, theta=theta), method
        )
        assert_allclose(ours, ref, rtol=1e-9)


def test_rotated_rectangle_center_matches_photutils() -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    image = rng.random((200, 200))
    for _ in range(25):
        x, y = rng.uniform(50, 150, 2)
        w, h = rng.uniform(0.5, 50, 2)
        theta = rng.uniform(0, 2 * np.pi)
        roi = RectangleRoi(
            center_row=y + SHIFT,
            center_col=x + SHIFT,
            width=w,
            height=h,
            angle_deg=math.degrees(theta),
        )
        ref = _photutils(
            image, photutils_aperture.RectangularAperture((x, y), w, h, theta=theta), "center"
        )
        assert_allclose(_sum(image, roi, "center")[0], ref, rtol=1e-9)


def test_rotated_rectangle_exact() -> None:
    """photutils has no exact rectangle (it uses 32×32 sub-pixels), so: analytic area to
    1e-12, axis-aligned weights equal the product of 1-D overlaps, and 32×32 sub-pixel sums
    agree to their own sampling accuracy."""
    rng = np.random.default_rng(RNG_SEED + 2)
    image = rng.random((200, 200))
    for _ in range(20):
        x, y = rng.uniform(50, 150, 2)
        w, h = rng.uniform(0.5, 50, 2)
        theta = rng.uniform(0, 2 * np.pi)
        roi = RectangleRoi(
            center_row=y + SHIFT,
            center_col=x + SHIFT,
            width=w,
            height=h,
            angle_deg=math.degrees(theta),
        )
        ours, area = _sum(image, roi, "exact")
        assert_allclose(area, w * h, rtol=1e-12)
        ref = _photutils(
            image, photutils_aperture.RectangularAperture((x, y), w, h, theta=theta), "exact"
        )
        assert_allclose(ours, ref, rtol=5e-3)
    roi = RectangleRoi(center_row=10.3, center_col=20.9, width=5.5, height=3.25)
    mask = roi_mask(roi, 1, method="exact")
    rows = np.arange(mask.row0, mask.row0 + mask.weights.shape[0])
    cols = np.arange(mask.col0, mask.col0 + mask.weights.shape[1])

    def overlap(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip(np.minimum(centres + 1, hi) - np.maximum(centres, lo), 0, 1)

    expected = np.outer(
        overlap(rows, 10.3 - 1.625, 10.3 + 1.625), overlap(cols, 20.9 - 2.75, 20.9 + 2.75)
    )
    assert_allclose(mask.weights, expected, atol=1e-12)


def test_polygon_exact_area_and_orientation() -> None:
    # Non-convex "L" polygon, area 3 * 1 + 1 * 2 = 5 (x = col, y = row)
    vertices = ((0.2, 0.3), (0.2, 3.3), (1.2, 3.3), (1.2, 1.3), (3.2, 1.3), (3.2, 0.3))
    for vs in (vertices, vertices[::-1]):
        roi = PolygonRoi(vertices=tuple((r + 5, c + 5) for r, c in vs))
        mask = roi_mask(roi, 1, method="exact")
        assert_allclose(mask.weights.sum(), 5.0, rtol=1e-12)
        assert mask.weights.min() >= 0 and mask.weights.max() <= 1
    rect = RectangleRoi(center_row=30.2, center_col=40.7, width=12.3, height=4.1, angle_deg=33.0)
    poly = PolygonRoi(vertices=rect.vertices())
    for method in ("center", "exact"):
        assert_allclose(
            roi_mask(poly, 1, method=method).weights,
            roi_mask(rect, 1, method=method).weights,
            atol=1e-12,
        )


@pytest.mark.parametrize("binning", [1, 2, 4, 8, 16])
def test_exact_areas_are_analytic_at_every_binning(binning: int) -> None:
    circle = CircleRoi(center_row=500.3, center_col=611.7, radius=123.4)
    ellipse = EllipseRoi(
        center_row=500.3, center_col=611.7, semi_axis_col=140.0, semi_axis_row=60.5, angle_deg=27.0
    )
    rect = RectangleRoi(
        center_row=500.3, center_col=611.7, width=90.0, height=45.0, angle_deg=-12.0
    )
    for roi, area in (
        (circle, math.pi * 123.4**2),
        (ellipse, math.pi * 140.0 * 60.5),
        (rect, 90.0 * 45.0),
    ):
        weights = roi_mask(roi, binning, method="exact").weights
        assert_allclose(weights.sum() * binning**2, area, rtol=1e-10)
        assert_allclose(roi.area_sensor_px, area, rtol=1e-12)


def test_mask_is_on_bounding_box_only() -> None:
    mask = roi_mask(CircleRoi(center_row=1000, center_col=1000, radius=10), 1, method="exact")
    assert mask.weights.shape == (20, 20)  # index 989.5 … 1009.5: pixels 990 … 1009


def test_invalid_geometry() -> None:
    with pytest.raises(RoiError, match="radius"):
        CircleRoi(center_row=1, center_col=1, radius=0)
    with pytest.raises(RoiError, match="3 vertices"):
        PolygonRoi(vertices=((0, 0), (1, 1)))
    with pytest.raises(RoiError, match="finite"):
        EllipseRoi(center_row=float("nan"), center_col=1, semi_axis_col=1, semi_axis_row=1)
    with pytest.raises(RoiError, match="method"):
        roi_mask(CircleRoi(center_row=1, center_col=1, radius=1), 1, method="subpixel")  # type: ignore[arg-type]


# (centre_row, centre_col, semi_axis_col, semi_axis_row) in photutils coordinates (pixel
# centres at integers): tiny, edges and corners on pixel edges, huge, elongated
HARD_AXIS_ALIGNED = [
    (100.3, 100.7, 0.05, 0.05),
    (100.0, 100.0, 0.3, 0.3),
    (100.5, 100.5, 0.5, 0.5),
    (100.5, 100.0, 0.7, 0.7),
    (100.0, 100.0, 1.0, 1.0),
    (100.5, 100.5, 1.0, 1.0),
    (100.0, 100.5, 10.0, 10.0),
    (100.5, 100.5, 10.5, 10.5),
    (100.0, 100.0, 20.5, 20.5),
    (100.2, 100.9, 95.0, 95.0),
    (100.0, 100.0, 0.4, 30.0),
    (100.5, 100.5, 40.5, 2.5),
    (100.1, 100.3, 0.3, 0.9),
]


@pytest.mark.parametrize(("y", "x", "a", "b"), HARD_AXIS_ALIGNED)
def test_axis_aligned_exact_weights_in_hard_cases(y: float, x: float, a: float, b: float) -> None:
    """Closed-form row weights (``_ellipse_runs``) against photutils' exact overlap."""
    rng = np.random.default_rng(RNG_SEED + 3)
    image = rng.random((201, 201))
    roi = EllipseRoi(center_row=y + SHIFT, center_col=x + SHIFT, semi_axis_col=a, semi_axis_row=b)
    ours, area = _sum(image, roi, "exact")
    ref = _photutils(image, photutils_aperture.EllipticalAperture((x, y), a, b, theta=0.0), "exact")
    assert_allclose(ours, ref, rtol=1e-9)
    assert_allclose(area, math.pi * a * b, rtol=1e-10)
    weights = roi_mask(roi, 1, method="exact").weights
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    if a == b:
        circle = CircleRoi(center_row=y + SHIFT, center_col=x + SHIFT, radius=a)
        ref = _photutils(image, photutils_aperture.CircularAperture((x, y), a), "exact")
        assert_allclose(_sum(image, circle, "exact")[0], ref, rtol=1e-9)


@pytest.mark.parametrize(("y", "x", "a", "b"), HARD_AXIS_ALIGNED)
def test_center_row_runs_equal_the_dense_center_mask(
    y: float, x: float, a: float, b: float
) -> None:
    """Pixel centres exactly on the boundary are decided as by ``(dy/b)² + (dx/a)² < 1``."""
    from imaging.geometry import _ellipse_runs

    mask = roi_mask(
        EllipseRoi(center_row=y + SHIFT, center_col=x + SHIFT, semi_axis_col=a, semi_axis_row=b),
        1,
        method="center",
    )
    n_rows, n_cols = mask.weights.shape
    runs = _ellipse_runs(
        np.array([y]), np.array([x]), np.array([a]), np.array([b]), n_rows=n_rows, method="center"
    )
    assert runs.row0[0] == mask.row0
    cols = np.arange(mask.col0, mask.col0 + n_cols)
    dense = (cols >= runs.run_lo[0][:, None]) & (cols < runs.run_hi[0][:, None])
    np.testing.assert_array_equal(dense, mask.weights)
    assert runs.part_weight.size == 0


def test_exact_polygon_weights_are_zero_on_pixels_it_misses() -> None:
    # Far from the origin, differences of large corner areas leave ~1e-10 of rounding on
    # pixels the triangle never touches; those would count for min, max and saturation.
    o = 1000.3
    roi = PolygonRoi(vertices=((o, o), (o, o + 700), (o + 700, o)))
    mask = roi_mask(roi, 1, method="exact")
    rows = np.arange(mask.weights.shape[0])[:, None] + mask.row0
    cols = np.arange(mask.weights.shape[1])[None, :] + mask.col0
    # pixel (i, j) covers sensor [i, i + 1] × [j, j + 1]: wholly past the hypotenuse when
    # (i − o) + (j − o) ≥ 700
    missed = (rows - o) + (cols - o) >= 700
    assert np.count_nonzero(mask.weights[missed]) == 0
    assert mask.weights.sum() == pytest.approx(700**2 / 2, rel=1e-9)
