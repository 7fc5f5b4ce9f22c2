"""Figures: label placement, shared colour scales, SVG, print resolution, sequence panels."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

from imaging import (
    ImagingError,
    OverlayPanel,
    calibrate_click,
    colour_range,
    corrected_image,
    default_hotel,
    find_animals,
    image_from_array,
    place_labels,
    quantify,
    read_ivis_click,
    render_overlay,
    render_sequence,
    rois_from_click,
    site_rois,
    write_synthetic_click,
)
from imaging.animals import otsu_threshold


def _boxes(centres, sizes):
    return [
        (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        for (x, y), (w, h) in zip(centres, sizes, strict=True)
    ]


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("seed", range(5))
def test_labels_never_overlap_and_stay_inside(seed: int) -> None:
    # 35 ROIs in five columns of seven (five mice × seven sites), labels of two lines
    rng = np.random.default_rng(seed)
    targets = []
    for mouse, site in itertools.product(range(5), range(7)):
        x = 100 + 160 * mouse + rng.uniform(-20, 20)
        y = 150 + 80 * site + rng.uniform(-10, 10)
        r = rng.uniform(10, 25)
        targets.append((x - r, y - r, x + r, y + r))
    sizes = [(rng.uniform(60, 110), 24.0) for _ in targets]
    bounds = (0.0, 0.0, 900.0, 900.0)
    centres = place_labels(targets, sizes, bounds, gap=2.0)
    boxes = _boxes(centres, sizes)
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b)
    for box in boxes:
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= 900 and box[3] <= 900


def test_a_lone_label_sits_just_above_its_roi() -> None:
    (centre,) = place_labels([(100, 100, 140, 140)], [(50, 20)], (0, 0, 500, 500), gap=3)
    assert centre == (120, 140 + 3 + 10)


def test_labels_avoid_other_rois_when_there_is_room() -> None:
    # the space above ROI A is taken by ROI B: A's label goes elsewhere, clear of B
    targets = [(100, 100, 140, 140), (95, 143, 145, 190)]
    sizes = [(50, 20), (50, 20)]
    centres = place_labels(targets, sizes, (0, 0, 500, 500), gap=2)
    boxes = _boxes(centres, sizes)
    assert not _overlap(boxes[0], targets[1]) and not _overlap(boxes[1], targets[0])
    assert not _overlap(boxes[0], boxes[1])


def test_place_labels_input_errors() -> None:
    with pytest.raises(ValueError, match="label sizes"):
        place_labels([(0, 0, 1, 1)], [], (0, 0, 10, 10))


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])  # IHDR width, height


def test_overlay_svg_and_print_resolution(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    image = corrected_image(click)
    rois = rois_from_click(click)
    labels = [f"{tag} skull" for tag in click.animal_numbers]
    kwargs = {
        "photograph": click.photograph.data,
        "photograph_binning": click.photograph.binning,
        "rois": rois,
        "measurements": quantify(image, rois),
        "labels": labels,
    }
    svg = render_overlay(image, format="svg", **kwargs)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"3466 skull" in svg  # each label is in the SVG (a comment beside its glyphs)
    low = _png_size(render_overlay(image, dpi=100, **kwargs))
    high = _png_size(render_overlay(image, dpi=300, **kwargs))
    # the same figure at 3× the resolution (bbox cropping rounds by a few pixels)
    assert high[0] == pytest.approx(3 * low[0], rel=0.02)
    assert high[0] > 0.8 * 8 * 300
    with pytest.raises(ImagingError, match="format"):
        render_overlay(image, format="jpeg", **kwargs)  # type: ignore[arg-type]


def test_crowded_overlay_renders(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    image = corrected_image(click)
    bodies = find_animals(
        click.photograph.data, binning=click.photograph.binning, animal_numbers=click.animal_numbers
    )
    sites = [roi for body in bodies for roi in site_rois(body)]
    png = render_overlay(
        image,
        photograph=click.photograph.data,
        photograph_binning=click.photograph.binning,
        rois=sites,
        measurements=quantify(image, sites),
        vmin=1e4,
        vmax=2e6,
    )
    assert len(png) > 10_000


def _image(values: np.ndarray):
    return image_from_array(values, units="p/s/cm²/sr", binning=8, sensor_pixel_cm=0.01)


def test_colour_range_is_shared_across_images() -> None:
    dim = _image(np.full((20, 20), 100.0))
    bright = _image(np.linspace(1.0, 1e6, 400).reshape(20, 20))
    lo, hi = colour_range([dim, bright], percentile=100.0)
    assert (lo, hi) == (pytest.approx(1e6 / 50), pytest.approx(1e6))
    # pooled, not per image: 800 pixels, the top 0.5 % are the 4 brightest of "bright"
    _, hi_995 = colour_range([dim, bright], percentile=99.5)
    top = np.sort(np.concatenate([np.full(400, 100.0), np.linspace(1.0, 1e6, 400)]))
    assert hi_995 == pytest.approx(np.percentile(top, 99.5))
    lin_lo, lin_hi = colour_range([dim, bright], scale="linear", percentile=100.0)
    assert lin_lo == pytest.approx(np.median(top)) and lin_hi == pytest.approx(1e6)
    with pytest.raises(ImagingError, match="positive"):
        colour_range([_image(np.zeros((4, 4)))])
    with pytest.raises(ImagingError, match="at least one"):
        colour_range([])


def test_sequence_panel(tmp_path: Path) -> None:
    panels = []
    for day, flux in enumerate((1e6, 4e6, 1.6e7)):
        mice, sources = default_hotel((flux,))
        folder = tmp_path / f"day{day}"
        write_synthetic_click(folder, mice=mice, sources=sources, binning=8)
        click = read_ivis_click(folder)
        image = calibrate_click(click)
        body = find_animals(click.photograph.data, binning=click.photograph.binning, n_animals=1)[0]
        panels.append(
            OverlayPanel(
                image=image,
                photograph=click.photograph.data,
                photograph_binning=click.photograph.binning,
                rois=(body.body_roi,),
                measurements=quantify(image, [body.body_roi]),
                labels=("3466 whole body",),
                title=f"day {7 * day}",
            )
        )
    png = render_sequence(panels, title="3466, vehicle")
    width, height = _png_size(png)
    assert width > 2 * height  # one row of three panels
    svg = render_sequence(panels, ncols=2, format="svg")
    assert b"<svg" in svg
    counts = image_from_array(np.ones((240, 240)), units="counts", binning=8)
    with pytest.raises(ImagingError, match="different units"):
        render_sequence([panels[0], OverlayPanel(image=counts)])
    with pytest.raises(ImagingError, match="at least one"):
        render_sequence([])


def test_synthetic_photograph_is_mice_on_a_dark_stage(tmp_path: Path) -> None:
    truth = write_synthetic_click(tmp_path, binning=8)
    photo = read_ivis_click(tmp_path).photograph
    data = photo.data.astype(np.float64)
    level = otsu_threshold(data)
    pix_cm = 22.4 / data.shape[0]
    centres = (np.arange(data.shape[0]) + 0.5) * pix_cm
    inside = np.zeros(data.shape, bool)
    near = np.zeros(data.shape, bool)
    for m in truth.mice:
        u = (centres[:, None] - m.center_row_cm) / (m.length_cm / 2)
        v = (centres[None, :] - m.center_col_cm) / (m.width_cm / 2)
        inside |= u**2 + v**2 < 0.9**2
        near |= u**2 + v**2 < 1.15**2  # the silhouette's soft edge
    outside = ~near
    stage = np.median(data[outside])
    body = np.median(data[inside])
    assert stage < 0.15 * body  # a dark stage
    assert data[inside].min() > level  # every body pixel above the segmentation level
    # ears and tails are drawn, but dimmer than the level: they never join a body
    assert ((data > stage + 300) & (data < level) & outside).sum() > 100
