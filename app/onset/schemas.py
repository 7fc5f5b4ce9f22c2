"""Response models of interval-censored onset and several-sites analyses.

They mirror the ``cohorts`` result dataclasses (``to_dict()``), which hold the formulas and
references; a test keeps the two in step.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from app.analysis.results import (
    Adjustment,
    AnimalOnset,
    DayComparisonTable,
    Effect,
    Exclusion,
    SurvivalResult,
    TestResult,
)

# ------------------------------------------------------------------ interval-censored onset


class OnsetInterval(BaseModel):
    """The interval (left, right] in days since injection that holds an animal's onset."""

    animal: str
    arm: str
    threshold: float = Field(description="Its positivity threshold, p/s.")
    left: float = Field(description="Last negative image day; 0 if positive at its first image.")
    right: float | None = Field(
        description="First positive image day (or death day with death_is_event); null: never "
        "positive (right-censored at `left`)."
    )
    kind: str = Field(description="interval, left (positive at first image), right, exact.")
    reason: str = Field(
        description="onset, death / humane_endpoint (events only with death_is_event), or for "
        "a censored animal its end reason or last_image."
    )
    n_images: int
    event: bool


class TurnbullInterval(BaseModel):
    """A Turnbull (innermost) interval and the NPMLE's probability mass in it."""

    left: float
    right: float | None = Field(description="null: infinity (never positive).")
    closed_left: bool = Field(description="[left, right] (an exact time) instead of (left, right].")
    mass: float
    survival: float = Field(description="S(t) from `right` to the next interval's `left`.")


class TurnbullCurve(BaseModel):
    """Turnbull's NPMLE of metastasis-free survival for one arm (R survfit interval2)."""

    arm: str
    n: int
    n_events: int
    intervals: list[TurnbullInterval]
    log_likelihood: float
    iterations: int = Field(description="Self-consistency (EM) iterations to |Δp| < 1e-12.")
    converged: bool
    kkt_max: float = Field(description="max_j (1/n) Σ_i a_ij / Σ_k a_ik p_k; 1 at the NPMLE.")
    median_interval: list[float | None] | None = Field(
        default=None, description="The Turnbull interval where S falls to 0.5 or below."
    )


class AFTFit(BaseModel):
    """Interval-censored AFT model log T = b0 + b1·treated + σW (R survreg interval2)."""

    distribution: str = Field(description="weibull or lognormal.")
    intercept: float | None = Field(description="b0, log days (R (Intercept)).")
    arm_coefficient: float | None = Field(description="b1: log time ratio, treated vs control.")
    scale: float | None = Field(description="σ (R's Scale).")
    se_intercept: float | None
    se_arm: float | None
    se_log_scale: float | None
    log_likelihood: float | None = Field(description="R fit$loglik[2].")
    log_likelihood_null: float | None = Field(description="Without the arm: R fit$loglik[1].")
    time_ratio: Effect = Field(description="exp(b1) with 95 % Wald CI: >1, later onset.")
    wald: TestResult | None
    likelihood_ratio: TestResult | None = Field(description="2Δ loglik, chi-square 1 df.")
    median_control: float | None = Field(description="Model median onset day, control.")
    median_treated: float | None = Field(description="Model median onset day, treated.")
    warnings: list[str]


class IntervalSurvival(BaseModel):
    """Interval-censored metastasis-free survival beside the conventional Kaplan-Meier."""

    control: str
    treated: str
    site: str
    rule: str = Field(description="The positivity rule.")
    death_is_event: bool
    censoring: str = Field(description="How each animal's interval is formed, in words.")
    n_control: int
    n_treated: int
    events_control: int
    events_treated: int
    animals: list[OnsetInterval]
    turnbull: list[TurnbullCurve] = Field(description="Control first.")
    weibull: AFTFit
    lognormal: AFTFit
    conventional: SurvivalResult | None = Field(
        description="Conventional analysis: right-censored Kaplan-Meier, log-rank and Cox "
        "taking the first positive image as the onset day."
    )
    semi_parametric: str = Field(description="Why no semi-parametric test is given.")
    warnings: list[str]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


class IntervalSurvivalRead(BaseModel):
    study_id: uuid.UUID
    metric: str = Field(description="total_flux_ps: positivity is judged on total flux.")
    time_unit: str = Field(default="days since injection")
    result: IntervalSurvival


# ----------------------------------------------------------------------------- sites


class BurdenPoint(BaseModel):
    animal: str
    arm: str
    day: float
    total: float = Field(description="Sum of the sites' total flux, p/s.")
    n_sites: int


class SkeletalBurdenRead(BaseModel):
    """Total skeletal burden: the sum of the bone sites' total flux per animal and day."""

    study_id: uuid.UUID
    unit: str = Field(default="p/s")
    site: str = Field(description="The name the burden has as an endpoint: skeletal_total.")
    sites: list[str] = Field(description="The sites summed.")
    points: list[BurdenPoint]
    exclusions: list[Exclusion] = Field(
        description="Observations left out and animal-days without every site."
    )
    adjustments: list[Adjustment]
    comparison: DayComparisonTable | None = Field(
        default=None,
        description="With treatment_arm_id: the burden compared by day (log10, Welch and "
        "Mann-Whitney, Holm across days), as the per-day comparison of one site.",
    )


class SiteIncidence(BaseModel):
    site: str
    arm: str
    day: float
    n_imaged: int
    positive: int = Field(description="Animals whose site had become positive by this day.")
    fraction: float


class SitesPerMouse(BaseModel):
    animal: str
    arm: str
    day: float
    n_involved: int = Field(description="Sites positive by this day (once positive, involved).")
    n_sites: int
    involved: list[str]


class ArmSitesDay(BaseModel):
    arm: str
    day: float
    n: int
    mean: float
    median: float
    distribution: list[int] = Field(description="distribution[k]: animals with k sites involved.")


class SiteOnset(BaseModel):
    site: str
    onset: AnimalOnset


class SiteInvolvementRead(BaseModel):
    """Per-arm incidence of each site over time and the number of sites involved per mouse."""

    study_id: uuid.UUID
    sites: list[str]
    thresholds: list[float] = Field(description="Positivity threshold of each site, p/s.")
    consecutive: int
    incidence: list[SiteIncidence]
    per_mouse: list[SitesPerMouse]
    per_arm: list[ArmSitesDay]
    onsets: list[SiteOnset]
    exclusions: list[Exclusion]
