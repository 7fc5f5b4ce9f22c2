"""ROI geometry as stored in the database (JSON, un-binned sensor pixels) and as ``imaging``
objects. A ``union`` joins parts that form one site (e.g. both scapulae)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from imaging import (
    CircleRoi,
    EllipseRoi,
    ImagingError,
    MaskRoi,
    PolygonRoi,
    RectangleRoi,
    Roi,
    roi_mask,
)

_TYPES: dict[str, type] = {
    "circle": CircleRoi,
    "ellipse": EllipseRoi,
    "rectangle": RectangleRoi,
    "polygon": PolygonRoi,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


@dataclasses.dataclass(frozen=True)
class UnionRoi:
    """Several shapes measured as one region (pixels in any part count once)."""

    parts: tuple[Roi, ...]
    label: str = ""


def to_json(roi: Roi | UnionRoi) -> dict[str, Any]:
    if isinstance(roi, UnionRoi):
        return {"type": "union", "parts": [to_json(p) for p in roi.parts]}
    name = _NAMES.get(type(roi))
    if name is None:
        raise ValueError(f"{type(roi).__name__} ROIs are not stored")
    fields = {f.name: getattr(roi, f.name) for f in dataclasses.fields(roi) if f.name != "label"}
    if name == "polygon":
        fields["vertices"] = [list(v) for v in roi.vertices]  # type: ignore[union-attr]
    return {"type": name, **fields}


# Sanity bounds, generous for any camera sensor (an IVIS Spectrum's is 2048 pixels across);
# memory does not depend on them (masks are cut to the image).
COORDINATE_RANGE_PX = (-4096.0, 8192.0)
MAX_SIZE_PX = 4096.0
MAX_VERTICES = 1000
MAX_UNION_PARTS = 20
_COORDINATES = ("center_row", "center_col")
_SIZES = ("radius", "semi_axis_row", "semi_axis_col", "width", "height")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_numbers(kind: str, geometry: dict[str, Any]) -> None:
    low, high = COORDINATE_RANGE_PX
    for name in _COORDINATES:
        if name in geometry and not low <= _number(name, geometry[name]) <= high:
            raise ValueError(f"{name} must lie between {low:g} and {high:g} sensor pixels")
    for name in _SIZES:
        if name in geometry and not 0 < _number(name, geometry[name]) <= MAX_SIZE_PX:
            raise ValueError(f"{name} must be > 0 and at most {MAX_SIZE_PX:g} sensor pixels")
    if "angle_deg" in geometry and abs(_number("angle_deg", geometry["angle_deg"])) > 360:
        raise ValueError("angle_deg must lie between -360 and 360")
    if kind == "polygon":
        vertices = geometry.get("vertices")
        if not isinstance(vertices, list) or not 3 <= len(vertices) <= MAX_VERTICES:
            raise ValueError(f"a polygon needs 3 to {MAX_VERTICES} vertices as [row, col] pairs")
        for vertex in vertices:
            if not isinstance(vertex, list | tuple) or len(vertex) != 2:
                raise ValueError("each polygon vertex is a [row, col] pair")
            for name, value in zip(("row", "col"), vertex, strict=True):
                if not low <= _number(f"vertex {name}", value) <= high:
                    raise ValueError(f"polygon vertices must lie between {low:g} and {high:g}")


def validate(geometry: Any) -> Roi | UnionRoi:
    """The ROI a JSON geometry describes, or ValueError saying what is wrong with it."""
    if not isinstance(geometry, dict):
        raise ValueError("an ROI geometry is a JSON object with a 'type'")
    if geometry.get("type") == "union":
        parts = geometry.get("parts")
        if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_UNION_PARTS:
            raise ValueError(f"a union needs 1 to {MAX_UNION_PARTS} parts")
        if any(isinstance(p, dict) and p.get("type") == "union" for p in parts):
            raise ValueError("a union's parts cannot be unions")
        return UnionRoi(parts=tuple(validate(p) for p in parts))  # type: ignore[misc]
    _check_fields(geometry)
    _check_numbers(str(geometry.get("type")), geometry)
    try:
        return from_json(geometry)
    except ImagingError as exc:
        raise ValueError(str(exc)) from None


def _check_fields(geometry: dict[str, Any]) -> None:
    """Unknown and missing fields named in words, never as a Python call's error."""
    kind = geometry.get("type")
    cls = _TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown ROI type {kind!r}; use one of {', '.join(_TYPES)}, union")
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name != "label"]
    allowed = {f.name for f in fields}
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    unknown = sorted(set(geometry) - allowed - {"type"})
    missing = [name for name in required if name not in geometry]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"{', '.join(missing)} missing")
        if unknown:
            problems.append(f"{', '.join(repr(u) for u in unknown)} is not one of its fields")
        raise ValueError(
            f"a {kind} takes {', '.join(f.name for f in fields)}; " + " and ".join(problems)
        )


def from_json(geometry: dict[str, Any], *, label: str = "") -> Roi | UnionRoi:
    kind = geometry.get("type")
    if kind == "union":
        return UnionRoi(parts=tuple(from_json(p) for p in geometry["parts"]), label=label)  # type: ignore[misc]
    cls = _TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown ROI type {kind!r}; use one of {', '.join(_TYPES)}")
    fields = {k: v for k, v in geometry.items() if k != "type"}
    if kind == "polygon":
        fields["vertices"] = tuple(tuple(v) for v in fields["vertices"])
    return cls(**fields, label=label)


def for_image(roi: Roi | UnionRoi, binning: int, shape: tuple[int, int]) -> Roi:
    """An ``imaging`` ROI for an image of this binning and shape (a union becomes one pixel
    mask, cut to the image)."""
    if not isinstance(roi, UnionRoi):
        return roi
    masks = [roi_mask(part, binning, within=shape) for part in roi.parts]
    row0 = min(m.row0 for m in masks)
    col0 = min(m.col0 for m in masks)
    row1 = max(m.row0 + m.weights.shape[0] for m in masks)
    col1 = max(m.col0 + m.weights.shape[1] for m in masks)
    pixels = np.zeros((row1 - row0, col1 - col0), dtype=bool)
    for m in masks:
        r, c = m.row0 - row0, m.col0 - col0
        pixels[r : r + m.weights.shape[0], c : c + m.weights.shape[1]] |= m.weights > 0
    pixels.flags.writeable = False
    return MaskRoi(
        row0=row0,
        col0=col0,
        mask_pixels=pixels,
        binning=binning,
        label=roi.label,
        cut=any(m.cut for m in masks),
    )
