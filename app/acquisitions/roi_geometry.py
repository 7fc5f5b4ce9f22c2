"""ROI geometry as stored in the database (JSON, un-binned sensor pixels) and as ``imaging``
objects. A ``union`` joins parts that form one site (e.g. both scapulae)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from imaging import (
    CircleRoi,
    EllipseRoi,
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


def for_image(roi: Roi | UnionRoi, binning: int) -> Roi:
    """An ``imaging`` ROI for an image of this binning (a union becomes one pixel mask)."""
    if not isinstance(roi, UnionRoi):
        return roi
    masks = [roi_mask(part, binning) for part in roi.parts]
    row0 = min(m.row0 for m in masks)
    col0 = min(m.col0 for m in masks)
    row1 = max(m.row0 + m.weights.shape[0] for m in masks)
    col1 = max(m.col0 + m.weights.shape[1] for m in masks)
    pixels = np.zeros((row1 - row0, col1 - col0), dtype=bool)
    for m in masks:
        r, c = m.row0 - row0, m.col0 - col0
        pixels[r : r + m.weights.shape[0], c : c + m.weights.shape[1]] |= m.weights > 0
    pixels.flags.writeable = False
    return MaskRoi(row0=row0, col0=col0, mask_pixels=pixels, binning=binning, label=roi.label)
