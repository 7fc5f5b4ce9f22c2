"""Request and response bodies for randomisation and power by simulation.

Why one long module: the design feature's schemas, randomisation first, then power;
a fifth of the lines are field descriptions and examples for the OpenAPI documentation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.analysis.schemas import MAX_SIGNAL
from app.measurements.schemas import Metric
from app.models import Site
from app.schemas import InputModel, LongText, ShortText

MAX_SEED = 2**63 - 1
MAX_ANIMALS = 2000
MAX_DESIGNS = 200
MAX_N_SIM = 5000
MAX_SIMULATED_VALUES = 30_000_000
"""Work bound of one power request: n_sim x sum over designs of 2 n_per_arm x images (the
simulated log10 values). 3e7 values take about 6 s on one core of the reference 2-core
machine; larger grids belong in a background job."""

MAX_IMAGING_DAYS = 100_000
"""Imaging days of one design at most (its interval and length or follow-up): the day grid
is made per design, so an interval of a billionth of a day is refused before it is."""

MAX_JOB_N_SIM = 100_000
MAX_JOB_SIMULATED_VALUES = 1_000_000_000
"""Bound of one power job (about 3 to 4 minutes at ~5e6 values/s)."""

Seed = Annotated[
    int | None,
    Field(
        ge=0,
        le=MAX_SEED,
        description="Seed of numpy's default_rng; omitted: one is drawn and returned, so "
        "the same request with it gives the same result.",
    ),
]
StratifyBy = Literal["none", "sex", "strain", "cage"]


class RandomisationCreate(InputModel):
    """What to randomise, on what, how; ``apply`` makes it the animals' arms."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stratify_by": "sex",
                    "seed": 20261201,
                    "apply": False,
                }
            ]
        }
    )

    arm_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=2,
        max_length=20,
        description="Arms to fill (default: every arm of the study that is not archived).",
    )
    animal_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=2,
        max_length=MAX_ANIMALS,
        description="Animals to allocate (default: every animal without an end record and "
        "not archived). Leave out animals to exclude (e.g. a failed injection).",
    )
    site: Site = Field(default=Site.whole_body, description="Site of the baseline value.")
    metric: Metric = "total_flux_ps"
    baseline_day: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="Imaging day (days since injection) whose value is the baseline: "
        "log10 of it is balanced. Default: the first day on which any of the animals has a "
        "value at the site (the day-0 / pre-treatment image).",
    )
    floor: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Raise baseline values below this (e.g. the detection limit, p/s) to it; "
        "without it a value <= 0 is refused.",
    )
    body_weight_g: dict[ShortText, float] | None = Field(
        default=None,
        description="Body weight (g) by ear tag, for every animal allocated: balanced too.",
    )
    stratify_by: StratifyBy = Field(
        default="none",
        description="Fill the arms evenly within each sex, strain or cage ('none': one "
        "stratum). `strata` names strata explicitly instead.",
    )
    strata: dict[ShortText, ShortText] | None = Field(
        default=None,
        description="Stratum by ear tag (e.g. a cell-line subclone or batch), every animal.",
    )
    sizes: dict[uuid.UUID, Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        description="Animals per arm by arm id (default: as equal as possible; the arms "
        "listed first get the extra animal).",
    )
    method: Literal["rerandomisation", "permutation"] = Field(
        default="rerandomisation",
        description="rerandomisation (Morgan & Rubin 2012): draw `n_candidates` stratified "
        "random allocations, keep the `acceptance` share with the smallest Mahalanobis "
        "imbalance M, pick one of them at random. permutation: one stratified random "
        "permutation, no balancing.",
    )
    n_candidates: int = Field(default=2000, ge=1, le=100_000)
    acceptance: float = Field(default=0.01, gt=0, le=1)
    seed: Seed = None
    apply: bool = Field(
        default=False,
        description="false: a preview, nothing changes. true: move the animals to their arms "
        "and record the randomisation (seed, method, balance) in the audit trail.",
    )
    force: bool = Field(
        default=False,
        description="Apply although the study was randomised before or the animals were "
        "imaged after the baseline day (needs a reason: `reason` or X-Change-Reason).",
    )
    reason: LongText | None = Field(default=None, description="Why; kept in the audit trail.")

    @model_validator(mode="after")
    def _one_way_to_stratify(self) -> RandomisationCreate:
        if self.strata is not None and self.stratify_by != "none":
            raise ValueError("give either stratify_by or strata, not both")
        return self


class ArmCount(BaseModel):
    arm_id: uuid.UUID
    arm: str
    n: int


class AssignmentRead(BaseModel):
    """One animal's arm, its covariates and whether applying moves it."""

    animal_id: uuid.UUID
    animal: str
    stratum: str | None
    arm_id: uuid.UUID
    arm: str
    previous_arm_id: uuid.UUID
    moved: bool
    baseline_value: float = Field(description="The baseline value used (after `floor`).")
    log10_baseline: float
    body_weight_g: float | None


class ArmBalanceRead(BaseModel):
    """Per arm: n, mean and SD (n - 1) of log10 baseline, and of body weight if given."""

    arm_id: uuid.UUID
    arm: str
    n: int
    log10_baseline_mean: float
    log10_baseline_sd: float | None
    body_weight_mean_g: float | None
    body_weight_sd_g: float | None


class BalanceTestRead(BaseModel):
    """One-way ANOVA F (R ``oneway.test(var.equal = TRUE)``) or Kruskal–Wallis H (R
    ``kruskal.test``) across arms; descriptive only (any difference after randomisation is
    chance; CONSORT item 15). None where undefined."""

    covariate: str
    test: str
    statistic: float | None
    df: list[float]
    p_value: float | None


class StratumCountRead(BaseModel):
    stratum: str | None
    arm: str
    n: int


class RandomisationRead(BaseModel):
    """A randomisation (preview or applied) and the balance it achieved.

    ``imbalance_m``: the Mahalanobis statistic M = sum_j n_j (xbar_j - xbar)' S^-1
    (xbar_j - xbar) over the covariates; ``expected_m_random`` = its mean under plain
    randomisation, d (k - 1); ``candidate_percentile``: share of candidate allocations at
    least as balanced (%). ``conflicts``: why applying needs ``force`` (empty: it does not).
    """

    study_id: uuid.UUID
    applied: bool
    method: str
    seed: int
    n_candidates: int
    acceptance: float
    n_accepted: int
    site: str
    metric: str
    unit: str
    baseline_day: int
    covariates: list[str]
    stratify_by: str
    arms: list[ArmCount]
    assignments: list[AssignmentRead]
    balance: list[ArmBalanceRead]
    strata: list[StratumCountRead]
    tests: list[BalanceTestRead]
    imbalance_m: float
    expected_m_random: float
    acceptance_threshold_m: float
    candidate_percentile: float
    conflicts: list[str]
    reference: str = Field(
        default="Morgan KL, Rubin DB (2012) Rerandomization to improve covariate balance in "
        "experiments. Ann Stat 40:1263-1282."
    )


class RandomisationRecord(BaseModel):
    """An applied randomisation as the audit trail keeps it: when, why, whether it was
    forced, how (seed, method, baseline) and the balance it achieved."""

    at: datetime
    reason: str | None
    forced: bool
    method: str
    seed: int
    n_candidates: int
    acceptance: float
    site: str
    metric: str
    baseline_day: int
    covariates: list[str]
    stratify_by: str
    assignments: dict[str, str] = Field(description="Arm name by ear tag.")
    balance: list[ArmBalanceRead]
    tests: list[BalanceTestRead]
    imbalance_m: float
    expected_m_random: float
    conflicts: list[str] = Field(description="What `force` overrode (empty if nothing).")


class GrowthParametersIn(InputModel):
    """The control arm's growth on the log10 scale (as a pilot fit reports it)."""

    intercept: float = Field(default=5.0, ge=-5, le=20, description="log10 p/s at day 0")
    growth_rate: float = Field(ge=-5, le=5, description="log10 per day")
    sd_intercept: float = Field(default=0.0, ge=0, le=10, description="log10")
    sd_slope: float = Field(ge=0, le=5, description="between-animal SD of the rate, log10/day")
    sd_residual: float = Field(ge=0, le=10, description="image-to-image SD, log10")
    correlation: float = Field(default=0.0, ge=-1, le=1)
    dropout_per_day: float = Field(default=0.0, ge=0, le=1, description="exponential rate")


class GrowthParametersRead(BaseModel):
    intercept: float
    growth_rate: float
    sd_intercept: float
    sd_slope: float
    sd_residual: float
    correlation: float
    dropout_per_day: float


class PilotSource(InputModel):
    """Estimate the parameters from one arm of this study (typically its control)."""

    arm_id: uuid.UUID
    site: Site = Site.whole_body
    metric: Metric = "total_flux_ps"
    floor: float | None = Field(default=None, gt=0, le=MAX_SIGNAL)


class PilotFitRead(BaseModel):
    """The pilot arm's REML mixed-model fit (random effects reduced when singular) and
    dropout (events / animal-days at risk)."""

    arm_id: uuid.UUID
    arm: str
    site: str
    n_animals: int
    n_observations: int
    days: list[float]
    random_effects: str
    n_dropouts: int
    animal_days_at_risk: float
    warnings: list[str]


class GrowthSource(InputModel):
    """Where the control arm's growth comes from: a pilot arm to fit, or given parameters."""

    pilot: PilotSource | None = Field(
        default=None, description="Fit the parameters from this arm (study route only)."
    )
    parameters: GrowthParametersIn | None = Field(
        default=None, description="Or give them (exactly one of pilot and parameters)."
    )


class GrowthEffect(InputModel):
    """The treatment's effect on growth: a ratio of growth rates, or a fold difference."""

    slope_ratio: float | None = Field(
        default=None, ge=0, le=100, description="Treated / control mean growth rate"
    )
    fold: float | None = Field(
        default=None,
        gt=0,
        le=1e12,
        description="Or: treated geometric-mean flux this many times below control on fold_day",
    )
    fold_day: float | None = Field(default=None, gt=0, le=3650)

    def effect_problem(self) -> str | None:
        """What is wrong with the effect as given (None: nothing)."""
        if (self.slope_ratio is None) == (self.fold is None):
            return "give the effect as slope_ratio, or as fold with fold_day"
        if self.fold is not None and self.fold_day is None:
            return "fold needs fold_day (the day at which the arms differ so much)"
        return None


class PowerCreate(GrowthSource, GrowthEffect):
    """A grid of designs and the effect to detect."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "parameters": {
                        "growth_rate": 0.12,
                        "sd_intercept": 0.4,
                        "sd_slope": 0.03,
                        "sd_residual": 0.25,
                        "dropout_per_day": 0.01,
                    },
                    "n_per_arm": [6, 8, 10, 12],
                    "interval_days": [3.5, 7],
                    "length_days": [28],
                    "slope_ratio": 0.6,
                    "n_sim": 1000,
                    "seed": 1,
                }
            ]
        }
    )

    n_per_arm: list[Annotated[int, Field(ge=2, le=200)]] = Field(
        default=[6, 8, 10, 12, 15], min_length=1, max_length=30
    )
    interval_days: list[Annotated[float, Field(gt=0, le=365)]] = Field(
        default=[7.0], min_length=1, max_length=10, description="Days between imaging sessions"
    )
    length_days: list[Annotated[float, Field(gt=0, le=3650)]] = Field(
        default=[28.0], min_length=1, max_length=10, description="Last imaging day"
    )
    first_day: float = Field(default=0.0, ge=0, le=3650, description="First imaging day")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    test: Literal["welch", "student"] = "welch"
    n_sim: int = Field(default=1000, ge=10, le=MAX_N_SIM)
    min_images: int = Field(
        default=2,
        ge=2,
        le=1000,
        description="Images an animal needs for its slope to count (the analysis plan's rule).",
    )
    seed: Seed = None

    @model_validator(mode="after")
    def _one_effect(self) -> PowerCreate:
        problem = self.effect_problem()
        if problem:
            raise ValueError(problem)
        return self


class PowerRowRead(BaseModel):
    """Power of one design with its Monte Carlo SE and 95 % Wilson interval; the analytic
    pooled-t power without dropout beside it as a check."""

    n_per_arm: int
    interval_days: float
    length_days: float
    n_images: int
    power: float
    mc_se: float
    ci_low: float
    ci_high: float
    mean_animals_analysed: float
    analytic_power: float


class PowerRead(BaseModel):
    """Power by design, simulated from the growth parameters (see ``test`` for the
    analysis of each simulated study); the same request with ``seed`` gives the same table."""

    study_id: uuid.UUID | None
    parameters: GrowthParametersRead
    parameters_source: str
    pilot: PilotFitRead | None
    effect: str
    control_slope: float = Field(description="log10 per day")
    treated_slope: float = Field(description="log10 per day")
    test: str
    alpha: float
    n_sim: int
    seed: int
    simulated_values: int = Field(description="The work done: log10 values simulated.")
    rows: list[PowerRowRead]


class PowerJobCreate(PowerCreate):
    """As :class:`PowerCreate`, for a background job: up to 100 000 simulated studies per
    design and 1e9 simulated values in all."""

    n_sim: int = Field(default=10_000, ge=10, le=MAX_JOB_N_SIM)


# ------------------------------------------------------------------ power for onset


class OnsetDistributionIn(InputModel):
    """The control arm's time to onset: Weibull (shape 1: exponential) with this median."""

    median_days: float = Field(
        gt=0, le=3650, description="Median time to onset in the control arm (days since day 0)"
    )
    weibull_shape: float = Field(
        default=1.0,
        ge=0.05,
        le=20,
        description="1: exponential (constant hazard); > 1: the hazard rises with time",
    )
    dropout_per_day: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Exponential rate of death / humane endpoint (censored then), 1/day",
    )


class OnsetPowerCreate(GrowthSource, GrowthEffect):
    """A grid of designs and the effect on time to onset. The control arm's onset comes from
    exactly one of ``distribution`` (median onset; effect ``hazard_ratio``), ``pilot`` (an arm
    of this study: its growth fitted, onset when the flux crosses ``threshold``; effect on
    growth, ``slope_ratio`` or ``fold``) or ``parameters`` (that growth, given)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "distribution": {"median_days": 21, "dropout_per_day": 0.005},
                    "hazard_ratio": 0.4,
                    "n_per_arm": [8, 12, 16, 20],
                    "interval_days": [None, 3.5, 7],
                    "follow_up_days": [42],
                    "n_sim": 1000,
                    "seed": 1,
                }
            ]
        }
    )

    distribution: OnsetDistributionIn | None = Field(
        default=None, description="The control arm's onset time, given."
    )
    hazard_ratio: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Treated / control hazard of onset (with distribution; < 1: later onset)",
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Flux (p/s) at or above which an image is positive (with pilot or parameters)",
    )
    consecutive: int = Field(
        default=1, ge=1, le=10, description="Positive images in a row that make the onset"
    )
    n_per_arm: list[Annotated[int, Field(ge=2, le=200)]] = Field(
        default=[8, 12, 16, 20], min_length=1, max_length=30
    )
    interval_days: list[Annotated[float, Field(gt=0, le=365)] | None] = Field(
        default=[7.0],
        min_length=1,
        max_length=10,
        description="Days between imaging sessions: onset is seen on the next image; null: "
        "seen the moment it happens (continuous observation; with distribution only)",
    )
    follow_up_days: list[Annotated[float, Field(gt=0, le=3650)]] = Field(
        default=[42.0],
        min_length=1,
        max_length=10,
        description="End of follow-up: animals without onset are censored then",
    )
    first_day: float = Field(default=0.0, ge=0, le=3650, description="First imaging day")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    n_sim: int = Field(default=1000, ge=10, le=MAX_N_SIM)
    seed: Seed = None

    @model_validator(mode="after")
    def _one_model(self) -> OnsetPowerCreate:
        given = [self.distribution, self.pilot, self.parameters]
        if sum(x is not None for x in given) != 1:
            raise ValueError(
                "give exactly one of distribution (the control arm's median onset, with "
                "hazard_ratio), pilot (an arm to fit) or parameters (its growth, given)"
            )
        if self.distribution is not None:
            if self.hazard_ratio is None:
                raise ValueError("distribution needs hazard_ratio (treated / control, e.g. 0.5)")
            if (self.slope_ratio, self.fold, self.threshold) != (None, None, None):
                raise ValueError(
                    "slope_ratio, fold and threshold are for onset from growth (pilot or "
                    "parameters); with distribution give hazard_ratio only"
                )
            return self
        if self.hazard_ratio is not None:
            raise ValueError(
                "onset from growth takes the effect on growth (slope_ratio, or fold with "
                "fold_day), not hazard_ratio: give distribution to set a hazard ratio"
            )
        if self.threshold is None:
            raise ValueError(
                "onset from growth needs threshold: the flux (p/s) of a positive image"
            )
        if None in self.interval_days:
            raise ValueError(
                "interval_days null (continuous observation) needs distribution: onset from "
                "growth is seen on images only"
            )
        problem = self.effect_problem()
        if problem:
            raise ValueError(problem)
        return self


class OnsetPowerJobCreate(OnsetPowerCreate):
    """As :class:`OnsetPowerCreate`, for a background job: up to 100 000 simulated studies per
    design and 1e9 simulated values in all."""

    n_sim: int = Field(default=10_000, ge=10, le=MAX_JOB_N_SIM)


class OnsetDistributionRead(BaseModel):
    median_days: float
    weibull_shape: float
    dropout_per_day: float


class OnsetPowerRowRead(BaseModel):
    """Power of one design with its Monte Carlo SE and 95 % Wilson interval; the mean number
    of onsets seen (both arms and per arm); ``schoenfeld_power``: Schoenfeld's approximation
    at that number of events (with a hazard ratio only), a check on the simulation."""

    n_per_arm: int
    interval_days: float | None = Field(description="null: continuous observation")
    follow_up_days: float
    n_images: int | None
    power: float
    mc_se: float
    ci_low: float
    ci_high: float
    expected_events: float
    expected_events_control: float
    expected_events_treated: float
    studies_without_events: float = Field(description="Share of studies with no onset at all.")
    schoenfeld_power: float | None


class OnsetPowerRead(BaseModel):
    """Power of the log-rank test of time to onset by design; the same request with ``seed``
    gives the same table."""

    study_id: uuid.UUID | None
    endpoint: Literal["onset"] = "onset"
    distribution: OnsetDistributionRead | None
    parameters: GrowthParametersRead | None
    parameters_source: str
    pilot: PilotFitRead | None
    threshold: float | None = Field(description="p/s")
    consecutive: int
    effect: str
    hazard_ratio: float | None
    test: str
    alpha: float
    n_sim: int
    seed: int
    simulated_values: int = Field(
        description="The work done: an onset per animal, or (from growth) a log10 value per "
        "animal and image plus one per animal."
    )
    rows: list[OnsetPowerRowRead]
