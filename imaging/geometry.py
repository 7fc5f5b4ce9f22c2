"""ROI shapes and their pixel weight masks.

Coordinates
-----------
Every shape is defined in **un-binned sensor pixels** (``row``, ``col``), the origin at the
sensor's corner, so one ROI applies to the same tissue at any binning (Living Image stores
ROIs the same way). On an image binned by ``b`` the pixel with index ``i`` covers sensor
coordinates ``[i·b, (i+1)·b)``; its centre is at index ``s / b − 0.5`` for a sensor
coordinate ``s`` (checked on the reference folder, see ``design/domain/BLI.md``). Multiply
by ``sensor_pixel_cm`` for centimetres.

Angles are in degrees from the ``+col`` axis towards the ``+row`` axis (photutils' ``theta``
with ``x = col``, ``y = row``).

Weighting
---------
``center``: a pixel counts fully when its centre lies inside the shape (Living Image's rule).
``exact``: a pixel counts with the fraction of its area inside the shape (photutils'
``method="exact"``). Masks are computed on the shape's bounding box only, cut to the image
when its shape is given (``within``), so a huge ROI costs no more than the image. Axis-aligned
circles and ellipses get their exact weights in closed form row by row (whole-pixel runs plus
the pixels the boundary crosses, see ``_ellipse_runs``), which is also how
:func:`imaging.quantify` measures them without building a weight array.

Why one long module: every shape shares the same coordinate convention, bounding-box cut
and the exact-overlap helpers (polygon clipping, ellipse runs) at the bottom; a shape class
is short, and the helpers are used by several shapes and by :mod:`imaging.quantify`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np

from .errors import RoiError

__all__ = [
    "CircleRoi",
    "EllipseRoi",
    "MaskRoi",
    "PolygonRoi",
    "RectangleRoi",
    "Roi",
    "RoiMask",
    "WeightMethod",
    "roi_mask",
]

WeightMethod: TypeAlias = Literal["center", "exact"]


@dataclass(frozen=True, kw_only=True)
class RoiMask:
    """Weights of one ROI on its bounding box on an image of a given binning.

    Attributes
    ----------
    row0, col0 : int
        Image index of ``weights[0, 0]``; negative when the box, not cut to an image, starts
        beyond its first row or column.
    weights : ndarray, shape (box_rows, box_cols)
        Fraction of each pixel inside the shape, in [0, 1]: float64 for ``exact``, bool
        for ``center`` (inside or not).
    cut : bool
        The box was cut at the image's edge (``within``): part of the shape lies beyond it.
    """

    row0: int
    col0: int
    weights: np.ndarray = field(repr=False)
    cut: bool = False

    @property
    def slices(self) -> tuple[slice, slice]:
        """``image[mask.slices]`` is the part of the image under ``weights`` (for a mask cut
        to the image with ``within``)."""
        if self.row0 < 0 or self.col0 < 0:
            raise RoiError("this mask starts beyond the image; make it with within=image.shape")
        n_rows, n_cols = self.weights.shape
        return slice(self.row0, self.row0 + n_rows), slice(self.col0, self.col0 + n_cols)


Within: TypeAlias = tuple[int, int] | None


def _cut_box(r0: int, r1: int, c0: int, c1: int, within: Within) -> tuple[int, int, int, int, bool]:
    """The inclusive pixel box ``[r0, r1] × [c0, c1]`` cut to an image of shape ``within``,
    and whether anything was cut; a box off the image becomes empty (``r1 < r0``)."""
    if within is None:
        return r0, r1, c0, c1, False
    n_rows, n_cols = within
    cut = r0 < 0 or c0 < 0 or r1 >= n_rows or c1 >= n_cols
    r0, c0 = min(max(r0, 0), n_rows), min(max(c0, 0), n_cols)
    r1, c1 = max(min(r1, n_rows - 1), r0 - 1), max(min(c1, n_cols - 1), c0 - 1)
    return r0, r1, c0, c1, cut


def _index(value: float, binning: int) -> float:
    return value / binning - 0.5


@dataclass(frozen=True, kw_only=True)
class CircleRoi:
    """Circle; centre and radius in un-binned sensor pixels."""

    center_row: float
    center_col: float
    radius: float
    label: str = ""

    def __post_init__(self) -> None:
        _check_finite(self.label, self.center_row, self.center_col, self.radius)
        if self.radius <= 0:
            raise RoiError(f"ROI {self.label!r}: radius must be positive, got {self.radius}")

    @property
    def area_sensor_px(self) -> float:
        """Geometric area [un-binned sensor pixels²] = π r²."""
        return math.pi * self.radius**2

    def mask(
        self, binning: int, *, method: WeightMethod = "center", within: Within = None
    ) -> RoiMask:
        return _ellipse_mask(
            _index(self.center_row, binning),
            _index(self.center_col, binning),
            self.radius / binning,
            self.radius / binning,
            0.0,
            method,
            within,
        )

    def outline(self, binning: int, *, n: int = 128) -> np.ndarray:
        """Boundary points ``(n, 2)`` as ``(row, col)`` image indices."""
        return _ellipse_outline(
            self.center_row, self.center_col, self.radius, self.radius, 0.0, binning, n
        )


@dataclass(frozen=True, kw_only=True)
class EllipseRoi:
    """Ellipse; semi-axis ``semi_axis_col`` lies along ``+col`` before rotation."""

    center_row: float
    center_col: float
    semi_axis_col: float
    semi_axis_row: float
    angle_deg: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        _check_finite(
            self.label,
            self.center_row,
            self.center_col,
            self.semi_axis_col,
            self.semi_axis_row,
            self.angle_deg,
        )
        if self.semi_axis_col <= 0 or self.semi_axis_row <= 0:
            raise RoiError(f"ROI {self.label!r}: semi-axes must be positive")

    @property
    def area_sensor_px(self) -> float:
        """Geometric area = π a b."""
        return math.pi * self.semi_axis_col * self.semi_axis_row

    def mask(
        self, binning: int, *, method: WeightMethod = "center", within: Within = None
    ) -> RoiMask:
        return _ellipse_mask(
            _index(self.center_row, binning),
            _index(self.center_col, binning),
            self.semi_axis_col / binning,
            self.semi_axis_row / binning,
            math.radians(self.angle_deg),
            method,
            within,
        )

    def outline(self, binning: int, *, n: int = 128) -> np.ndarray:
        return _ellipse_outline(
            self.center_row,
            self.center_col,
            self.semi_axis_col,
            self.semi_axis_row,
            math.radians(self.angle_deg),
            binning,
            n,
        )


@dataclass(frozen=True, kw_only=True)
class RectangleRoi:
    """Rectangle; ``width`` along ``+col`` and ``height`` along ``+row`` before rotation."""

    center_row: float
    center_col: float
    width: float
    height: float
    angle_deg: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        _check_finite(
            self.label, self.center_row, self.center_col, self.width, self.height, self.angle_deg
        )
        if self.width <= 0 or self.height <= 0:
            raise RoiError(f"ROI {self.label!r}: width and height must be positive")

    @property
    def area_sensor_px(self) -> float:
        """Geometric area = w h."""
        return self.width * self.height

    def vertices(self) -> tuple[tuple[float, float], ...]:
        """Corners as ``(row, col)`` sensor coordinates."""
        t = math.radians(self.angle_deg)
        c, s = math.cos(t), math.sin(t)
        out = []
        for du, dv in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
            x = du * self.width * c - dv * self.height * s
            y = du * self.width * s + dv * self.height * c
            out.append((self.center_row + y, self.center_col + x))
        return tuple(out)

    def mask(
        self, binning: int, *, method: WeightMethod = "center", within: Within = None
    ) -> RoiMask:
        if method == "center":
            t = math.radians(self.angle_deg)
            r0, r1, c0, c1, cut = _cut_box(*_bbox_of(self.vertices(), binning), within)
            dy = np.arange(r0, r1 + 1)[:, None] - _index(self.center_row, binning)
            dx = np.arange(c0, c1 + 1)[None, :] - _index(self.center_col, binning)
            u = dx * math.cos(t) + dy * math.sin(t)
            v = -dx * math.sin(t) + dy * math.cos(t)
            inside = (np.abs(u) < self.width / binning / 2) & (
                np.abs(v) < self.height / binning / 2
            )
            return RoiMask(row0=r0, col0=c0, weights=inside, cut=cut)
        return _polygon_mask(self.vertices(), binning, method, within)

    def outline(self, binning: int, *, n: int = 0) -> np.ndarray:
        return _to_index(self.vertices(), binning)


@dataclass(frozen=True, kw_only=True)
class PolygonRoi:
    """Simple polygon; ``vertices`` are ``(row, col)`` sensor coordinates, any orientation."""

    vertices: tuple[tuple[float, float], ...]
    label: str = ""

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise RoiError(f"ROI {self.label!r}: a polygon needs at least 3 vertices")
        _check_finite(self.label, *[v for p in self.vertices for v in p])
        if abs(_signed_area(np.asarray(self.vertices, dtype=np.float64))) <= 0:
            raise RoiError(f"ROI {self.label!r}: polygon has zero area")

    @property
    def area_sensor_px(self) -> float:
        """Shoelace area."""
        return abs(_signed_area(np.asarray(self.vertices, dtype=np.float64)))

    def mask(
        self, binning: int, *, method: WeightMethod = "center", within: Within = None
    ) -> RoiMask:
        return _polygon_mask(self.vertices, binning, method, within)

    def outline(self, binning: int, *, n: int = 0) -> np.ndarray:
        return _to_index(self.vertices, binning)


@dataclass(frozen=True, kw_only=True)
class MaskRoi:
    """A set of pixels (e.g. an automatic contour) on an image of one binning.

    ``mask`` is a read-only boolean array whose ``[0, 0]`` is image index ``(row0, col0)``.
    It applies only to images of the same ``binning``. ``cut`` records that the shape it was
    made from reached past the image's edge (pixels there were left out).
    """

    row0: int
    col0: int
    mask_pixels: np.ndarray = field(repr=False)
    binning: int
    label: str = ""
    cut: bool = False

    @property
    def area_sensor_px(self) -> float:
        return float(np.count_nonzero(self.mask_pixels)) * self.binning**2

    def mask(
        self, binning: int, *, method: WeightMethod = "center", within: Within = None
    ) -> RoiMask:
        if binning != self.binning:
            raise RoiError(
                f"ROI {self.label!r} was traced on a binning-{self.binning} image and cannot "
                f"be applied to binning {binning}; trace it again on this image"
            )
        n_rows, n_cols = self.mask_pixels.shape
        r0, r1, c0, c1, _ = _cut_box(
            self.row0, self.row0 + n_rows - 1, self.col0, self.col0 + n_cols - 1, within
        )
        pixels = self.mask_pixels[
            r0 - self.row0 : r1 + 1 - self.row0, c0 - self.col0 : c1 + 1 - self.col0
        ]
        cut = self.cut or np.count_nonzero(pixels) < np.count_nonzero(self.mask_pixels)
        weights = pixels.astype(np.float64) if method == "exact" else pixels
        return RoiMask(row0=r0, col0=c0, weights=weights, cut=bool(cut))

    def outline(self, binning: int, *, n: int = 0) -> np.ndarray:
        rows, cols = np.nonzero(self.mask_pixels)
        return np.column_stack([rows + self.row0, cols + self.col0]).astype(np.float64)


Roi: TypeAlias = CircleRoi | EllipseRoi | RectangleRoi | PolygonRoi | MaskRoi


def roi_mask(
    roi: Roi, binning: int, *, method: WeightMethod = "center", within: Within = None
) -> RoiMask:
    """Weight mask of ``roi`` on an image binned by ``binning`` (bounding box only).

    With ``within`` (the image's ``(rows, cols)``) the box is cut to the image: weights are
    computed for image pixels only and ``RoiMask.cut`` says whether the shape reaches beyond.
    """
    if method not in ("center", "exact"):
        raise RoiError(f"unknown weighting method {method!r}; use 'center' or 'exact'")
    if binning < 1 or int(binning) != binning:
        raise RoiError(f"binning must be a positive integer, got {binning}")
    return roi.mask(int(binning), method=method, within=within)


def _check_finite(label: str, *values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise RoiError(f"ROI {label!r}: coordinates must be finite numbers")


def _to_index(vertices: tuple[tuple[float, float], ...], binning: int) -> np.ndarray:
    return np.asarray(vertices, dtype=np.float64) / binning - 0.5


#: Pixels: a shape reaching less than this past a pixel's edge (rounding, e.g. in a rotated
#: rectangle's corners) does not get the pixel beyond into its box (its share there ≤ 1e-9).
_EDGE_SLACK = 1e-9


def _first_pixel(lowest: float) -> int:
    """Index of the first pixel a shape reaching down to index ``lowest`` covers."""
    return math.floor(lowest + 0.5 + _EDGE_SLACK)


def _last_pixel(highest: float) -> int:
    return math.ceil(highest - 0.5 - _EDGE_SLACK)


def _bbox_of(vertices: tuple[tuple[float, float], ...], binning: int) -> tuple[int, int, int, int]:
    idx = _to_index(vertices, binning)
    r0, r1 = _first_pixel(idx[:, 0].min()), _last_pixel(idx[:, 0].max())
    c0, c1 = _first_pixel(idx[:, 1].min()), _last_pixel(idx[:, 1].max())
    return r0, max(r1, r0), c0, max(c1, c0)


def _signed_area(rc: np.ndarray) -> float:
    y, x = rc[:, 0], rc[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _ellipse_outline(
    cr: float, cc: float, a: float, b: float, t: float, binning: int, n: int
) -> np.ndarray:
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x = a * np.cos(phi) * math.cos(t) - b * np.sin(phi) * math.sin(t)
    y = a * np.cos(phi) * math.sin(t) + b * np.sin(phi) * math.cos(t)
    return np.column_stack([(cr + y) / binning - 0.5, (cc + x) / binning - 0.5])


def _ellipse_mask(
    cy: float, cx: float, a: float, b: float, theta: float, method: str, within: Within
) -> RoiMask:
    """Ellipse centred at index ``(cy, cx)`` with semi-axes ``a`` (col) and ``b`` (row)."""
    c, s = math.cos(theta), math.sin(theta)
    half_col = math.hypot(a * c, b * s)
    half_row = math.hypot(a * s, b * c)
    full_r0, r1 = _first_pixel(cy - half_row), _last_pixel(cy + half_row)
    c0, c1 = _first_pixel(cx - half_col), _last_pixel(cx + half_col)
    r1, c1 = max(r1, full_r0), max(c1, c0)
    r0, r1, c0, c1, cut = _cut_box(full_r0, r1, c0, c1, within)
    if method == "exact" and s == 0.0:
        return _axis_ellipse_exact_mask(cy, cx, a, b, r0, r1, c0, c1, cut)
    dy = (np.arange(r0, r1 + 1, dtype=np.float64) - cy)[:, None]
    dx = (np.arange(c0, c1 + 1, dtype=np.float64) - cx)[None, :]
    if s == 0.0:  # axis-aligned (all circles): one 2-D operation instead of six
        rho2 = np.add.outer((dy[:, 0] / b) ** 2, (dx[0] / a) ** 2)
    else:
        u = (dx * c + dy * s) / a
        v = (-dx * s + dy * c) / b
        rho2 = u * u + v * v
    if method == "center":
        return RoiMask(row0=r0, col0=c0, weights=rho2 < 1.0, cut=cut)
    # Pixels farther than half a diagonal (in the unit-circle frame) from the boundary are
    # fully in or out; only the ring in between needs the exact overlap.
    h = math.sqrt(0.5) / min(a, b)
    inner2 = (1.0 - h) ** 2 if h < 1.0 else -1.0
    weights = (rho2 <= inner2).astype(np.float64)
    ring = np.nonzero((rho2 > inner2) & (rho2 < (1.0 + h) ** 2))
    if ring[0].size:
        py = dy[ring[0], 0]
        px = dx[0, ring[1]]
        weights[ring] = _pixel_ellipse_overlap(py, px, a, b, c, s)
    return RoiMask(row0=r0, col0=c0, weights=weights, cut=cut)


def _axis_ellipse_exact_mask(
    cy: float,
    cx: float,
    a: float,
    b: float,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    cut: bool,
) -> RoiMask:
    """Dense ``exact`` weights of an axis-aligned ellipse from :func:`_ellipse_runs`, on the
    box ``[r0, r1] × [c0, c1]`` (its bounding box, maybe cut)."""
    runs_rows = math.ceil(cy + b - 0.5) - math.floor(cy - b + 0.5) + 1
    runs = _ellipse_runs(
        np.array([cy]),
        np.array([cx]),
        np.array([a]),
        np.array([b]),
        n_rows=runs_rows,
        method="exact",
    )
    n_rows, n_cols = r1 - r0 + 1, c1 - c0 + 1
    rows = slice(r0 - int(runs.row0[0]), r0 - int(runs.row0[0]) + n_rows)
    lo = np.clip(runs.run_lo[0, rows] - c0, 0, n_cols)
    hi = np.clip(runs.run_hi[0, rows] - c0, lo, n_cols)
    lengths = np.stack([lo, hi - lo, n_cols - hi], axis=-1).ravel()
    weights = np.repeat(np.tile([0.0, 1.0, 0.0], n_rows), lengths).reshape(n_rows, n_cols)
    part_row, part_col = runs.part_row - r0, runs.part_col - c0
    on_box = (part_row >= 0) & (part_row < n_rows) & (part_col >= 0) & (part_col < n_cols)
    weights[part_row[on_box], part_col[on_box]] = runs.part_weight[on_box]
    return RoiMask(row0=r0, col0=c0, weights=weights, cut=cut)


def _pixel_ellipse_overlap(
    py: np.ndarray, px: np.ndarray, a: float, b: float, c: float, s: float
) -> np.ndarray:
    """Exact area of unit pixels centred at offsets ``(py, px)`` inside the ellipse.

    The ellipse is mapped to the unit circle (rotation, then scaling), which maps each pixel
    to a parallelogram; the overlap is the sum over its edges of the signed area of
    circle ∩ triangle(origin, edge), times ``a b``.
    """
    ox = np.array([-0.5, 0.5, 0.5, -0.5])[:, None]
    oy = np.array([-0.5, -0.5, 0.5, 0.5])[:, None]
    x = px[None, :] + ox
    y = py[None, :] + oy
    u = (x * c + y * s) / a
    v = (-x * s + y * c) / b
    # the four edges of every pixel at once: corner k → corner k + 1
    areas = _edge_area(u, v, np.roll(u, -1, axis=0), np.roll(v, -1, axis=0))
    return np.clip(areas.sum(axis=0) * (a * b), 0.0, 1.0)


def _edge_area(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Signed area of unit circle ∩ triangle(0, P1, P2)."""
    dx, dy = x2 - x1, y2 - y1
    qa = dx * dx + dy * dy
    qb = x1 * dx + y1 * dy
    qc = x1 * x1 + y1 * y1 - 1.0
    disc = qb * qb - qa * qc
    ok = (disc > 0) & (qa > 0)
    root = np.sqrt(np.where(ok, disc, 0.0))
    safe_qa = np.where(qa > 0, qa, 1.0)
    t1 = np.where(ok, np.clip((-qb - root) / safe_qa, 0.0, 1.0), 0.0)
    t2 = np.where(ok, np.clip((-qb + root) / safe_qa, 0.0, 1.0), 0.0)
    m1x, m1y = x1 + t1 * dx, y1 + t1 * dy
    m2x, m2y = x1 + t2 * dx, y1 + t2 * dy
    sector1 = np.arctan2(x1 * m1y - y1 * m1x, x1 * m1x + y1 * m1y)
    chord = m1x * m2y - m1y * m2x
    sector2 = np.arctan2(m2x * y2 - m2y * x2, m2x * x2 + m2y * y2)
    return 0.5 * (sector1 + chord + sector2)


def _clip_polygon(points: np.ndarray, axis: int, limit: float, keep_below: bool) -> np.ndarray:
    """Sutherland–Hodgman: the part of polygon ``points`` ``(n, 2)`` on one side of the line
    ``points[:, axis] = limit``. A concave polygon may come back with edges running along the
    line and back; they cancel in any area integral."""
    if len(points) == 0:
        return points
    previous = np.roll(points, 1, axis=0)
    side = points[:, axis] - limit
    before = previous[:, axis] - limit
    inside = side <= 0 if keep_below else side >= 0
    crossing = inside != np.roll(inside, 1)
    t = np.divide(-before, side - before, out=np.zeros_like(side), where=crossing)
    hit = previous + t[:, None] * (points - previous)
    hit[:, axis] = limit
    # per edge, in order: where it crosses the line, then its end if that is kept
    return np.stack([hit, points], axis=1)[np.stack([crossing, inside], axis=1)]


def _polygon_mask(
    vertices: tuple[tuple[float, float], ...], binning: int, method: str, within: Within
) -> RoiMask:
    idx = _to_index(vertices, binning)
    orientation = _signed_area(idx)
    r0, r1, c0, c1, cut = _cut_box(*_bbox_of(vertices, binning), within)
    if cut and method == "exact":  # only the part over the image: corner areas stay small
        for axis, limit, keep_below in (
            (0, r0 - 0.5, False),
            (0, r1 + 0.5, True),
            (1, c0 - 0.5, False),
            (1, c1 + 0.5, True),
        ):
            idx = _clip_polygon(idx, axis, limit, keep_below)
    ys, xs = idx[:, 0], idx[:, 1]
    if method == "center":
        rows = np.arange(r0, r1 + 1, dtype=np.float64)[:, None]
        cols = np.arange(c0, c1 + 1, dtype=np.float64)[None, :]
        inside = np.zeros((rows.size, cols.size), dtype=bool)
        for k in range(len(xs)):
            ya, xa = ys[k], xs[k]
            yb, xb = ys[(k + 1) % len(xs)], xs[(k + 1) % len(xs)]
            if ya == yb:
                continue
            crosses = (ya > rows) != (yb > rows)
            x_at = xa + (rows - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (cols < x_at)
        return RoiMask(row0=r0, col0=c0, weights=inside, cut=cut)
    # Exact: A(c, d) = area of polygon ∩ {x ≤ c, y ≤ d} = Σ_edges ∫_{y ≤ d} min(x − c, 0) dy
    # (Green's theorem; clipping edges on y = d carry no dy). Pixel areas are its 2-D
    # differences on the grid of pixel corners.
    xc = np.arange(c0, c1 + 2, dtype=np.float64)[None, :] - 0.5
    yd = np.arange(r0, r1 + 2, dtype=np.float64)[:, None] - 0.5
    corner_area = np.zeros((yd.size, xc.size))
    n = len(xs)
    for k in range(n):
        ya, xa = ys[k], xs[k]
        yb, xb = ys[(k + 1) % n], xs[(k + 1) % n]
        if ya == yb:
            continue
        sign = 1.0 if yb > ya else -1.0
        lo, hi = min(ya, yb), max(ya, yb)
        slope = (xb - xa) / (yb - ya)
        top = np.clip(yd, lo, hi)
        length = top - lo
        u_lo = (xa + (lo - ya) * slope) - xc
        u_hi = (xa + (top - ya) * slope) - xc
        neg = np.minimum(u_lo, u_hi)
        pos = np.maximum(u_lo, u_hi)
        span = np.where(pos > neg, pos - neg, 1.0)
        mean_neg = np.where(
            pos <= 0, 0.5 * (u_lo + u_hi), np.where(neg >= 0, 0.0, -0.5 * neg * neg / span)
        )
        corner_area += sign * length * mean_neg
    weights = np.diff(np.diff(corner_area, axis=0), axis=1)
    if orientation < 0:
        weights = -weights
    # differences of large corner areas leave rounding dust on pixels the polygon misses; a
    # pixel of weight > 0 counts for min, max and saturation, so the dust is swept to 0
    dust = 64 * np.finfo(np.float64).eps * max(1.0, float(np.abs(corner_area).max(initial=0.0)))
    weights[weights < dust] = 0.0
    return RoiMask(row0=r0, col0=c0, weights=np.minimum(weights, 1.0), cut=cut)


@dataclass(frozen=True, kw_only=True)
class _EllipseRuns:
    """Weights of axis-aligned ellipses as row runs of whole pixels plus partial pixels.

    For ellipse ``k`` and box row ``i`` (image row ``row0[k] + i``) the pixels of columns
    ``run_lo[k, i] ≤ col < run_hi[k, i]`` have weight 1. The other pixels of non-zero weight
    (``exact`` only: those the boundary crosses) are listed in ``part_*``, grouped by
    ellipse: ellipse ``k`` owns entries ``part_start[k] : part_start[k + 1]``.

    Attributes
    ----------
    row0 : ndarray of int64, shape (K,)
    run_lo, run_hi : ndarray of int64, shape (K, n_rows)
        Unclipped image columns; ``run_lo == run_hi`` for an empty run.
    part_row, part_col : ndarray of int64, shape (P,)
        Image indices (unclipped) of the partial pixels.
    part_weight : ndarray of float64, shape (P,)
        Fraction of each partial pixel inside the ellipse, in [0, 1].
    part_start : ndarray of int64, shape (K + 1,)
    """

    row0: np.ndarray
    run_lo: np.ndarray
    run_hi: np.ndarray
    part_row: np.ndarray
    part_col: np.ndarray
    part_weight: np.ndarray
    part_start: np.ndarray


def _ellipse_runs(
    center_row: np.ndarray,
    center_col: np.ndarray,
    semi_col: np.ndarray,
    semi_row: np.ndarray,
    *,
    n_rows: int,
    method: WeightMethod,
) -> _EllipseRuns:
    """Row runs and partial pixels of ``K`` axis-aligned ellipses at once.

    Parameters
    ----------
    center_row, center_col : ndarray, shape (K,)
        Centres as image indices (pixel ``i`` covers ``[i − 0.5, i + 0.5]``).
    semi_col, semi_row : ndarray, shape (K,)
        Semi-axes along ``col`` and ``row`` [image pixels].
    n_rows : int
        Rows per box, at least ``ceil(cy + b − 0.5) − floor(cy − b + 0.5) + 1`` for every
        ellipse (rows past an ellipse's extent get empty runs).
    method : {"center", "exact"}

    Notes
    -----
    ``exact``: scaling columns by ``b / a`` maps the ellipse to the disk of radius ``b``.
    With ``F(t) = ∫₀ᵗ √(b² − s²) ds = (t √(b² − t²) + b² asin(t / b)) / 2`` the area of the
    disk ∩ {X ≤ u, Y ≤ v} is, up to terms of ``u`` alone or ``v`` alone (which cancel in
    the inclusion–exclusion over a pixel's corners),
    ``A(u, v) = sgn(v) (F(u) − F(u_c)) + v u_c`` with ``u_c = clip(u, ±√(b² − v²))``.
    A row strip ``[v0, v1]`` thus has the cumulative area ``G(u) = A(u, v1) − A(u, v0)``
    and a pixel's weight is ``(a / b) (G(u_right) − G(u_left))``, evaluated only on the
    pixels the boundary crosses. A pixel is whole when its four corners are inside
    (``|x − cx| ≤`` the smaller chord half-width of its two row edges), has positive
    weight when it meets the open chord of the larger one.
    """
    cy = np.asarray(center_row, dtype=np.float64)
    cx = np.asarray(center_col, dtype=np.float64)
    a = np.asarray(semi_col, dtype=np.float64)
    b = np.asarray(semi_row, dtype=np.float64)
    n_ell = cy.size
    row0 = np.floor(cy - b + 0.5)
    if method == "center":
        dy = (row0[:, None] + np.arange(n_rows, dtype=np.float64)) - cy[:, None]
        ry2 = (dy / b[:, None]) ** 2
        half = a[:, None] * np.sqrt(np.maximum(1.0 - ry2, 0.0))
        ccol = cx[:, None]
        lo = np.floor(ccol - half) + 1.0
        hi = np.ceil(ccol + half)
        # the same test as a dense mask, ``(dy / b)² + (dx / a)² < 1``, decides the ends
        acol = a[:, None]
        lo = np.where(ry2 + ((lo - 1.0 - ccol) / acol) ** 2 < 1.0, lo - 1.0, lo)
        lo = np.where(ry2 + ((lo - ccol) / acol) ** 2 < 1.0, lo, lo + 1.0)
        hi = np.where(ry2 + ((hi - ccol) / acol) ** 2 < 1.0, hi + 1.0, hi)
        hi = np.where(ry2 + ((hi - 1.0 - ccol) / acol) ** 2 < 1.0, hi, hi - 1.0)
        hi = np.maximum(hi, lo)
        empty = np.zeros(0, dtype=np.int64)
        return _EllipseRuns(
            row0=row0.astype(np.int64),
            run_lo=lo.astype(np.int64),
            run_hi=hi.astype(np.int64),
            part_row=empty,
            part_col=empty,
            part_weight=np.zeros(0),
            part_start=np.zeros(n_ell + 1, dtype=np.int64),
        )
    bb = b[:, None]
    scale = (a / b)[:, None]
    ccol = cx[:, None]
    # row edges relative to the centre, clipped to the disk, and the half-chords there
    edge = np.clip((row0 - 0.5 - cy)[:, None] + np.arange(n_rows + 1, dtype=np.float64), -bb, bb)
    chord = np.sqrt((bb - edge) * (bb + edge))
    f_chord = 0.5 * (chord * np.abs(edge) + (bb * bb) * np.arcsin(chord / bb))
    v0, v1 = edge[:, :-1], edge[:, 1:]
    q0, q1 = chord[:, :-1], chord[:, 1:]
    h_min = np.minimum(q0, q1) * scale
    h_max = np.where((v0 < 0) & (v1 > 0), bb, np.maximum(q0, q1)) * scale
    lo = np.ceil(ccol - h_min + 0.5)
    hi = np.floor(ccol + h_min - 0.5) + 1.0
    s_lo = np.floor(ccol - h_max - 0.5) + 1.0
    s_hi = np.where(h_max > 0, np.ceil(ccol + h_max + 0.5), s_lo)  # rows past the extent
    no_run = hi <= lo
    split = np.clip(lo, s_lo, s_hi)
    lo = np.where(no_run, split, lo)
    hi = np.where(no_run, split, hi)
    # partial segments [s_lo, lo) and [hi, s_hi) of every row, interleaved; a segment of
    # n pixels has n + 1 corners
    # (numpy calls cost more than their arithmetic here: few calls, methods over wrappers)
    seg_first = np.empty((n_ell, n_rows, 2))
    seg_first[:, :, 0] = s_lo
    seg_first[:, :, 1] = hi
    seg_end = np.empty((n_ell, n_rows, 2))
    seg_end[:, :, 0] = lo
    seg_end[:, :, 1] = s_hi
    seg_len = (seg_end - seg_first).astype(np.int64).ravel()
    n_seg = seg_len.size
    corners = seg_len + 1
    corner_start = corners.cumsum() - corners
    # the offset of a corner in its segment is an exact integer: u does not depend on the
    # other ellipses of the call
    corner_seg = np.arange(n_seg).repeat(corners)
    offset = np.arange(corner_seg.size) - corner_start.take(corner_seg)
    u = (seg_first - (ccol + 0.5)[:, :, None]).ravel().take(corner_seg) + offset
    # per-corner constants of its row: edge k·(n_rows + 1) + i above row i of ellipse k
    seg_row = np.arange(n_seg) // 2
    upper = (seg_row + seg_row // n_rows).take(corner_seg)
    lower = upper + 1
    edge, chord, f_chord = edge.ravel(), chord.ravel(), f_chord.ravel()
    cv0, cv1 = edge.take(upper), edge.take(lower)
    cq0, cq1 = chord.take(upper), chord.take(lower)
    cf0, cf1 = f_chord.take(upper), f_chord.take(lower)
    cb: float | np.ndarray
    cs: float | np.ndarray
    if len(set(a.tolist())) == 1 and len(set(b.tolist())) == 1:  # common: one ROI shape
        cb, cs = float(b[0]), float(a[0] / b[0])
    else:
        ell = upper // (n_rows + 1)
        cb, cs = b.take(ell), (a / b).take(ell)
    t = np.abs(u)
    if not isinstance(cs, float) or cs != 1.0:
        t /= cs
    np.minimum(t, cb, out=t)
    o0 = (t >= cq0) * np.sign(cv0)
    o1 = (t >= cq1) * np.sign(cv1)
    coef: np.ndarray = o1 - o0
    f_t = np.zeros(t.size)
    need = (o1 != o0).nonzero()[0]
    tn = t[need]
    bn = cb if isinstance(cb, float) else cb[need]
    f_t[need] = 0.5 * (tn * np.sqrt((bn - tn) * (bn + tn)) + (bn * bn) * np.arcsin(tn / bn))
    # G(u) / s: g1·o1·(F(t) − F(q1)) − g0·o0·(F(t) − F(q0)) + v1 min(t, q1) − v0 min(t, q0)
    cum = coef * f_t - o1 * cf1 + o0 * cf0 + cv1 * np.minimum(t, cq1) - cv0 * np.minimum(t, cq0)
    cum *= np.sign(u)
    if not isinstance(cs, float) or cs != 1.0:
        cum *= cs
    n_total = int(seg_len.sum())
    pixel_seg = np.arange(n_seg).repeat(seg_len)
    pixel = np.arange(n_total)
    weight = (cum[1:] - cum[:-1]).take(pixel + pixel_seg)
    np.clip(weight, 0.0, 1.0, out=weight)
    pixel_start = seg_len.cumsum() - seg_len
    col = (seg_first.ravel().astype(np.int64) - pixel_start).take(pixel_seg) + pixel
    row = (row0.astype(np.int64)[:, None] + np.arange(n_rows)).ravel().take(pixel_seg // 2)
    part_start = np.zeros(n_ell + 1, dtype=np.int64)
    np.cumsum(seg_len.reshape(n_ell, -1).sum(axis=1), out=part_start[1:])
    return _EllipseRuns(
        row0=row0.astype(np.int64),
        run_lo=lo.astype(np.int64),
        run_hi=hi.astype(np.int64),
        part_row=row,
        part_col=col,
        part_weight=weight,
        part_start=part_start,
    )
