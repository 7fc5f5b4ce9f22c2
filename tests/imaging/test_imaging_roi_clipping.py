"""ROIs larger than the image or far across its edges: weights are computed only where the
image is, so a huge or hostile ROI costs image-sized memory, and numbers stay photutils'."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose

from imaging import (
    CircleRoi,
    EllipseRoi,
    PolygonRoi,
    RectangleRoi,
    image_from_array,
    quantify,
    roi_mask,
)
from tests.imaging.masks import crop

N = 256
# Each covers the whole N × N image with a wide margin: without clipping their weight masks
# (and the temporaries building them) would span ~2300² pixels, hundreds of MB.
HUGE = {
    "polygon": PolygonRoi(vertices=((-1024, -1024), (-1024, 1280), (1280, 1280), (1280, -1024))),
    "rotated rectangle": RectangleRoi(
        center_row=N / 2, center_col=N / 2, width=1600, height=1600, angle_deg=45
    ),
    "rotated ellipse": EllipseRoi(
        center_row=N / 2, center_col=N / 2, semi_axis_col=1150, semi_axis_row=1000, angle_deg=30
    ),
    "circle": CircleRoi(center_row=N / 2, center_col=N / 2, radius=1150),
}


@pytest.mark.parametrize("method", ["center", "exact"])
@pytest.mark.parametrize("name", list(HUGE))
def test_an_roi_much_larger_than_the_image_costs_image_sized_memory(name: str, method: str) -> None:
    data = np.random.default_rng(3).random((N, N), dtype=np.float32)
    image = image_from_array(data, units="counts")

    tracemalloc.start()
    try:
        (m,) = quantify(image, [HUGE[name]], method=method)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Every pixel lies deep inside the shape: weight 1 each (independent of the geometry code).
    assert m.area_pixels == pytest.approx(N * N, rel=1e-12)
    assert_allclose(m.signal_sum, data.sum(dtype=np.float64), rtol=1e-12)
    assert m.radiance_min == data.min() and m.radiance_max == data.max()
    assert "partly_off_image" in m.flags
    assert peak < 40 * data.nbytes, f"{peak / 2**20:.1f} MiB for a {N}² image"


def _photutils(image: np.ndarray, roi: RectangleRoi | EllipseRoi, method: str) -> float:
    """photutils' aperture sum (its pixel centres sit at integers: a position is ours − 0.5)."""
    aperture = pytest.importorskip("photutils.aperture")
    xy = (roi.center_col - 0.5, roi.center_row - 0.5)
    theta = math.radians(roi.angle_deg)
    if isinstance(roi, RectangleRoi):
        shape = aperture.RectangularAperture(xy, roi.width, roi.height, theta=theta)
    else:
        shape = aperture.EllipticalAperture(xy, roi.semi_axis_col, roi.semi_axis_row, theta=theta)
    return float(aperture.aperture_photometry(image, shape, method=method)["aperture_sum"][0])


def _as_polygon(rect: RectangleRoi) -> PolygonRoi:
    return PolygonRoi(vertices=rect.vertices(), label="polygon")


def _rotated_rois_across_edges(rng: np.random.Generator) -> list[RectangleRoi | EllipseRoi]:
    rois: list[RectangleRoi | EllipseRoi] = []
    for _ in range(12):
        center = {
            "center_row": float(rng.uniform(-30, 110)),
            "center_col": float(rng.uniform(-30, 130)),
        }
        angle = float(rng.uniform(-90, 90))
        w, h = (float(v) for v in rng.uniform(5, 120, size=2))
        rois.append(RectangleRoi(**center, width=w, height=h, angle_deg=angle))
        rois.append(EllipseRoi(**center, semi_axis_col=w / 2, semi_axis_row=h / 2, angle_deg=angle))
    return rois


def _inside(point: tuple[float, ...], axis: int, limit: float, keep_below: bool) -> bool:
    return point[axis] <= limit if keep_below else point[axis] >= limit


def _area_on_image(vertices: tuple[tuple[float, float], ...], n_rows: int, n_cols: int) -> float:
    """Shoelace area of a convex polygon clipped (Sutherland–Hodgman) to the image, whose
    pixels cover sensor coordinates [0, n_rows] × [0, n_cols] at binning 1."""
    points = list(vertices)
    for axis, limit, keep_below in (
        (0, 0, False),
        (0, n_rows, True),
        (1, 0, False),
        (1, n_cols, True),
    ):
        clipped = []
        for k, current in enumerate(points):
            previous = points[k - 1]
            now_in = _inside(current, axis, limit, keep_below)
            if now_in != _inside(previous, axis, limit, keep_below):
                t = (limit - previous[axis]) / (current[axis] - previous[axis])
                clipped.append(
                    tuple(p + t * (c - p) for p, c in zip(previous, current, strict=True))
                )
            if now_in:
                clipped.append(current)
        points = clipped
    if len(points) < 3:
        return 0.0
    rows, cols = np.array(points).T
    return 0.5 * abs(float(np.dot(cols, np.roll(rows, -1)) - np.dot(np.roll(cols, -1), rows)))


@pytest.mark.parametrize("method", ["center", "exact"])
def test_rotated_shapes_and_polygons_across_edges_match_photutils(method: str) -> None:
    rng = np.random.default_rng(5)
    data = rng.random((80, 100)).astype(np.float32)
    image = image_from_array(data, units="counts")
    ones = np.ones(data.shape)
    checked = 0
    for roi in _rotated_rois_across_edges(rng):
        on_image = _photutils(ones, roi, method)
        if not on_image >= 1:  # (nan when off the image) too little to compare
            continue
        expected = _photutils(data.astype(np.float64), roi, method)
        rtol = 1e-9
        shapes: list[RectangleRoi | EllipseRoi | PolygonRoi] = [roi]
        if isinstance(roi, RectangleRoi):
            shapes.append(_as_polygon(roi))
            if method == "exact":
                # photutils samples rectangles on 32 × 32 sub-pixels even for "exact"; the
                # area on the image is checked exactly against the clipped polygon instead
                on_image = _area_on_image(roi.vertices(), *data.shape)
                rtol = 1e-4
        for shape, m in zip(shapes, quantify(image, shapes, method=method), strict=True):
            assert_allclose(m.signal_sum, expected, rtol=rtol, err_msg=repr(shape))
            assert_allclose(m.area_pixels, on_image, rtol=1e-9, err_msg=repr(shape))
            if method == "exact":  # part of the shape's area lies beyond the image edge
                full = roi.area_sensor_px
                assert ("partly_off_image" in m.flags) == (on_image < full * (1 - 1e-9))
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("method", ["center", "exact"])
def test_touching_the_edge_from_inside_is_not_partly_off_image(method: str) -> None:
    image = image_from_array(np.ones((100, 100), dtype=np.float32), units="counts")
    # Rotated by 90° or 180°, the corners land a rounding error past the edge.
    touching = [
        RectangleRoi(center_row=50, center_col=50, width=100, height=60, angle_deg=180),
        RectangleRoi(center_row=50, center_col=50, width=60, height=100, angle_deg=90),
        CircleRoi(center_row=50, center_col=50, radius=50),
        EllipseRoi(center_row=30, center_col=50, semi_axis_col=50, semi_axis_row=30),
    ]
    beyond = [CircleRoi(center_row=50, center_col=50, radius=50.001)]
    results = quantify(image, touching + beyond, method=method)
    assert ["partly_off_image" in m.flags for m in results] == [False] * 4 + [True]
    if method == "exact":  # every touching shape lies wholly on the image
        assert_allclose(
            [m.area_pixels for m in results[:4]],
            [6000, 6000, 2500 * math.pi, 1500 * math.pi],
            rtol=1e-12,
        )


@pytest.mark.parametrize("method", ["center", "exact"])
@pytest.mark.parametrize(
    "vertices",
    [
        ((5, 4), (5, 5), (8, -3)),  # pixel centres exactly on an edge that crosses the image's
        ((-3, -3), (12, 4), (-3, 8), (4, 4)),  # concave, across two edges
    ],
)
def test_cutting_to_the_image_keeps_the_same_pixels(
    vertices: tuple[tuple[float, float], ...], method: str
) -> None:
    roi = PolygonRoi(vertices=vertices)
    cut = roi_mask(roi, 1, method=method, within=(10, 10))
    rows, cols, whole = crop(roi_mask(roi, 1, method=method), (10, 10))
    assert (cut.slices, cut.cut) == ((rows, cols), True)
    if method == "center":
        np.testing.assert_array_equal(cut.weights, whole)
    else:  # clipped before the corner areas: equal up to their rounding
        assert_allclose(cut.weights, whole, rtol=0, atol=1e-12)
