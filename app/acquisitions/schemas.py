"""Response bodies for acquisitions and their measurements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AcquisitionAnimalRead(BaseModel):
    position: int = Field(description="0 = leftmost mouse in the field.")
    animal_id: uuid.UUID
    identifier: str


class MeasurementRead(BaseModel):
    measurement_id: uuid.UUID
    roi_id: uuid.UUID
    animal: str | None
    site: str
    label: str | None
    roi_source: str
    total_flux_ps: float | None
    radiance_mean: float | None
    radiance_std: float | None
    radiance_min: float | None
    radiance_max: float | None
    area_cm2: float | None
    saturated_pixels: int
    units: str
    flags: list[str]
    method: str


class AcquisitionRead(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    view: str
    click_number: str | None
    exposure_s: float | None
    binning: int | None
    f_number: float | None
    fov_cm: float | None
    units: str
    sha256: str = Field(description="SHA-256 of the uploaded file, kept unchanged.")
    already_stored: bool = Field(description="True if this click was uploaded before.")
    animals: list[AcquisitionAnimalRead]
    measurements: list[MeasurementRead]
    calibration: list[dict[str, Any]] = Field(description="Calibration steps with constants.")
    created_at: datetime
