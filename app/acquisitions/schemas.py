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
    acquired_at: datetime | None = Field(
        default=None,
        description="When the luminescent image was taken (a click's Acquisition Seconds; a "
        "TIFF's acquired_at), UTC.",
    )
    qc: dict[str, Any] = Field(
        default_factory=dict,
        description="Acquisition QC as of its newest measurement: minutes_since_injection and "
        "the luciferin window, exposure (peak counts above bias, saturated pixels, flags) and "
        "camera_settings (each changed setting as [this image, the study's most common], "
        "impact: info, caution or incomparable). The same flags are on every measurement.",
    )


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


class KineticPoint(BaseModel):
    acquisition_id: uuid.UUID
    click_number: str | None
    acquired_at: datetime
    minutes_since_injection: float | None = Field(
        description="Acquisition time minus the session's D-luciferin injection, min."
    )
    measurement_id: uuid.UUID
    total_flux_ps: float | None
    flags: list[str]


class KineticCurve(BaseModel):
    """One animal's site across the clicks of a kinetic sequence, and its peak."""

    animal: str
    site: str
    points: list[KineticPoint] = Field(description="In order of acquisition.")
    peak_index: int | None = Field(description="Position of the peak in points.")
    peak_total_flux_ps: float | None
    peak_minutes_since_injection: float | None
    peak_flags: list[str] = Field(
        description="peak_at_last_point (still rising when imaging stopped), "
        "peak_at_first_point (imaging may have started after the peak) or too_few_points."
    )


class KineticSequence(BaseModel):
    sequence: int = Field(description="0, 1, … in order of first acquisition.")
    view: str
    acquisition_ids: list[uuid.UUID] = Field(description="In order of acquisition.")
    curves: list[KineticCurve]


class SessionKinetics(BaseModel):
    """A session's kinetic sequences: clicks of the same view of the same mice, each within
    max_gap_min of the previous one (one injection imaged repeatedly)."""

    session_id: uuid.UUID
    max_gap_min: float
    sequences: list[KineticSequence]
    not_timed: list[uuid.UUID] = Field(
        description="Acquisitions without an acquisition time (e.g. a TIFF without "
        "acquired_at): they cannot be placed on a kinetic curve."
    )
