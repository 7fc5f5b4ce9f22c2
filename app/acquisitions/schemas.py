"""Response bodies for acquisitions (their measurements: ``app.measurements.schemas``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.measurements.schemas import MeasurementRead


class AcquisitionAnimalRead(BaseModel):
    position: int = Field(description="0 = leftmost mouse in the field.")
    animal_id: uuid.UUID
    identifier: str


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
