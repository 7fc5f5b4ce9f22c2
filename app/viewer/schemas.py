"""Responses of the image viewer routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ScaleRange(BaseModel):
    min: float = Field(description="Lowest value with a colour; below it is transparent.")
    max: float = Field(description="Value of the top colour.")


class DefaultScales(BaseModel):
    log: ScaleRange = Field(
        description="1/50 of the 99.9th percentile of positive pixels up to that percentile "
        "(the overlay PNG's default)."
    )
    linear: ScaleRange = Field(description="The median pixel up to the maximum.")


class PhotographLayer(BaseModel):
    rows: int
    cols: int
    binning: int = Field(description="Sensor pixels per photograph pixel along each axis.")


class RoiVersion(BaseModel):
    roi_id: uuid.UUID
    animal: str | None = Field(description="Ear tag of the animal the ROI belongs to.")
    site: str
    label: str | None
    source: str = Field(description="living_image, auto (placed by osteolux) or client.")
    geometry: dict[str, Any] = Field(
        description="Un-binned sensor pixels (row, col), as accepted by POST …/rois."
    )
    is_current: bool = Field(description="False once superseded by a correction or retired.")
    supersedes_id: uuid.UUID | None = Field(description="The version this one corrected.")
    reason: str | None = Field(description="Why this version was made (or why it was retired).")
    created_at: datetime


class ImageRead(BaseModel):
    """The luminescent image of an acquisition in sensor coordinates, and its current ROIs."""

    rows: int = Field(description="Rows of the binned radiance image.")
    cols: int
    binning: int = Field(description="Sensor pixels per image pixel along each axis.")
    sensor_rows: int = Field(description="rows × binning: the field in sensor pixels.")
    sensor_cols: int
    sensor_pixel_cm: float | None = Field(description="Side of one un-binned sensor pixel [cm].")
    units: str = Field(description="Units of the radiance layer (p/s/cm²/sr when calibrated).")
    calibrated: bool
    photograph: PhotographLayer | None
    scale: DefaultScales
    rois: list[RoiVersion] = Field(description="Current ROIs in drawing order.")
