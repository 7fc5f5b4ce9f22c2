"""Animal finding, automatic contours, rendering, and the package's import boundary."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

import imaging
from imaging import (
    CalibrationError,
    CircleRoi,
    RoiError,
    calibrate_click,
    contour_rois,
    corrected_image,
    find_animals,
    image_from_array,
    quantify,
    read_ivis_click,
    render_overlay,
    rois_from_click,
    site_rois,
    write_synthetic_click,
)


def test_finds_synthetic_mice_left_to_right(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=8)
    click = read_ivis_click(tmp_path)
    assert click.photograph is not None
    photo_before = click.photograph.data.copy()
    bodies = find_animals(
        click.photograph.data, binning=click.photograph.binning, animal_numbers=click.animal_numbers
    )
    np.testing.assert_array_equal(click.photograph.data, photo_before)
    assert [b.animal_number for b in bodies] == [m.animal_number for m in truth.mice]
    for body, expected in zip(bodies, truth.body_rois, strict=True):
        assert_allclose(body.centroid_col, expected.center_col, atol=8)
        assert_allclose(body.centroid_row, expected.center_row, atol=8)
        # long axis along rows: semi-axes within 10 % of the drawn ellipse
        assert_allclose(body.body_roi.semi_axis_col, expected.semi_axis_row, rtol=0.1)
        assert_allclose(body.body_roi.semi_axis_row, expected.semi_axis_col, rtol=0.1)
        assert abs(abs(body.body_roi.angle_deg) - 90) < 5


def test_reference_mice_pair_with_living_image_rois(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    assert click.photograph is not None
    bodies = find_animals(
        click.photograph.data, binning=click.photograph.binning, animal_numbers=click.animal_numbers
    )
    assert [b.animal_number for b in bodies] == list(click.animal_numbers)
    # each of Living Image's five head ROIs lies over the body paired with that position
    for body, roi in zip(bodies, click.rois, strict=True):
        assert abs(body.centroid_col - roi.xc) < 60  # sensor px; mice are ~250 px wide


def test_too_few_bodies_is_an_error() -> None:
    photo = np.full((100, 100), 100.0)
    photo[20:80, 10:30] = 2000.0
    with pytest.raises(RoiError, match="found 1 animal bodies"):
        find_animals(photo, binning=1, animal_numbers=("a", "b"))
    with pytest.raises(RoiError, match="uniform"):
        find_animals(np.zeros((10, 10)), binning=1)
    for empty in (np.zeros((0, 10)), np.zeros((10, 0), dtype=np.uint16)):
        with pytest.raises(RoiError, match="empty"):
            find_animals(empty, binning=1)


def test_a_given_threshold_is_the_photographs_own_level_whatever_its_type() -> None:
    """``threshold`` is compared with the 3×3 mean of the photograph: a mouse of 220 on a
    stage of 50 is found at levels between them, given as a float or as a numpy integer
    of the photograph's own type (9 × a uint8 110 must not wrap to 222), and not above it."""
    rows, cols = np.mgrid[0:200, 0:300]
    inside = ((rows - 100) / 60) ** 2 + ((cols - 150) / 40) ** 2 <= 1
    photo = np.where(inside, 220, 50).astype(np.uint8)
    for level in (110.0, np.uint8(110), np.int16(135), np.float32(150.0)):
        (body,) = find_animals(photo, binning=1, threshold=level)
        assert abs(body.area_sensor_px - inside.sum()) < 0.02 * inside.sum(), level
    with pytest.raises(RoiError, match="no animal"):
        find_animals(photo, binning=1, threshold=np.uint8(230))


def test_exact_refuses_more_bodies_than_animals_listed() -> None:
    photo = np.full((100, 120), 100.0)
    for left in (10, 50, 90):  # three mice of the same size
        photo[20:80, left : left + 20] = 2000.0
    # By default the two largest are kept (which two is arbitrary here) ...
    assert len(find_animals(photo, binning=1, animal_numbers=("a", "b"))) == 2
    # ... with exact=True a mouse too many is an error, not a silent pick.
    with pytest.raises(RoiError, match="found 3 animal bodies on the photograph but 2"):
        find_animals(photo, binning=1, animal_numbers=("a", "b"), exact=True)
    bodies = find_animals(photo, binning=1, animal_numbers=("a", "b", "c"), exact=True)
    assert [b.animal_number for b in bodies] == ["a", "b", "c"]
    # A piece far smaller than a mouse (a tail segmented apart) is not another mouse.
    photo[85:95, 60:75] = 2000.0  # 150 px against 1200 px mice
    bodies = find_animals(photo, binning=1, animal_numbers=("a", "b", "c"), exact=True)
    assert [b.animal_number for b in bodies] == ["a", "b", "c"]


def test_site_rois_follow_the_body(tmp_path: Path) -> None:
    write_synthetic_click(tmp_path, binning=8)
    click = read_ivis_click(tmp_path)
    assert click.photograph is not None
    body = find_animals(click.photograph.data, binning=click.photograph.binning, n_animals=5)[0]
    assert body.animal_number is None
    sites = {r.label.removeprefix("animal 1 "): r for r in site_rois(body)}
    assert (
        sites["skull"].center_row < sites["thorax"].center_row < sites["left hindlimb"].center_row
    )
    # dorsal view, head up: the animal's left is on the image left
    assert (
        sites["left hindlimb"].center_col < body.centroid_col < sites["right hindlimb"].center_col
    )
    ventral = {r.label.removeprefix("animal 1 "): r for r in site_rois(body, view="ventral")}
    assert ventral["left hindlimb"].center_col > body.centroid_col


def test_contours_threshold_and_min_area() -> None:
    data = np.zeros((60, 60), dtype=np.float32)
    data[10:20, 10:20] = 500.0
    data[40:44, 40:44] = 1000.0
    data[5, 50] = 800.0  # one-pixel speck
    image = image_from_array(data, units="p/s/cm²/sr", sensor_pixel_cm=0.01)
    rois = contour_rois(image, threshold=100.0, min_area_pixels=4)
    assert [r.label for r in rois] == ["contour 1", "contour 2"]
    assert rois[0].area_sensor_px == 100  # brightest total first: 100 px × 500
    m = quantify(image, rois)
    assert_allclose(m[0].signal_sum, 100 * 500.0, rtol=1e-12)
    assert len(contour_rois(image, threshold=40.0, mode="percent_of_peak")) == 2  # ≥ 400
    assert len(contour_rois(image, threshold=60.0, mode="percent_of_peak")) == 1  # ≥ 600
    with pytest.raises(RoiError, match="binning"):
        quantify(image_from_array(data, units="counts", binning=2), rois)


def test_render_png(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    image = corrected_image(click)
    rois = rois_from_click(click)
    assert click.photograph is not None
    for scale in ("log", "linear"):
        png = render_overlay(
            image,
            photograph=click.photograph.data,
            photograph_binning=click.photograph.binning,
            rois=(*rois, CircleRoi(center_row=1500, center_col=900, radius=50)),
            measurements=quantify(image, rois),
            scale=scale,
            title=click.click_number,
        )
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_render_refuses_mismatched_photograph(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    with pytest.raises(imaging.ImagingError, match="does not cover"):
        render_overlay(calibrate_click(click), photograph=np.zeros((10, 10)), photograph_binning=2)


def test_import_boundary() -> None:
    forbidden = {"app", "cohorts", "fastapi", "sqlalchemy", "pydantic"}
    package = Path(imaging.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{module.name} imports {name}"
                if name.split(".")[0] == "matplotlib":
                    assert module.name == "render.py"


def test_errors_share_one_base() -> None:
    for name in (
        "InvalidImageError",
        "ImageTooLargeError",
        "ClickFolderError",
        "CalibrationError",
        "RoiError",
        "LivingImageExportError",
    ):
        assert issubclass(getattr(imaging, name), imaging.ImagingError)
    assert issubclass(CalibrationError, imaging.ImagingError)
    assert math.isfinite(float(imaging.__version__.split(".")[0]))


@pytest.mark.parametrize("seed", range(4))
def test_fast_opening_and_hole_filling_are_scipys(seed: int) -> None:
    """find_animals' separable opening and one-label hole filling give exactly the pixels of
    scipy's binary_opening (3×3, two iterations) and binary_fill_holes, edges included."""
    from scipy import ndimage

    from imaging.animals import _fill_holes, _open_5x5

    rng = np.random.default_rng(seed)
    blobs = ndimage.uniform_filter(rng.random((97, 131)), size=7) > 0.5 + 0.02 * seed
    noisy = blobs ^ (rng.random(blobs.shape) < 0.03)  # specks and pinholes, touching edges
    opened = ndimage.binary_opening(noisy, structure=np.ones((3, 3), bool), iterations=2)
    np.testing.assert_array_equal(_open_5x5(noisy), opened)
    np.testing.assert_array_equal(_fill_holes(opened), ndimage.binary_fill_holes(opened))
    np.testing.assert_array_equal(_fill_holes(noisy), ndimage.binary_fill_holes(noisy))


def test_fast_opening_is_scipys_on_small_and_thin_masks() -> None:
    """Masks narrower than the 5×5 square (down to one pixel), sparse and dense: the
    separable opening still gives scipy's binary_opening (3×3, two iterations)."""
    from scipy import ndimage

    from imaging.animals import _open_5x5

    rng = np.random.default_rng(11)
    for rows, cols in [(1, 1), (1, 9), (9, 1), (2, 3), (4, 4), (5, 5), (6, 11), (13, 7)]:
        for density in (0.3, 0.7, 0.95, 1.0):
            mask = rng.random((rows, cols)) < density
            opened = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool), iterations=2)
            np.testing.assert_array_equal(_open_5x5(mask), opened, err_msg=f"{rows}x{cols}")


def test_smoothing_is_scipys_3x3_mean_times_9() -> None:
    """find_animals' smoothing: the 3×3 neighbourhood sum with the border mirrored equals 9 ×
    scipy's uniform_filter (size 3, mode 'reflect') in float64 — exactly for integer and
    boolean photographs (held in integers: 9 × 65535 and beyond), to rounding for floats;
    on images down to one pixel."""
    from scipy import ndimage

    from imaging.animals import _box_sum_3x3

    rng = np.random.default_rng(5)
    for rows, cols in [(1, 1), (1, 9), (9, 1), (2, 3), (5, 5), (64, 97)]:
        shape = (rows, cols)
        cases = [
            rng.integers(0, 65536, shape).astype(np.uint16),
            rng.integers(-32768, 32768, shape).astype(np.int16),
            rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32),
            rng.integers(2**63, 2**64 - 1, shape, dtype=np.uint64),  # 9 × these would wrap
            rng.random(shape) < 0.5,
            (rng.random(shape) * 1000).astype(np.float32),
        ]
        for photo in cases:
            got = _box_sum_3x3(photo)
            want = 9 * ndimage.uniform_filter(photo.astype(np.float64), size=3, mode="reflect")
            assert got.shape == photo.shape
            if photo.dtype.kind in "biu" and photo.dtype.itemsize <= 4:
                assert got.dtype.kind == "i"
                np.testing.assert_array_equal(got, np.rint(want).astype(np.int64))
            else:
                np.testing.assert_allclose(got, want, rtol=1e-12)


def test_otsus_histogram_of_integers_is_numpys() -> None:
    """Otsu's histogram of integer values, counted per distinct value then binned: the very
    counts, edges and dtype of ``np.histogram(np.clip(values, low, high), 256)`` for the
    percentile bounds Otsu uses — every integer type (int8's full range, negatives, a few
    distinct values, values spanning more than the fast path takes), and bounds that meet."""
    from imaging.animals import _clipped_histogram

    rng = np.random.default_rng(3)
    cases = [
        rng.integers(-128, 128, 5000).astype(np.int8),
        rng.integers(0, 3, 777).astype(np.uint8),
        rng.integers(-32768, 32768, 4000).astype(np.int16),
        rng.normal(2000, 500, 90_000).clip(0, 65535).astype(np.uint16),
        rng.integers(-50, 50, 1000).astype(np.int32),
        rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32),  # too wide a span
        rng.integers(2**40, 2**40 + 10**6, 1000).astype(np.int64),
        np.array([7] * 500 + [9], dtype=np.uint16),  # 0.5 and 99.5 percentiles equal
    ]
    for values in cases:
        low, high = np.percentile(values, [0.5, 99.5])
        want, want_edges = np.histogram(np.clip(values, low, high), bins=256)
        got, edges = _clipped_histogram(values, float(low), float(high), 256)
        assert got.dtype == want.dtype, values.dtype
        np.testing.assert_array_equal(got, want, err_msg=str(values.dtype))
        np.testing.assert_array_equal(edges, want_edges, err_msg=str(values.dtype))
