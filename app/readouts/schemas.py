"""Request and response bodies for end-of-study readouts, their values, imports and analyses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from app.analysis.results import Effect, TestResult
from app.models import ReadoutKind, Site
from app.schemas import InputModel, LongText, Name, OutputModel, ShortText, StudyDate, UpdateModel

#: Sites a readout can be read at: every BLI site but the background and unassigned ROIs.
READOUT_SITES = tuple(s for s in Site if s not in (Site.background, Site.unassigned))


def _readout_site(value: Site | None) -> Site | None:
    if value is not None and value not in READOUT_SITES:
        raise ValueError(f"a readout's site is one of {', '.join(s.value for s in READOUT_SITES)}")
    return value


ReadoutSite = Annotated[Site | None, AfterValidator(_readout_site)]
Unit = Annotated[ShortText, Field(max_length=50)]

_EXAMPLE: dict[str, JsonValue] = {
    "name": "tumour area in bone sections",
    "unit": "mm²",
    "kind": "numeric",
    "site": "right_hindlimb",
    "description": "H&E, three step sections of the tibia, summed",
}


class ReadoutCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    name: Name = Field(description="What is read out; unique in the study together with site.")
    unit: Unit | None = Field(default=None, description="Unit of the values, e.g. mm².")
    kind: ReadoutKind = Field(
        description="numeric (any finite number), count (whole number ≥ 0) or binary (0/1)."
    )
    site: ReadoutSite = Field(
        default=None,
        description="The BLI site it was read at (its values are correlated with that site's "
        "flux); none: a whole-animal readout, correlated with every site.",
    )
    description: LongText | None = None


class ReadoutUpdate(UpdateModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"unit": "mm²"}, {"name": "tumour area (H&E)"}]}
    )
    not_nullable: ClassVar[frozenset[str]] = frozenset({"name", "kind"})

    name: Name | None = None
    unit: Unit | None = None
    kind: ReadoutKind | None = None
    site: ReadoutSite = None
    description: LongText | None = None


class ReadoutRead(OutputModel):
    id: uuid.UUID
    study_id: uuid.UUID
    name: str
    unit: str | None
    kind: ReadoutKind
    site: str | None
    description: str | None
    values: int = Field(default=0, description="Animals with a value.")
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ReadoutValueCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "animal_id": "1c2b3a4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "value": 2.31,
                    "measured_on": "2026-07-29",
                }
            ]
        }
    )

    animal_id: uuid.UUID
    value: float = Field(description="In the readout's unit; a count is whole, binary 0 or 1.")
    measured_on: StudyDate | None = Field(
        default=None,
        description="When it was read (necropsy, X-ray); the 'final' BLI flux it is correlated "
        "with is the animal's last image on or before it (default: the animal's end date).",
    )
    note: LongText | None = None


class ReadoutValueUpdate(UpdateModel):
    """A correction: needs an X-Change-Reason; the audit trail keeps the old value."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"value": 2.13}]})
    not_nullable: ClassVar[frozenset[str]] = frozenset({"value"})

    value: float | None = None
    measured_on: StudyDate | None = None
    note: LongText | None = None


class ReadoutValueRead(BaseModel):
    id: uuid.UUID
    readout_id: uuid.UUID
    readout: str
    site: str | None = Field(description="The readout's site.")
    unit: str | None
    animal_id: uuid.UUID
    animal: str = Field(description="The animal's identifier (ear tag).")
    arm_id: uuid.UUID
    arm: str
    value: float
    measured_on: date | None
    note: str | None
    created_at: datetime
    created_by_key_id: uuid.UUID | None = Field(description="The API key that entered it.")
    updated_at: datetime
    updated_by_key_id: uuid.UUID | None = Field(description="The key of the last correction.")


class ReadoutImportResult(BaseModel):
    filename: str
    sha256: str = Field(description="SHA-256 of the file as uploaded.")
    rows: int = Field(description="Data rows read.")
    created: int = Field(description="Values added.")
    replaced: int = Field(description="Values corrected (replace=true; audited with old value).")
    unchanged: int = Field(description="Rows equal to what is stored (nothing written).")
    readouts: list[str] = Field(description="The readouts the file gave values for.")


# ------------------------------------------------------------------------------ analyses


class ReadoutArm(BaseModel):
    arm: str
    n: int = Field(description="Animals with a value.")
    mean: float
    sd: float | None = Field(description="Sample SD (n - 1); null for one animal.")
    median: float
    q1: float = Field(description="First quartile (R quantile type 7).")
    q3: float = Field(description="Third quartile.")
    n_positive: int = Field(description="Animals with a value above the threshold.")


class ReadoutArmComparison(BaseModel):
    control: str
    treated: str
    n_control: int
    n_treated: int
    positive_control: int = Field(description="Control animals with a value > threshold.")
    positive_treated: int
    mean_difference: Effect | None = Field(
        description="mean(treated) - mean(control) with its Welch 95 % CI; null for binary."
    )
    welch: TestResult | None = Field(description="Welch t (R t.test); null for binary.")
    shift: Effect | None = Field(description="Hodges-Lehmann shift with its 95 % CI.")
    mann_whitney: TestResult | None = Field(
        description="Mann-Whitney U: exact without ties (R wilcox.test(exact=TRUE)); with "
        "ties the normal approximation with continuity and tie corrections, as R then does."
    )
    odds_ratio: Effect = Field(
        description="Odds ratio of being positive, conditional MLE with exact CI (R fisher.test)."
    )
    fisher: TestResult = Field(description="Fisher's exact test on positive animals.")


class SkippedPair(BaseModel):
    control: str
    treated: str
    reason: str


class ReadoutComparison(BaseModel):
    """Each arm's values of one readout, each treated arm against its control."""

    study_id: uuid.UUID
    readout_id: uuid.UUID
    readout: str
    unit: str | None
    kind: ReadoutKind
    site: str | None
    threshold: float = Field(description="A value above it makes the animal positive (Fisher).")
    correction: str = Field(description="holm (default), bh or none, across the treated arms.")
    arms: list[ReadoutArm]
    comparisons: list[ReadoutArmComparison]
    skipped: list[SkippedPair]


class SkippedReadout(BaseModel):
    readout_id: uuid.UUID
    readout: str
    reason: str = Field(description="Why it was not compared (e.g. too few animals).")


class ReadoutComparisons(BaseModel):
    """Every readout of a study compared between arms."""

    study_id: uuid.UUID
    readouts: list[ReadoutComparison]
    skipped: list[SkippedReadout]


class CorrelationPoint(BaseModel):
    animal: str
    arm: str
    value: float = Field(description="The readout value.")
    total_flux_ps: float = Field(description="The animal's final BLI total flux at the site.")
    day: int = Field(description="Day of that image (days since injection).")
    measurement_ids: list[uuid.UUID]


class SiteCorrelation(BaseModel):
    site: str
    n: int = Field(description="Animals with both a readout value and a final flux.")
    rho: float | None = Field(description="Spearman's rho; null when undefined (see reason).")
    p_value: float | None = Field(
        description="Two-sided p as R cor.test(method='spearman'): exact for n <= 9, AS 89 "
        "Edgeworth series up to 1289 animals, t approximation with ties (see method)."
    )
    method: str
    reason: str | None = None
    without_flux: list[str] = Field(
        description="Animals with a readout value but no usable image at the site on or "
        "before their readout date."
    )
    points: list[CorrelationPoint]


class ReadoutCorrelation(BaseModel):
    """Spearman correlation of a readout with each animal's final BLI total flux per site."""

    study_id: uuid.UUID
    readout_id: uuid.UUID
    readout: str
    unit: str | None
    final_flux_rule: str = Field(description="Which image gives an animal's final flux.")
    image_combination: str = Field(description="How an animal's images of one day combine.")
    excluded_flags: list[str] = Field(description="Images with these QC flags are not used.")
    sites: list[SiteCorrelation]


Correction = Literal["holm", "bh", "none"]
