"""Response bodies for acquisitions (their measurements: ``app.measurements.schemas``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.measurements.schemas import MeasurementRead
from app.schemas import InputModel, LongText


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
    warnings: list[str] = Field(
        default_factory=list,
        description="What needs a person's attention before these numbers are used, e.g. ROIs "
        "whose site is unassigned (they count in no site's series until a site is given).",
    )
    created_at: datetime


class AcquisitionMove(InputModel):
    """Move an acquisition to another imaging session of the same study."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "1c2b3a4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "reason": "uploaded to day 14 by mistake; imaged on day 21",
                }
            ]
        }
    )

    session_id: uuid.UUID = Field(description="The imaging session it belongs to.")
    reason: LongText = Field(min_length=3, description="Why it moves (audited).")
