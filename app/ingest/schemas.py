"""Metadata that must come with a plain TIFF from an instrument other than an IVIS."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from app.models import Site, View
from app.rois.schemas import Geometry
from app.schemas import InputModel, ShortText, StudyDateTime


class TiffRoi(InputModel):
    animal: ShortText | None = Field(
        default=None,
        description="Identifier of one of the listed animals; none only for the background "
        "ROI (site background: a patch of the field without animals that gives every ROI its "
        "detection limit; recorded, never subtracted).",
    )
    site: Site
    label: ShortText | None = None
    geometry: Geometry


class TiffImageMetadata(InputModel):
    """How to read a TIFF's pixel values: units, binning, pixel size, calibration constants."""

    name: ShortText | None = Field(default=None, description="The instrument's name for the image.")
    units: Literal["counts", "p/s/cm²/sr"] = Field(
        description="counts: raw camera counts (calibrated if c_ccd, exposure_s and "
        "bias_counts are given, else kept and flagged uncalibrated); p/s/cm²/sr: radiance."
    )
    binning: int = Field(default=1, ge=1, le=16)
    fov_cm: float | None = Field(default=None, gt=0, le=100)
    sensor_pixels: int | None = Field(
        default=None, gt=0, le=65536, description="Un-binned pixels across the field of view."
    )
    exposure_s: float | None = Field(default=None, gt=0, le=3600)
    f_number: float | None = Field(default=None, gt=0, le=64)
    c_ccd: float | None = Field(
        default=None, gt=0, description="Radiance per count/s (p/s/cm²/sr per count/s)."
    )
    bias_counts: float | None = Field(default=None, ge=0)
    saturation_counts: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _calibration_complete(self) -> TiffImageMetadata:
        if (self.fov_cm is None) != (self.sensor_pixels is None):
            raise ValueError("give fov_cm and sensor_pixels together (they set the pixel size)")
        if self.c_ccd is not None:
            missing = [n for n in ("exposure_s", "bias_counts") if getattr(self, n) is None]
            if self.units != "counts":
                raise ValueError("c_ccd converts counts; the image is already radiance")
            if missing:
                raise ValueError(f"calibrating counts with c_ccd also needs {', '.join(missing)}")
        return self

    @property
    def counts_calibration(self) -> tuple[float, float, float] | None:
        """``(c_ccd, exposure_s, bias_counts)`` when counts are to be calibrated, else None."""
        c_ccd, exposure_s, bias_counts = self.c_ccd, self.exposure_s, self.bias_counts
        if self.units != "counts" or c_ccd is None or exposure_s is None or bias_counts is None:
            return None
        return c_ccd, exposure_s, bias_counts

    @property
    def sensor_pixel_cm(self) -> float | None:
        if self.fov_cm is None or self.sensor_pixels is None:
            return None
        return self.fov_cm / self.sensor_pixels


class TiffMetadata(TiffImageMetadata):
    """How to read the TIFF's pixel values, which mice it shows and where their ROIs are."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "LagoX-2026-07-15-cage3-dorsal",
                    "units": "counts",
                    "exposure_s": 60,
                    "binning": 4,
                    "f_number": 1.2,
                    "fov_cm": 25.0,
                    "sensor_pixels": 2048,
                    "c_ccd": 6.1e5,
                    "bias_counts": 500,
                    "view": "dorsal",
                    "animals": ["3466", "3467"],
                    "rois": [
                        {
                            "animal": "3466",
                            "site": "whole_body",
                            "geometry": {
                                "type": "ellipse",
                                "center_row": 1000,
                                "center_col": 500,
                                "semi_axis_row": 400,
                                "semi_axis_col": 150,
                                "angle_deg": 0,
                            },
                        }
                    ],
                }
            ]
        }
    )

    view: View = View.other
    animals: list[ShortText] = Field(min_length=1, max_length=20, description="Left to right.")
    rois: list[TiffRoi] = Field(min_length=1, max_length=500)
    acquired_at: StudyDateTime | None = Field(
        default=None,
        description="When the image was taken, with its UTC offset: gives the minutes since the "
        "session's D-luciferin injection (flag outside_luciferin_window).",
    )
    emission_filter: ShortText | None = Field(
        default=None,
        description="The emission filter ('open' for none): a change within a study is "
        "flagged filter_changed (radiance through another filter is not comparable).",
    )

    @model_validator(mode="after")
    def _animals_consistent(self) -> TiffMetadata:
        if len(set(self.animals)) != len(self.animals):
            raise ValueError("an animal is listed twice")
        anonymous = [
            i for i, r in enumerate(self.rois) if r.animal is None and r.site != "background"
        ]
        if anonymous:
            raise ValueError(
                f"ROI(s) {', '.join(map(str, anonymous))} name no animal; only a background ROI "
                "may have none"
            )
        strangers = sorted({r.animal for r in self.rois if r.animal} - set(self.animals))
        if strangers:
            raise ValueError(f"ROIs name animals that are not listed: {', '.join(strangers)}")
        return self
