"""osteolux statistics core: per-animal tumour burden compared between arms.

Pure library (numpy, scipy, pandas, statsmodels); never imports the service. Build a
:class:`Cohort` from tidy :class:`Observation` records (or a DataFrame) plus
:class:`AnimalEnd` records, then call an analysis. Every result is a frozen dataclass of
plain values with ``to_dict()``; it carries n per arm, the effect with its 95 % CI, the
test, the scale, and the exclusions / adjustments made, with the reason for each.

Analyses
--------
summarize                  per arm per day: n, mean, SD, SEM, geometric mean + CI, median, IQR
compare_by_day             Welch t + Mann-Whitney per day, Holm / BH across days
per_animal_auc             AUC per animal over a common window
compare_auc                ... treated vs control
per_animal_growth_rates    OLS slope per animal, doubling time
compare_growth_rates       ... treated vs control
fit_growth_model           linear mixed model y ~ day x arm (REML as lme4, Kenward-Roger df)
fit_censored_growth_model  ... with points below the detection limit left-censored (Tobit, M3)
substitute_censored        ... or substituted (min/2, limit/2, limit) or dropped, labelled
tc_ratio                   T/C % on geometric means per day
tumor_growth_inhibition    %TGI between two days
site_onsets                day each animal's site becomes positive
incidence_by_day           incidence per day, Fisher exact
metastasis_free_survival   Kaplan-Meier, log-rank, Cox hazard ratio
randomise                  allocate animals to arms, stratified, balanced on baseline flux
fit_pilot                  growth parameters (mixed model, dropout) of a pilot arm
simulate_power             power of study designs by simulation (per-animal slope t test)
simulate_onset_power       power of the log-rank test for onset by simulation
skeletal_burden            total skeletal burden (sum of bone sites) as a derived cohort
site_involvement           per-arm incidence of each site, number of sites per mouse
interval_censored_survival onset between two images: Turnbull NPMLE, Weibull / log-normal AFT
compare_readout            end-of-study readout: Welch, exact Mann-Whitney, Fisher, Holm
spearman                   Spearman rho of a readout with final BLI flux

Errors: see :mod:`cohorts._errors` (all derive from :class:`CohortsError`).
"""

from ._common import Effect, TestResult
from ._compare import DayComparison, DayComparisonTable, SkippedDay, compare_by_day
from ._data import (
    DEFAULT_EXCLUDE_FLAGS,
    END_REASONS,
    Adjustment,
    AnimalEnd,
    Cohort,
    Exclusion,
    Observation,
    Scale,
)
from ._design import (
    ArmBalance,
    BalanceTest,
    Randomisation,
    RandomisationUnit,
    StratumCount,
    UnitAssignment,
    randomise,
)
from ._errors import (
    CohortsError,
    EmptyWindowError,
    InsufficientDataError,
    InvalidInputError,
    MixedStudiesError,
    NoDataError,
)
from ._interval import AFTFit, IntervalSurvivalResult, interval_aft, interval_censored_survival
from ._mixed import (
    FixedEffect,
    GrowthModelResult,
    GrowthRate,
    ModelReduction,
    OptimizerAttempt,
    fit_growth_model,
)
from ._onset_interval import OnsetInterval, OnsetIntervalTable, onset_intervals
from ._per_animal import (
    AnimalMetric,
    AnimalMetricComparison,
    AnimalMetricTable,
    compare_auc,
    compare_growth_rates,
    per_animal_auc,
    per_animal_growth_rates,
)
from ._positivity import (
    AnimalOnset,
    IncidenceDay,
    IncidenceTable,
    OnsetTable,
    incidence_by_day,
    site_onsets,
)
from ._power import (
    GrowthParameters,
    PilotFit,
    PowerRow,
    PowerTable,
    StudyDesign,
    fit_pilot,
    simulate_power,
    slope_test_power,
)
from ._power_survival import (
    GrowthOnset,
    OnsetDesign,
    OnsetDistribution,
    OnsetPowerRow,
    OnsetPowerTable,
    schoenfeld_power,
    simulate_onset_power,
)
from ._readouts import (
    ReadoutArm,
    ReadoutArmComparison,
    ReadoutComparison,
    SkippedPair,
    SpearmanResult,
    compare_readout,
    spearman,
)
from ._sites import (
    BONE_SITES,
    SKELETAL_TOTAL,
    ArmSitesDay,
    BurdenPoint,
    SiteIncidence,
    SiteInvolvement,
    SitesPerMouse,
    SkeletalBurden,
    site_involvement,
    skeletal_burden,
)
from ._summary import ArmDaySummary, SummaryTable, summarize
from ._survival import KMCurve, KMPoint, SurvivalResult, metastasis_free_survival
from ._tgi import TCDay, TCTable, TGIResult, tc_ratio, tumor_growth_inhibition
from ._tobit import (
    CENSORED_METHODS,
    CensoredCount,
    CensoredGrowthModelResult,
    Substitution,
    censored_points,
    fit_censored_growth_model,
    substitute_censored,
)
from ._turnbull import TurnbullCurve, TurnbullInterval, turnbull

__all__ = [
    "BONE_SITES",
    "CENSORED_METHODS",
    "DEFAULT_EXCLUDE_FLAGS",
    "END_REASONS",
    "SKELETAL_TOTAL",
    "AFTFit",
    "Adjustment",
    "AnimalEnd",
    "AnimalMetric",
    "AnimalMetricComparison",
    "AnimalMetricTable",
    "AnimalOnset",
    "ArmBalance",
    "ArmDaySummary",
    "ArmSitesDay",
    "BalanceTest",
    "BurdenPoint",
    "CensoredCount",
    "CensoredGrowthModelResult",
    "Cohort",
    "CohortsError",
    "DayComparison",
    "DayComparisonTable",
    "Effect",
    "EmptyWindowError",
    "Exclusion",
    "FixedEffect",
    "GrowthModelResult",
    "GrowthOnset",
    "GrowthParameters",
    "GrowthRate",
    "IncidenceDay",
    "IncidenceTable",
    "InsufficientDataError",
    "IntervalSurvivalResult",
    "InvalidInputError",
    "KMCurve",
    "KMPoint",
    "MixedStudiesError",
    "ModelReduction",
    "NoDataError",
    "Observation",
    "OnsetDesign",
    "OnsetDistribution",
    "OnsetInterval",
    "OnsetIntervalTable",
    "OnsetPowerRow",
    "OnsetPowerTable",
    "OnsetTable",
    "OptimizerAttempt",
    "PilotFit",
    "PowerRow",
    "PowerTable",
    "Randomisation",
    "RandomisationUnit",
    "ReadoutArm",
    "ReadoutArmComparison",
    "ReadoutComparison",
    "Scale",
    "SiteIncidence",
    "SiteInvolvement",
    "SitesPerMouse",
    "SkeletalBurden",
    "SkippedDay",
    "SkippedPair",
    "SpearmanResult",
    "StratumCount",
    "StudyDesign",
    "Substitution",
    "SummaryTable",
    "SurvivalResult",
    "TCDay",
    "TCTable",
    "TGIResult",
    "TestResult",
    "TurnbullCurve",
    "TurnbullInterval",
    "UnitAssignment",
    "censored_points",
    "compare_auc",
    "compare_by_day",
    "compare_growth_rates",
    "compare_readout",
    "fit_censored_growth_model",
    "fit_growth_model",
    "fit_pilot",
    "incidence_by_day",
    "interval_aft",
    "interval_censored_survival",
    "metastasis_free_survival",
    "onset_intervals",
    "per_animal_auc",
    "per_animal_growth_rates",
    "randomise",
    "schoenfeld_power",
    "simulate_onset_power",
    "simulate_power",
    "site_involvement",
    "site_onsets",
    "skeletal_burden",
    "slope_test_power",
    "spearman",
    "substitute_censored",
    "summarize",
    "tc_ratio",
    "tumor_growth_inhibition",
    "turnbull",
]
