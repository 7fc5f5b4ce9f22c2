"""Request and response bodies for drawing, correcting and retiring ROIs and for
requantification."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field

from app.models import Site
from app.rois import geometry as roi_geometry
from app.schemas import InputModel, LongText, ShortText, UpdateModel

_GEOMETRY_DOC = (
    "Un-binned sensor pixels (row, col), as Living Image's ROI lines: "
    '{"type": "circle", "center_row": 424.3, "center_col": 225.9, "radius": 112.9}; also '
    "ellipse (semi_axis_row, semi_axis_col, angle_deg), rectangle (width, height, angle_deg), "
    "polygon (vertices: [[row, col], …]) and union (parts: […])."
)


def _check_geometry(value: dict[str, Any]) -> dict[str, Any]:
    try:
        roi_geometry.validate(value)
    except ValueError as exc:
        raise ValueError(f"invalid ROI geometry: {exc}") from None
    return value


Geometry = Annotated[
    dict[str, Any], AfterValidator(_check_geometry), Field(description=_GEOMETRY_DOC)
]


class RoiCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "animal": "3467",
                    "site": "left_hindlimb",
                    "label": "3467 left femur",
                    "geometry": {
                        "type": "circle",
                        "center_row": 1500,
                        "center_col": 700,
                        "radius": 80,
                    },
                    "reason": "femur lesion visible from day 21",
                }
            ]
        }
    )

    animal: ShortText | None = Field(
        default=None, description="Identifier of an animal in the field."
    )
    site: Site
    label: ShortText | None = None
    geometry: Geometry
    reason: LongText | None = None


class RoiUpdate(UpdateModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "geometry": {
                        "type": "circle",
                        "center_row": 430,
                        "center_col": 230,
                        "radius": 100,
                    },
                    "reason": "ROI 1 also covered the neighbour's tail",
                }
            ]
        }
    )
    not_nullable: ClassVar[frozenset[str]] = frozenset({"site", "geometry", "reason"})

    animal: ShortText | None = None
    site: Site | None = None
    label: ShortText | None = None
    geometry: Geometry | None = None
    reason: LongText = Field(
        min_length=3, description="Why the ROI changes (kept with its history)."
    )


class RoiRetire(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "drawn on the wrong mouse"}]}
    )

    reason: LongText = Field(min_length=3, description="Why the ROI no longer counts.")
