"""Request and response bodies for summaries and treatment-vs-control comparisons."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.analysis.results import ComparisonResults, SummaryTable
from app.measurements.schemas import Metric
from app.models import Site
from app.schemas import InputModel

Scale = Literal["log10", "linear"]
Analysis = Literal[
    "per_day", "auc", "growth_rate", "mixed_model", "tc", "tgi", "incidence", "survival"
]
ALL_ANALYSES: tuple[Analysis, ...] = (
    "per_day",
    "auc",
    "growth_rate",
    "mixed_model",
    "tc",
    "tgi",
    "incidence",
    "survival",
)


#: Largest flux or radiance a threshold or floor may name: far above any bioluminescence
#: (an IVIS saturates near 1e11 p/s), far below where its logarithm's arithmetic overflows.
MAX_SIGNAL = 1e15


class Window(InputModel):
    day_from: float = Field(ge=0, description="First day since injection included.")
    day_to: float = Field(description="Last day since injection included.")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.day_to <= self.day_from:
            raise ValueError("day_to must be after day_from")
        return self


class Threshold(InputModel):
    """When a site counts as positive (for incidence and metastasis-free survival).

    Give either ``value`` (absolute, in the unit of the comparison's metric) or
    ``background`` together with ``background_multiple``. ``flux_ps`` is the earlier name
    of ``value``, still accepted for ``metric = total_flux_ps`` (deprecated)."""

    value: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Absolute threshold in the unit of the comparison's metric: p/s for "
        "total_flux_ps (e.g. 1e6), p/s/cm²/sr for radiance_mean.",
    )
    flux_ps: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        json_schema_extra={"deprecated": True},
        description="Deprecated name of `value`, accepted only with metric total_flux_ps.",
    )
    background: float | None = Field(
        default=None, gt=0, description="Background level in the metric's unit."
    )
    background_multiple: float | None = Field(
        default=None, gt=0, description="Positive above this multiple of `background`."
    )
    consecutive: int = Field(default=1, ge=1, le=10, description="Images in a row above it.")

    @model_validator(mode="after")
    def _one_rule(self) -> Threshold:
        if self.flux_ps is not None:
            if self.value is not None and self.value != self.flux_ps:
                raise ValueError("give value (flux_ps is its deprecated name), not both")
            self.value = self.flux_ps
        parts = (self.background is not None) + (self.background_multiple is not None)
        if parts == 1:
            raise ValueError("background and background_multiple go together")
        if (self.value is not None) == (parts == 2):
            raise ValueError("give either value, or background together with background_multiple")
        return self


class ComparisonCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "treatment_arm_id": "1c2b3a4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "site": "whole_body",
                    "metric": "total_flux_ps",
                    "scale": "log10",
                    "window": {"day_from": 0, "day_to": 28},
                    "threshold": {"value": 1e6, "consecutive": 2},
                    "death_is_event": False,
                }
            ]
        }
    )

    treatment_arm_id: uuid.UUID
    control_arm_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the control arm the treatment arm names."
    )
    site: Site = Site.whole_body
    metric: Metric = "total_flux_ps"
    scale: Scale = "log10"
    floor: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Values below this (e.g. the detection limit, 1e4 p/s) are raised to it "
        "before log-transforming; required if any value is ≤ 0 on the log scale.",
    )
    window: Window | None = Field(default=None, description="Days included (default: all).")
    correction: Literal["holm", "bh"] = Field(
        default="holm",
        description="Multiplicity correction across days (Holm or Benjamini–Hochberg).",
    )
    analyses: list[Analysis] = Field(
        default_factory=lambda: list(ALL_ANALYSES),
        min_length=1,
        description="incidence and survival need a threshold and are skipped without one.",
    )
    threshold: Threshold | None = None
    death_is_event: bool = Field(
        default=False,
        description="Metastasis-free survival: count a death or humane endpoint before the "
        "site turned positive as an event at its day (default: censored there, the animal's "
        "reason shown per animal). Withdrawals and study end are always censored.",
    )
    tgi_end_day: float | None = Field(
        default=None, description="Day for %TGI (default: the last day both arms were imaged)."
    )
    censored: Literal["tobit", "half_min", "half_limit", "limit", "drop"] = Field(
        default="tobit",
        description="Values below their detection limit: tobit (default) fits the mixed model "
        "with them left-censored at the limit (the likelihood uses P(value < limit)); the "
        "other analyses, which have no censored version, use the values as measured. "
        "half_min (half the smallest detected value), half_limit, limit (raised to it) or "
        "drop substitute them for every analysis, labelled as such in the results, tables "
        "and plots.",
    )
    detection_limit: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Detection limit in the metric's unit for values whose measurement records "
        "none (imported tables, radiance, images without a background ROI), e.g. 1e5 p/s.",
    )
    df_method: Literal["kenward-roger", "satterthwaite"] = Field(
        default="kenward-roger",
        description="Degrees of freedom of the mixed model's t tests: Kenward–Roger (as R "
        "pbkrtest / lmerTest ddf='Kenward-Roger', TumGrowth) or Satterthwaite (lmerTest's "
        "default).",
    )

    @model_validator(mode="after")
    def _threshold_unit(self) -> ComparisonCreate:
        if (
            self.threshold is not None
            and self.threshold.flux_ps is not None
            and self.metric != "total_flux_ps"
        ):
            raise ValueError(
                f"threshold.flux_ps is a total-flux threshold; for metric {self.metric} give "
                "threshold.value in the metric's unit"
            )
        return self


class AnalysisOutcome(BaseModel):
    """How one analysis is stored: its result as ``cohorts`` computed it, or why not."""

    status: Literal["ok", "not_computed"]
    reason: str | None = None
    result: dict[str, Any] | None = None


class ComparisonRead(BaseModel):
    id: uuid.UUID
    study_id: uuid.UUID
    treatment_arm_id: uuid.UUID
    control_arm_id: uuid.UUID
    site: str
    metric: str
    unit: str = Field(description="Unit of the metric (the scale of each result is named in it).")
    parameters: dict[str, Any] = Field(description="The request as it was run.")
    n_animals: dict[str, int] = Field(description="Animals with data per arm name.")
    n_inputs: int = Field(description="Measurements the comparison used.")
    input_measurement_ids: list[uuid.UUID] | None = Field(
        default=None,
        description="Only with ?include=input_measurement_ids; the inputs themselves (values, "
        "animals, days, flags) are at links.inputs.",
    )
    input_fingerprint: str
    inputs_changed: bool = Field(
        description="True if the current measurements differ from those this comparison used; "
        "the stored results are shown unchanged."
    )
    software: dict[str, str]
    results: ComparisonResults
    links: dict[str, str] = Field(
        description="inputs: the measurements used (JSON or ?format=csv); tables.<name>: the "
        "results as CSV tables (per_day, animals, mixed_model, survival); tables.xlsx: all of "
        "them as one workbook."
    )
    created_at: datetime


class SummaryRead(BaseModel):
    study_id: uuid.UUID
    site: str
    metric: str
    metric_unit: str = Field(description="Unit of the measured metric, e.g. p/s.")
    scale: str = Field(
        description="Scale of mean, sd, sem, median, q1 and q3: log10 (of the metric, or of "
        "the fold change with a baseline) or linear."
    )
    statistics_unit: str = Field(
        description="Unit of mean, sd, sem, median, q1 and q3, e.g. log10(p/s)."
    )
    geometric_mean_unit: str = Field(
        description="Unit of geometric_mean and its CI (back-transformed): the metric's unit, "
        "or 'fold change' with a baseline."
    )
    image_combination: str = Field(
        default="mean",
        description="How each animal's images of a day were combined into one value (the "
        "study's image_combination setting).",
    )
    summary: SummaryTable = Field(description="Rows per arm per day (cohorts.summarize).")
