"""Typed results of summaries and comparisons: every field named and defined in OpenAPI.

They mirror the ``cohorts`` result dataclasses (``to_dict()``), which hold the formulas and
references; a test keeps the two in step. Stored comparisons are read back through them:
fields added since a comparison was stored are null, fields it has that were since renamed
are kept (``extra="allow"``), so an old comparison is shown as it was computed.

Why one long module: it is a flat list of small response models, one per ``cohorts`` result
type, with no logic; one file keeps the whole OpenAPI vocabulary of analyses in one place to
read and to check against ``cohorts`` in one test.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------ building blocks


class Effect(_Out):
    """An estimate with its confidence interval."""

    name: str = Field(description="What is estimated, in which direction and on which scale.")
    estimate: float | None
    ci_low: float | None = Field(description="Lower bound; null where no interval exists.")
    ci_high: float | None = Field(description="Upper bound; null where no interval exists.")
    confidence: float = Field(default=0.95, description="Confidence level of the interval.")


class TestResult(_Out):
    """A hypothesis test; null statistic and p where the test is undefined (e.g. Welch with
    no variance in either arm)."""

    test: str = Field(description="Welch t, Mann-Whitney U, Fisher exact, log-rank, Cox Wald z.")
    statistic: float | None = Field(
        description="t; U of the treated arm (= R's W); sample odds ratio; chi-square; z."
    )
    df: float | None = Field(description="Degrees of freedom where the test has them.")
    p_value: float | None = Field(description="Two-sided p.")
    p_adjusted: float | None = Field(
        default=None, description="p adjusted across the days of the table by `correction`."
    )
    correction: str | None = Field(default=None, description="holm, bh or none.")
    method: str | None = Field(
        default=None,
        description="How p was computed where a test has several ways (Mann-Whitney: exact "
        "without ties and n < 50 per arm, as R wilcox.test; otherwise the normal "
        "approximation with continuity and tie corrections).",
    )


class Exclusion(_Out):
    """An observation (`day` set) or a whole animal (`day` null) left out, and why."""

    animal: str
    arm: str
    site: str
    day: float | None
    reason: str


class Adjustment(_Out):
    """A value kept but changed: `floored` (raised to the floor) or `averaged` (duplicate
    images of a day)."""

    animal: str
    arm: str
    site: str
    day: float
    kind: str
    detail: str


class SkippedDay(_Out):
    """A day left out of a per-day analysis and why."""

    day: float
    reason: str


# ------------------------------------------------------------------------------ summary


class ArmDaySummary(_Out):
    """One arm on one day, one value per animal (duplicates averaged)."""

    arm: str
    day: float
    n: int = Field(description="Animals with a value.")
    mean: float = Field(description="Mean on the summary's scale (statistics_unit).")
    sd: float | None = Field(description="Sample SD (n - 1); null if n < 2.")
    sem: float | None = Field(description="sd / sqrt(n).")
    geometric_mean: float | None = Field(
        description="Back-transformed mean (10**mean on log10), in geometric_mean_unit."
    )
    geometric_ci_low: float | None = Field(
        description="Back-transformed mean - t(0.975, n - 1) sem."
    )
    geometric_ci_high: float | None = Field(
        description="Back-transformed mean + t(0.975, n - 1) sem."
    )
    median: float = Field(description="Median on the summary's scale.")
    q1: float = Field(description="25th percentile (R quantile type 7).")
    q3: float = Field(description="75th percentile (R quantile type 7).")


class SummaryTable(_Out):
    site: str
    scale: str
    floor: float | None = Field(description="Values below it were raised to it before the log.")
    baseline: str | float | None = Field(
        description="'first' or a day: values are fold changes from each animal's baseline."
    )
    rows: list[ArmDaySummary]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


# -------------------------------------------------------------------------- per-day tests


class DayComparison(_Out):
    """Treated vs control on one day."""

    day: float
    n_control: int
    n_treated: int
    mean_difference: Effect = Field(
        description="mean(treated) - mean(control) with the Welch 95 % CI (on log10: log10 of "
        "the ratio of geometric means)."
    )
    welch: TestResult = Field(description="Welch t test, Welch-Satterthwaite df (R t.test).")
    shift: Effect = Field(
        description="Hodges-Lehmann shift with its CI as R wilcox.test(conf.int = TRUE) "
        "(exact without ties, n < 50; otherwise a normal approximation of it)."
    )
    mann_whitney: TestResult = Field(
        description="Mann-Whitney U; `method` says exact or normal approximation."
    )


class DayComparisonTable(_Out):
    control: str
    treated: str
    site: str
    scale: str
    floor: float | None
    baseline: str | float | None
    correction: str = Field(description="Applied separately to Welch and Mann-Whitney p.")
    rows: list[DayComparison]
    skipped_days: list[SkippedDay] = Field(description="Days with < 2 animals in an arm.")
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


# ----------------------------------------------------------------- per-animal AUC / slopes


class AnimalMetric(_Out):
    """One animal's AUC (trapezoid rule) or growth rate (OLS slope)."""

    animal: str
    arm: str
    value: float = Field(description="AUC (scale unit x day) or slope (scale unit per day).")
    n_points: int = Field(description="Images used.")
    first_day: float
    last_day: float
    intercept: float | None = Field(default=None, description="OLS intercept (slopes only).")
    doubling_time_days: float | None = Field(
        default=None, description="log_b(2) / slope on log scales; null if slope <= 0."
    )


class AnimalMetricComparison(_Out):
    """Per-animal AUC or growth rate, treated vs control."""

    metric: Literal["auc", "growth_rate"]
    unit: str
    control: str
    treated: str
    site: str
    scale: str
    window: list[float] | None = Field(description="[start, end] day of the AUC / slope window.")
    n_control: int
    n_treated: int
    mean_control: float
    mean_treated: float
    sd_control: float
    sd_treated: float
    mean_difference: Effect
    welch: TestResult
    shift: Effect
    mann_whitney: TestResult
    doubling_time_control_days: float | None
    doubling_time_treated_days: float | None
    animals: list[AnimalMetric]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


# ---------------------------------------------------------------------------- mixed model


class FixedEffect(_Out):
    """A fixed-effect coefficient with its small-sample t test (lmerTest summary)."""

    name: str = Field(description="Intercept, day, arm[<g>], arm[<g>]:day.")
    estimate: float
    se: float | None = Field(
        description="Kenward-Roger adjusted SE (pbkrtest vcovAdj) or, with Satterthwaite, "
        "the model-based SE."
    )
    df: float | None = Field(default=None, description="Denominator df of `df_method`.")
    t: float | None = Field(default=None, description="estimate / se.")
    p_value: float | None = Field(description="Two-sided, t distribution with `df`.")
    ci_low: float | None = Field(description="estimate - t(0.975, df) se.")
    ci_high: float | None = Field(description="estimate + t(0.975, df) se.")


class GrowthRate(_Out):
    """An arm's model-based growth rate and its difference from the control arm."""

    arm: str
    n_animals: int
    rate: Effect = Field(description="b_day (+ b_arm:day) with its 95 % CI.")
    rate_se: float | None = None
    rate_df: float | None = None
    difference: Effect | None = Field(
        description="Slope contrast b_arm:day = rate(arm) - rate(control); null for control."
    )
    difference_se: float | None = None
    df: float | None = Field(default=None, description="df of the slope contrast.")
    t: float | None = None
    p_value: float | None = Field(description="Two-sided p of the slope contrast.")
    doubling_time_days: float | None = Field(description="log_b(2) / rate; null if rate <= 0.")


class OptimizerAttempt(_Out):
    """One optimiser run: method and start, whether it reported success, what it reached."""

    optimizer: str
    random_effects: str
    converged: bool
    log_likelihood: float | None
    warnings: list[str]


class ModelReduction(_Out):
    """A singular fit replaced by a simpler random-effects structure, and why."""

    from_structure: str
    to_structure: str
    reason: str
    log_likelihood: float | None = None
    theta: list[float] | None = Field(
        default=None, description="lme4's relative covariance factor of the singular fit."
    )


class GrowthModel(_Out):
    """Linear mixed model y ~ day x arm, random effects per animal, fitted by REML as lme4."""

    control: str
    arms: list[str]
    site: str
    scale: str
    method: str = Field(description="reml or ml.")
    df_method: str | None = Field(
        default=None,
        description="kenward-roger (pbkrtest / lmerTest ddf = 'Kenward-Roger') or "
        "satterthwaite (lmerTest's default).",
    )
    random_effects_requested: str
    random_effects: str = Field(
        description="The structure reported: intercept_slope ((1 + day | animal)), "
        "intercept_slope_uncorrelated ((1 + day || animal)), intercept, slope or none."
    )
    common_intercept: bool
    n_animals: list[tuple[str, int]]
    n_observations: int
    fixed_effects: list[FixedEffect]
    growth_rates: list[GrowthRate]
    re_intercept_variance: float | None
    re_slope_variance: float | None
    re_correlation: float | None
    residual_variance: float
    log_likelihood: float
    reml_criterion: float | None = Field(description="lme4's 'REML criterion at convergence'.")
    aic: float
    singular: bool | None = Field(
        default=None,
        description="lme4 isSingular: a diagonal entry of the relative covariance factor "
        "< 1e-4 (a variance 0 or a correlation of -/+1).",
    )
    converged: bool
    optimizer: str
    fallback_used: bool = Field(description="random_effects differs from the one requested.")
    reductions: list[ModelReduction] = Field(
        default_factory=list,
        description="Singular fits and the rule applied: drop the correlation, then each "
        "variance estimated as 0.",
    )
    attempts: list[OptimizerAttempt]
    warnings: list[str] = Field(description="Statements true of the reported fit only.")
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


class CensoredCount(_Out):
    """One arm's values (animal-days) and how many lie below their detection limit."""

    arm: str
    n_points: int
    n_censored: int = Field(description="Values below their detection limit.")


class CensoredGrowthModel(_Out):
    """Left-censored (Tobit, "M3") linear mixed model y ~ day x arm with a correlated random
    intercept and slope per animal, fitted by maximum likelihood (cohorts
    fit_censored_growth_model): a value below its detection limit enters the likelihood as
    P(y < limit) = Phi((log limit - mu) / sigma) instead of a substituted number; the
    per-animal integral by adaptive Gauss-Hermite quadrature. Without random effects it is
    R survreg(Surv(y, event, type = "left") ~ arm * day, dist = "gaussian")."""

    control: str
    arms: list[str]
    site: str
    scale: str
    method: Literal["tobit"] = Field(description="tobit: the censored likelihood ran.")
    censoring: str = Field(description="How points below their detection limit were used.")
    inference: str = Field(
        description="Wald test: se from the observed information (numerical Hessian of the "
        "log-likelihood); t with df = animals - arms with random effects, z without."
    )
    random_effects_requested: str
    random_effects: str = Field(
        description="Reported: intercept_slope (correlated), intercept or none."
    )
    reductions: list[str] = Field(
        description="Singular fits (a variance ~0 or a correlation of -/+1) refitted simpler."
    )
    quadrature_points: int = Field(description="Gauss-Hermite nodes per random effect.")
    n_animals: list[tuple[str, int]]
    n_observations: int
    n_censored: list[CensoredCount] = Field(description="Per arm: values and censored values.")
    fixed_effects: list[FixedEffect]
    growth_rates: list[GrowthRate] = Field(
        description="Per arm; `difference` is the slope difference from the control arm."
    )
    re_intercept_variance: float | None
    re_slope_variance: float | None
    re_correlation: float | None
    residual_variance: float
    log_likelihood: float = Field(description="Maximised marginal log-likelihood.")
    aic: float
    converged: bool
    hessian_ok: bool = Field(description="The observed information is positive definite.")
    optimizer: str
    warnings: list[str]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


class CensoringSummary(_Out):
    """How the comparison handled values below their detection limit."""

    method: Literal["tobit", "half_min", "half_limit", "limit", "drop", "none"] = Field(
        description="tobit: the mixed model is the censored (Tobit) model, the other analyses "
        "use the values as measured; half_min / half_limit / limit / drop: every analysis used "
        "the substituted (or reduced) values; none: no value was below its limit."
    )
    description: str
    n_censored: list[CensoredCount]
    limits: str = Field(description="Where the detection limits came from.")
    substituted: list[Adjustment] = Field(
        default_factory=list, description="Each value substituted, from what to what."
    )
    dropped: list[Exclusion] = Field(default_factory=list, description="Values dropped (drop).")


# ---------------------------------------------------------------------------- T/C and TGI


class TCDay(_Out):
    day: float
    n_control: int
    n_treated: int
    geometric_mean_control: float
    geometric_mean_treated: float
    tc_percent: Effect = Field(
        description="100 x GM_T / GM_C with 100 x 10**(Welch 95 % CI of the log10 difference)."
    )


class TCTable(_Out):
    control: str
    treated: str
    site: str
    floor: float | None
    rows: list[TCDay]
    skipped_days: list[SkippedDay]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


class TGIResult(_Out):
    """%TGI = 100 (1 - (GM_T(end) - GM_T(start)) / (GM_C(end) - GM_C(start))) over the
    animals imaged on both days; a point estimate."""

    control: str
    treated: str
    site: str
    start_day: float
    end_day: float
    n_control: int
    n_treated: int
    geometric_mean_control_start: float
    geometric_mean_control_end: float
    geometric_mean_treated_start: float
    geometric_mean_treated_end: float
    tgi_percent: float | None
    warning: str | None
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


# ---------------------------------------------------------------- incidence and survival


class AnimalOnset(_Out):
    """When an animal's site became positive, and its survival time."""

    animal: str
    arm: str
    threshold: float = Field(description="Its positivity threshold, in the metric's unit.")
    onset_day: float | None
    time: float = Field(description="Survival time (days since injection).")
    event: bool
    censor_reason: str | None
    n_images: int
    reason: str | None = Field(
        default=None,
        description="Why the time ends: onset (event), death, humane_endpoint (events only "
        "with death_is_event), withdrawn, study_end, or last_image (no end record).",
    )


class IncidenceDay(_Out):
    day: float
    positive_control: int
    n_control: int
    positive_treated: int
    n_treated: int
    odds_ratio: Effect = Field(description="Conditional MLE with exact CI (R fisher.test).")
    fisher: TestResult


class IncidenceTable(_Out):
    control: str
    treated: str
    site: str
    rule: str = Field(description="The positivity rule.")
    correction: str
    rows: list[IncidenceDay]
    skipped_days: list[SkippedDay]
    animals: list[AnimalOnset]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


class KMPoint(_Out):
    time: float
    at_risk: int
    events: int
    survival: float
    ci_low: float | None
    ci_high: float | None


class KMCurve(_Out):
    arm: str
    n: int
    n_events: int
    median_time: float | None = Field(
        description="R survfit's median (midpoint where S is flat at 0.5); null: not reached."
    )
    points: list[KMPoint]


class SurvivalResult(_Out):
    """Metastasis-free survival: Kaplan-Meier, log-rank, Cox hazard ratio."""

    control: str
    treated: str
    site: str
    rule: str = Field(description="The positivity rule.")
    ties: str = Field(description="Cox tie handling (efron, as R coxph).")
    n_control: int
    n_treated: int
    events_control: int
    events_treated: int
    curves: list[KMCurve]
    logrank: TestResult = Field(description="Log-rank chi-square, 1 df (R survdiff).")
    hazard_ratio: Effect
    cox: TestResult | None
    warnings: list[str]
    animals: list[AnimalOnset]
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]
    death_is_event: bool | None = None
    censoring: str | None = Field(default=None, description="The censoring rule, in words.")
    km_confidence_interval: str | None = Field(
        default=None, description="The KM CI method (R's default differs: named here)."
    )
    km_median: str | None = Field(default=None, description="The KM median rule.")


# ------------------------------------------------------------------------------ outcomes

R = TypeVar("R")


class Outcome(BaseModel, Generic[R]):
    """One analysis: its result, or why it was not computed."""

    status: Literal["ok", "not_computed"]
    reason: str | None = None
    result: R | None = None


class ComparisonResults(BaseModel):
    """The analyses requested (the others are absent)."""

    per_day: Outcome[DayComparisonTable] | None = None
    auc: Outcome[AnimalMetricComparison] | None = None
    growth_rate: Outcome[AnimalMetricComparison] | None = None
    mixed_model: (
        Outcome[Annotated[CensoredGrowthModel | GrowthModel, Field(union_mode="left_to_right")]]
        | None
    ) = Field(
        default=None,
        description="The censored (Tobit) model when a value is below its detection limit "
        "(`censored` = tobit), else the REML mixed model.",
    )
    tc: Outcome[TCTable] | None = None
    tgi: Outcome[TGIResult] | None = None
    incidence: Outcome[IncidenceTable] | None = None
    survival: Outcome[SurvivalResult] | None = None
    censoring: CensoringSummary | None = Field(
        default=None,
        description="Values below their detection limit per arm and how they were handled.",
    )


RESULT_MODELS: dict[str, type[BaseModel]] = {
    "per_day": DayComparisonTable,
    "auc": AnimalMetricComparison,
    "growth_rate": AnimalMetricComparison,
    "mixed_model": GrowthModel,
    "tc": TCTable,
    "tgi": TGIResult,
    "incidence": IncidenceTable,
    "survival": SurvivalResult,
}
