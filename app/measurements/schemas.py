"""Response bodies for measurements, measurement imports and per-animal series."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import ImageCombination

Metric = Literal["total_flux_ps", "radiance_mean"]
ImportFormat = Literal["tidy", "living_image"]


class ImportResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "bm01_flux.csv",
                    "sha256": "9f2c…",
                    "format": "tidy",
                    "already_imported": False,
                    "rows": 384,
                    "animals": 24,
                    "days": [0, 3, 7, 10, 14, 17, 21, 24],
                    "sessions_created": 8,
                    "measurements_created": 384,
                    "measurements_superseded": 0,
                }
            ]
        }
    )

    filename: str
    sha256: str = Field(description="SHA-256 of the file as received; it is kept unchanged.")
    format: ImportFormat
    already_imported: bool = Field(description="True if this exact file was imported before.")
    rows: int
    animals: int
    days: list[int]
    sessions_created: int
    measurements_created: int
    unassigned_sites: int = Field(
        default=0,
        description="Rows whose ROI label names no site, stored with site unassigned: they "
        "count in no site's series. Name the site in the ROI labels (e.g. '3466 spine') and "
        "import the corrected file with replace=true.",
    )
    measurements_superseded: int = Field(
        default=0,
        description="Stored values of the same animal, day, site and view that this import "
        "superseded (replace=true); they stay as history.",
    )


class SeriesPoint(BaseModel):
    """One animal on one day: its images of that day combined by the study's rule."""

    measurement_id: uuid.UUID = Field(description="The first of measurement_ids.")
    measurement_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Every measurement (image) of the day it stands for."
    )
    animal_id: uuid.UUID
    animal: str = Field(description="The animal's identifier (ear tag).")
    arm_id: uuid.UUID
    arm: str
    day: int = Field(description="Days since injection.")
    site: str
    value: float | None
    images: int = Field(default=1, description="How many images with a value were combined.")
    views: list[str] = Field(default_factory=list, description="Their views.")
    flags: list[str]


class Series(BaseModel):
    study_id: uuid.UUID
    site: str
    metric: Metric
    unit: str
    image_combination: ImageCombination = Field(
        description="How each animal's images of a day were combined into its point."
    )
    points: list[SeriesPoint]


class MeasurementRead(BaseModel):
    """One ROI measurement with where it comes from: the one shape of a measurement in every
    response (an acquisition's measurements, the study's measurement list). The CSV export
    (``LIVING_IMAGE_COLUMNS``) is built from these fields."""

    measurement_id: uuid.UUID
    roi_id: uuid.UUID
    acquisition_id: uuid.UUID
    click_number: str | None = Field(description="Living Image click (image) name.")
    view: str
    day: int = Field(description="Days since injection.")
    animal: str | None = Field(description="The animal's identifier; none for background.")
    arm: str | None
    site: str
    label: str | None = Field(description="The ROI's label.")
    roi_source: str
    total_flux_ps: float | None = Field(description="Total flux, p/s.")
    radiance_mean: float | None = Field(description="Average radiance, p/s/cm²/sr.")
    radiance_std: float | None
    radiance_min: float | None
    radiance_max: float | None
    area_cm2: float | None
    saturated_pixels: int
    units: str = Field(description="Units of the image it was measured on.")
    flags: list[str] = Field(description="QC flags, e.g. saturated.")
    method: str
    imaging_version: str
    is_current: bool = Field(description="False once superseded (ROI edit or requantify).")
    created_at: datetime
    calibration_source: str | None = Field(
        default=None,
        description="Which calibration total_flux_ps comes from: 'living_image_corrected' "
        "(Living Image's own luminescentFloatCorrected.TIF, so the numbers continue the lab's "
        "Living Image numbers) or 'raw_counts' (osteolux's calibration of the raw counts); "
        "none for a TIFF upload or an imported table.",
    )
    raw_total_flux_ps: float | None = Field(
        default=None,
        description="Total flux from the raw counts, p/s, when the primary calibration is "
        "Living Image's; they differ beyond the tolerance when flagged calibration_disagrees.",
    )
    detection_limit_ps: float | None = Field(
        default=None,
        description="Detection limit of this ROI on the scale of total_flux_ps, p/s: "
        "(mean + 3 SD of the background ROI's radiance) × ROI area × 4π; below it the "
        "measurement is flagged below_detection. None without a background ROI.",
    )
    minutes_since_injection: float | None = Field(
        default=None,
        description="Acquisition time minus the session's D-luciferin injection time, min "
        "(flag outside_luciferin_window outside the configured window).",
    )
