"""Overlay figures a PI puts in a paper (matplotlib, imported lazily).

* :func:`render_overlay` — one acquisition: the luminescence on the photograph, ROI outlines,
  labels (ear tag, site, flux) that never overlap each other, a labelled colour bar; PNG or
  SVG at any resolution (300 dpi for print).
* :func:`render_sequence` — Living Image's image-sequence layout: one animal or one arm
  across sessions, every panel on one colour scale with one colour bar.
* :func:`colour_range` — the shared scale of a time course (study-wide ``vmin``, ``vmax``).

Label placement (:func:`place_labels`) is a greedy search in display units: each label tries
positions around its ROI (above, below, right, left, the diagonals, then further out) and
takes the first that overlaps no placed label, no other ROI and stays inside the image;
labels that moved away from their ROI get a leader line. Order: top to bottom, left to right.

Why one long module: both figures draw the same panel (:func:`_draw_panel`), place labels
with the same search and share the colour scale and colour bar; the label placement is the
bulk of the code and exists only for these figures.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .calibration import CalibratedImage
from .errors import ImagingError
from .geometry import Roi
from .quantify import RoiMeasurement

if TYPE_CHECKING:  # matplotlib stays a lazy import
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize

__all__ = [
    "OverlayPanel",
    "colour_range",
    "place_labels",
    "render_overlay",
    "render_sequence",
]

Scale = Literal["log", "linear"]
Format = Literal["png", "svg"]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1

#: Photograph grey levels span [0, PHOTO_MAX_GREY]: a dim photograph lets the colours read.
PHOTO_MAX_GREY = 0.7


@dataclass(frozen=True, kw_only=True)
class OverlayPanel:
    """One acquisition in a figure.

    Attributes
    ----------
    image : CalibratedImage
    photograph : ndarray, optional
        Grey photograph of the same field at ``photograph_binning``.
    photograph_binning : int, optional
    rois : sequence of Roi
    measurements : sequence of RoiMeasurement
        Same order as ``rois``; each label shows its total flux (or signal sum).
    labels : sequence of str, optional
        Per ROI, replaces the ROI's own label (e.g. ``"3466 spine"``).
    title : str, optional
    """

    image: CalibratedImage
    photograph: np.ndarray | None = field(default=None, repr=False)
    photograph_binning: int | None = None
    rois: Sequence[Roi] = ()
    measurements: Sequence[RoiMeasurement] = ()
    labels: Sequence[str] | None = None
    title: str | None = None


def colour_range(
    images: Sequence[CalibratedImage],
    *,
    scale: Scale = "log",
    percentile: float = 99.9,
    dynamic_range: float = 50.0,
) -> tuple[float, float]:
    """One colour range for several images (a time course on one scale).

    ``vmax`` is the ``percentile`` of the positive finite pixels of **all** images pooled;
    ``vmin`` is ``vmax / dynamic_range`` for ``log``, and for ``linear`` the median of all
    finite pixels (the stage). Pass the result as ``vmin``/``vmax`` to the renderers.

    Raises
    ------
    ImagingError
        No image, or (``log``) no positive pixel in any of them.
    """
    if not images:
        raise ImagingError("colour_range needs at least one image")
    finite = np.concatenate(
        [np.asarray(i.radiance, dtype=np.float64)[np.isfinite(i.radiance)] for i in images]
    )
    positive = finite[finite > 0]
    if scale == "log":
        if positive.size == 0:
            raise ImagingError("no positive pixel in any image: a log scale cannot be drawn")
        hi = float(np.percentile(positive, percentile))
        return hi / dynamic_range, hi
    if scale == "linear":
        if finite.size == 0:
            raise ImagingError("no finite pixel in any image")
        lo = float(np.median(finite))
        hi = float(np.percentile(finite, percentile))
        return lo, max(hi, lo + 1e-12)
    raise ImagingError(f"unknown colour scale {scale!r}")


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a: Box, bounds: Box) -> bool:
    return a[0] >= bounds[0] and a[1] >= bounds[1] and a[2] <= bounds[2] and a[3] <= bounds[3]


def place_labels(
    targets: Sequence[Box],
    sizes: Sequence[tuple[float, float]],
    bounds: Box,
    *,
    gap: float = 2.0,
    max_rings: int = 40,
) -> list[tuple[float, float]]:
    """Centres for labels of the given sizes next to their targets, never overlapping.

    Parameters
    ----------
    targets : sequence of (x0, y0, x1, y1)
        Each label's object (an ROI's bounding box), display units, ``y`` up.
    sizes : sequence of (width, height)
        Each label's extent, same units.
    bounds : (x0, y0, x1, y1)
        Where labels may go.
    gap : float
        Clearance between a label and anything else.
    max_rings : int
        How far out to search (rings of one label height / width).

    Returns
    -------
    list of (x, y)
        Label centres, in input order. A label that fits nowhere (more labels than room) is
        put above its target; it is the only case in which labels can overlap.
    """
    if len(targets) != len(sizes):
        raise ValueError(f"{len(targets)} targets but {len(sizes)} label sizes")
    order = sorted(range(len(targets)), key=lambda i: (-targets[i][3], targets[i][0]))
    placed: list[Box] = []
    centres: list[tuple[float, float] | None] = [None] * len(targets)
    for i in order:
        x0, y0, x1, y1 = targets[i]
        w, h = sizes[i]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        others = [t for j, t in enumerate(targets) if j != i]
        chosen: tuple[float, float] | None = None
        for avoid_rois in (True, False):
            for ring in range(max_rings):
                dy = ring * (h + gap)
                dx = ring * (w + gap)
                candidates = (
                    (cx, y1 + gap + h / 2 + dy),  # above
                    (cx, y0 - gap - h / 2 - dy),  # below
                    (x1 + gap + w / 2 + dx, cy),  # right
                    (x0 - gap - w / 2 - dx, cy),  # left
                    (x1 + gap + w / 2 + dx, y1 + gap + h / 2 + dy),
                    (x0 - gap - w / 2 - dx, y1 + gap + h / 2 + dy),
                    (x1 + gap + w / 2 + dx, y0 - gap - h / 2 - dy),
                    (x0 - gap - w / 2 - dx, y0 - gap - h / 2 - dy),
                )
                for px, py in candidates:
                    box = (px - w / 2, py - h / 2, px + w / 2, py + h / 2)
                    padded = (box[0] - gap, box[1] - gap, box[2] + gap, box[3] + gap)
                    if not _inside(box, bounds):
                        continue
                    if any(_overlaps(padded, p) for p in placed):
                        continue
                    if avoid_rois and any(_overlaps(padded, t) for t in others):
                        continue
                    chosen = (px, py)
                    break
                if chosen is not None:
                    break
            if chosen is not None:
                break
        if chosen is None:
            chosen = (cx, y1 + gap + h / 2)
        centres[i] = chosen
        placed.append((chosen[0] - w / 2, chosen[1] - h / 2, chosen[0] + w / 2, chosen[1] + h / 2))
    return [c for c in centres if c is not None]


def _label_text(panel: OverlayPanel, index: int, roi: Roi) -> str:
    if panel.labels is not None and index < len(panel.labels):
        text = panel.labels[index]
    else:
        text = getattr(roi, "label", "") or f"ROI {index + 1}"
    if index < len(panel.measurements):
        m = panel.measurements[index]
        if m.total_flux_ps is not None:
            text += f"\n{m.total_flux_ps:.3g} p/s"
        else:
            text += f"\n{m.signal_sum:.3g} {m.units}"
    return text


def _norm(image: CalibratedImage, scale: Scale, vmin: float | None, vmax: float | None) -> Any:
    from matplotlib.colors import LogNorm, Normalize

    if vmin is None or vmax is None:
        auto_lo, auto_hi = colour_range([image], scale=scale)
        vmin = auto_lo if vmin is None else vmin
        vmax = auto_hi if vmax is None else vmax
    if scale == "log":
        if vmin <= 0:
            raise ImagingError(f"a log colour scale needs vmin > 0, got {vmin}")
        return LogNorm(vmin=vmin, vmax=max(vmax, vmin * 1.0001))
    return Normalize(vmin=vmin, vmax=max(vmax, vmin + 1e-12))


def _draw_panel(
    axes: Axes,
    panel: OverlayPanel,
    norm: Normalize,
    *,
    cmap: str,
    font_size_pt: float,
) -> tuple[Any, list[np.ndarray]]:
    """Photograph, luminescence and ROI outlines on ``axes``; the mappable and the outlines
    (sensor pixels, (row, col)) for :func:`_label_panel` once the layout is final."""
    image = panel.image
    data = np.asarray(image.radiance, dtype=np.float64)
    b = image.binning
    rows, cols = data.shape
    extent = (0.0, cols * b, rows * b, 0.0)  # sensor pixels: photo and luminescence align
    if panel.photograph is not None:
        photo = np.asarray(panel.photograph, dtype=np.float64)
        pb = panel.photograph_binning or b
        if (photo.shape[0] * pb, photo.shape[1] * pb) != (rows * b, cols * b):
            raise ImagingError(
                f"photograph {photo.shape} at binning {pb} does not cover the luminescent "
                f"image {data.shape} at binning {b}"
            )
        p_lo, p_hi = np.percentile(photo, [1, 99.5])
        # the photograph's brightest part maps to PHOTO_MAX_GREY, not white
        p_top = p_lo + max(p_hi - p_lo, 1e-12) / PHOTO_MAX_GREY
        axes.imshow(
            photo, cmap="gray", extent=extent, vmin=p_lo, vmax=p_top, interpolation="nearest"
        )
    else:
        axes.set_facecolor("black")
    lo = float(norm.vmin) if norm.vmin is not None else -math.inf
    overlay = np.ma.masked_where(~np.isfinite(data) | (data < lo), data)
    mappable = axes.imshow(
        overlay, cmap=cmap, norm=norm, extent=extent, alpha=0.8, interpolation="nearest"
    )
    axes.set_xlim(0, cols * b)
    axes.set_ylim(rows * b, 0)
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    if panel.title:
        axes.set_title(panel.title, fontsize=font_size_pt + 1)
    outlines = []
    for roi in panel.rois:
        sensor = (roi.outline(b) + 0.5) * b
        outlines.append(sensor)
        if sensor.shape[0] > 2:
            closed = np.vstack([sensor, sensor[:1]])
            axes.plot(closed[:, 1], closed[:, 0], color="white", linewidth=1.0)
    return mappable, outlines


def _label_panel(
    axes: Axes, panel: OverlayPanel, outlines: list[np.ndarray], *, font_size_pt: float
) -> None:
    """Labels placed by :func:`place_labels` (call after the figure's layout is final)."""
    if not panel.rois:
        return
    figure = axes.figure
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    to_display = axes.transData
    texts, targets, sizes = [], [], []
    for index, (roi, sensor) in enumerate(zip(panel.rois, outlines, strict=True)):
        text = axes.text(
            0.0,
            0.0,
            _label_text(panel, index, roi),
            color="white",
            fontsize=font_size_pt,
            ha="center",
            va="center",
            linespacing=1.1,
            bbox={"boxstyle": "square,pad=0.15", "facecolor": "black", "alpha": 0.55, "lw": 0},
        )
        text.draw(renderer)  # sizes the bbox patch
        patch = text.get_bbox_patch()
        assert patch is not None  # bbox= above
        extent_px = patch.get_window_extent(renderer)
        texts.append(text)
        sizes.append((extent_px.width, extent_px.height))
        pts = to_display.transform(sensor[:, ::-1]) if sensor.size else np.zeros((1, 2))
        targets.append((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()))
    window = axes.get_window_extent(renderer)
    gap = font_size_pt * figure.dpi / 72 * 0.3
    centres = place_labels(targets, sizes, (window.x0, window.y0, window.x1, window.y1), gap=gap)
    from_display = to_display.inverted()
    for text, target, size, (px, py) in zip(texts, targets, sizes, centres, strict=True):
        text.set_position(tuple(from_display.transform((px, py))))
        tx0, ty0, tx1, ty1 = target
        default_y = ty1 + gap + size[1] / 2
        if abs(px - (tx0 + tx1) / 2) > 1 or abs(py - default_y) > 1:
            # a leader from the ROI's box to the label's nearest edge
            ex, ey = min(max(px, tx0), tx1), min(max(py, ty0), ty1)
            lx = min(max(ex, px - size[0] / 2), px + size[0] / 2)
            ly = min(max(ey, py - size[1] / 2), py + size[1] / 2)
            (x0, y0), (x1, y1) = from_display.transform([(ex, ey), (lx, ly)])
            axes.plot([x0, x1], [y0, y1], color="white", linewidth=0.6, alpha=0.8)


def _save(figure: Any, fmt: Format, dpi: int) -> bytes:
    if fmt not in ("png", "svg"):
        raise ImagingError(f"unknown figure format {fmt!r} (png or svg)")
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {"Date": None}
    figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def _colour_bar_label(image: CalibratedImage) -> str:
    return f"Radiance [{image.units}]" if image.calibrated else image.units


def render_overlay(
    image: CalibratedImage,
    *,
    photograph: np.ndarray | None = None,
    photograph_binning: int | None = None,
    rois: Sequence[Roi] = (),
    measurements: Sequence[RoiMeasurement] = (),
    scale: Scale = "log",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    width_in: float = 8.0,
    dpi: int = 100,
    labels: Sequence[str] | None = None,
    format: Format = "png",
    font_size_pt: float = 8.0,
    colormap: str = "jet",
) -> bytes:
    """Render the overlay a PI expects next to a number.

    Parameters
    ----------
    image : CalibratedImage
        Luminescence; pixels below ``vmin`` are transparent.
    photograph : ndarray, optional
        Grey photograph of the same field at ``photograph_binning`` (aligned through sensor
        coordinates, so binnings may differ), drawn dimmed so the colours read.
    rois, measurements : sequences
        Outlines drawn with their label and, when a measurement of the same index is given,
        its total flux [p/s] (or signal sum when uncalibrated).
    scale : {"log", "linear"}
        Colour scale; the colour bar is labelled in the image's units.
    vmin, vmax : float, optional
        Colour range (e.g. :func:`colour_range` of a whole study); default
        ``colour_range([image])``.
    labels : sequence of str, optional
        Per ROI, replaces its label (ear tag and site: ``"3466 spine"``).
    format : {"png", "svg"}
    width_in, dpi : float, int
        Figure width [in] and resolution (300 for print; text is sized in points, so it
        reads the same at any dpi).
    font_size_pt : float
    colormap : str
        A matplotlib colour map name.

    Returns
    -------
    bytes
        PNG or SVG file content.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = image.radiance.shape
    norm = _norm(image, scale, vmin, vmax)
    figure = Figure(figsize=(width_in, width_in * rows / cols * 0.9 + 0.6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    panel = OverlayPanel(
        image=image,
        photograph=photograph,
        photograph_binning=photograph_binning,
        rois=rois,
        measurements=measurements,
        labels=labels,
        title=title,
    )
    mappable, outlines = _draw_panel(axes, panel, norm, cmap=colormap, font_size_pt=font_size_pt)
    colorbar = figure.colorbar(mappable, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label(_colour_bar_label(image), fontsize=font_size_pt + 1)
    colorbar.ax.tick_params(labelsize=font_size_pt)
    figure.draw_without_rendering()  # final axes positions before labels are placed
    _label_panel(axes, panel, outlines, font_size_pt=font_size_pt)
    return _save(figure, format, dpi)


def render_sequence(
    panels: Sequence[OverlayPanel],
    *,
    scale: Scale = "log",
    vmin: float | None = None,
    vmax: float | None = None,
    ncols: int | None = None,
    title: str | None = None,
    panel_width_in: float = 3.0,
    dpi: int = 100,
    format: Format = "png",
    font_size_pt: float = 7.0,
    colormap: str = "jet",
) -> bytes:
    """Living Image's image-sequence layout: panels on one colour scale, one colour bar.

    Parameters
    ----------
    panels : sequence of OverlayPanel
        One animal or one arm across sessions, in the order to show (left → right, then the
        next row); every image must be in the same units.
    vmin, vmax : float, optional
        Default :func:`colour_range` of all panels' images.
    ncols : int, optional
        Panels per row (default all in one row up to 6).

    Raises
    ------
    ImagingError
        No panel, or panels in different units.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ImagingError("a sequence figure needs at least one panel")
    units = {p.image.units for p in panels}
    if len(units) != 1:
        raise ImagingError(f"panels in different units {sorted(units)} cannot share a scale")
    if vmin is None or vmax is None:
        auto_lo, auto_hi = colour_range([p.image for p in panels], scale=scale)
        vmin = auto_lo if vmin is None else vmin
        vmax = auto_hi if vmax is None else vmax
    norm = _norm(panels[0].image, scale, vmin, vmax)
    n = len(panels)
    ncols = max(1, min(ncols or min(n, 6), n))
    nrows = math.ceil(n / ncols)
    aspect = max(p.image.radiance.shape[0] / p.image.radiance.shape[1] for p in panels)
    figure = Figure(
        figsize=(panel_width_in * ncols + 1.0, panel_width_in * aspect * nrows + 0.6),
        dpi=dpi,
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    grid = figure.subplots(nrows, ncols, squeeze=False)
    drawn = []
    for k, axes in enumerate(grid.ravel()):
        if k >= n:
            axes.set_axis_off()
            continue
        drawn.append(
            (axes, *_draw_panel(axes, panels[k], norm, cmap=colormap, font_size_pt=font_size_pt))
        )
    colorbar = figure.colorbar(drawn[0][1], ax=grid.ravel().tolist(), fraction=0.03, pad=0.02)
    colorbar.set_label(_colour_bar_label(panels[0].image), fontsize=font_size_pt + 1)
    colorbar.ax.tick_params(labelsize=font_size_pt)
    if title:
        figure.suptitle(title, fontsize=font_size_pt + 2)
    figure.draw_without_rendering()  # constrained layout settles the axes first
    figure.set_layout_engine("none")  # labels must not move the axes afterwards
    for (axes, _, outlines), panel in zip(drawn, panels, strict=True):
        _label_panel(axes, panel, outlines, font_size_pt=font_size_pt)
    return _save(figure, format, dpi)
