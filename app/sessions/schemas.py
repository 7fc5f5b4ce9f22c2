"""Request and response bodies for imaging sessions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, JsonValue

from app.schemas import (
    InputModel,
    LongText,
    OutputModel,
    ShortText,
    StudyDateTime,
    UpdateModel,
)

_EXAMPLE: dict[str, JsonValue] = {
    "acquired_at": "2026-07-15T10:20:00+02:00",
    "operator": "J. Smith",
    "instrument": "IVIS Spectrum (room 2.14)",
    "luciferin_dose_mg_per_kg": 150,
    "luciferin_injected_at": "2026-07-15T10:10:00+02:00",
    "notes": "Cage C3 imaged last (late injection).",
}

DoseMgPerKg = Annotated[float, Field(gt=0, le=1000, description="D-luciferin dose, mg/kg")]


class ImagingSessionCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    acquired_at: StudyDateTime = Field(
        description="When imaging started, by the instrument's clock, with its UTC offset; "
        "the local date gives the day since injection."
    )
    operator: ShortText | None = None
    instrument: ShortText | None = None
    luciferin_dose_mg_per_kg: DoseMgPerKg | None = None
    luciferin_injected_at: StudyDateTime | None = None
    notes: LongText | None = None


class ImagingSessionUpdate(UpdateModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"notes": "mouse 3470 moved"}]})
    not_nullable: ClassVar[frozenset[str]] = frozenset({"acquired_at"})

    acquired_at: StudyDateTime | None = None
    operator: ShortText | None = None
    instrument: ShortText | None = None
    luciferin_dose_mg_per_kg: DoseMgPerKg | None = None
    luciferin_injected_at: StudyDateTime | None = None
    notes: LongText | None = None


class ImagingSessionRead(OutputModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                _EXAMPLE
                | {
                    "id": "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a",
                    "study_id": "3f1c7a52-3a0e-4b8e-9f7e-2a4c1f0b9d11",
                    "acquired_on": "2026-07-15",
                    "day": 14,
                    "received_at": "2026-07-15T08:31:02Z",
                }
            ]
        },
    )

    id: uuid.UUID
    study_id: uuid.UUID
    acquired_at: datetime
    acquired_on: date = Field(description="Local calendar date of imaging.")
    day: int = Field(description="Days since injection (acquired_on − the study's day 0).")
    received_at: datetime = Field(description="When the server recorded the session.")
    operator: str | None
    instrument: str | None
    luciferin_dose_mg_per_kg: float | None
    luciferin_injected_at: datetime | None
    notes: str | None
