"""Linear mixed-effects growth model: REML fit, singular-fit handling, KR / Satterthwaite
small-sample inference (the numerics are in :mod:`cohorts._lmm`).

Why one long module: :func:`fit_growth_model` is one documented procedure (prepare
the data, fit, reduce a singular fit by the rule in :class:`GrowthModelResult`, test the
contrasts, report each arm's growth rate), and the result types here are what it returns;
a quarter of the lines are docstrings that document every field and step.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._common import Effect, _f, scale_label
from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare, require_animals
from ._errors import InsufficientDataError, InvalidInputError
from ._lmm import SINGULAR_TOL, Contrast, LmmFit, fit_lmm

__all__ = [
    "FixedEffect",
    "GrowthModelResult",
    "GrowthRate",
    "ModelReduction",
    "OptimizerAttempt",
    "fit_growth_model",
]

DF_METHODS = ("kenward-roger", "satterthwaite")

# The documented reduction rule for singular fits (see GrowthModelResult)
_REDUCE_CORRELATED = "intercept_slope_uncorrelated"


@dataclass(frozen=True, slots=True)
class FixedEffect(_AsDict):
    """One fixed-effect coefficient with its small-sample t test.

    ``se``: standard error — Kenward-Roger adjusted (sqrt of the diagonal of pbkrtest's
    ``vcovAdj``) or, with Satterthwaite, model-based (``vcov``); ``df``: denominator
    degrees of freedom of ``df_method``; ``t`` = estimate / se; ``p_value``: two-sided,
    t distribution with ``df``; 95 % CI estimate -/+ t(0.975, df) se. As lmerTest
    ``summary(fit, ddf = "Kenward-Roger")`` / ``ddf = "Satterthwaite"``.
    """

    name: str
    estimate: float
    se: float | None
    df: float | None
    t: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class GrowthRate(_AsDict):
    """An arm's model-based growth rate (scale unit per day) and, for treated arms, its
    difference from the control arm, each tested like a :class:`FixedEffect`.

    - ``rate``: beta_day + beta_{arm:day} (control: beta_day) with its 95 % CI
      (t(0.975, ``rate_df``)); ``rate_se``, ``rate_df`` for the contrast.
    - ``difference``: beta_{arm:day} = rate(arm) - rate(control) with its 95 % CI;
      ``difference_se``, ``df``, ``t`` and two-sided ``p_value`` of the slope contrast
      (lmerTest ``contest1D`` / emmeans with the same df method).
    - ``doubling_time_days``: log_b(2) / rate on log10 / ln, None if rate <= 0.
    """

    arm: str
    n_animals: int
    rate: Effect
    rate_se: float | None
    rate_df: float | None
    difference: Effect | None
    difference_se: float | None
    df: float | None
    t: float | None
    p_value: float | None
    doubling_time_days: float | None


@dataclass(frozen=True, slots=True)
class OptimizerAttempt(_AsDict):
    """One optimiser run: ``optimizer`` (method and starting point), the random-effects
    structure, whether it reported success, the log-likelihood it reached and its message."""

    optimizer: str
    random_effects: str
    converged: bool
    log_likelihood: float | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelReduction(_AsDict):
    """A singular fit of ``from_structure`` replaced by ``to_structure``, and why;
    ``log_likelihood`` and ``theta`` (lme4's relative covariance factor) of the singular
    fit."""

    from_structure: str
    to_structure: str
    reason: str
    log_likelihood: float
    theta: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class GrowthModelResult(_AsDict):
    """A linear mixed model of y ~ day x arm with random effects per animal.

    Model (Laird & Ware 1982), for animal i of arm g at day t::

        y_it = b0 + b_g + (b_day + b_g:day) t + u0_i + u1_i t + e_it,
        (u0_i, u1_i) ~ N(0, G),   e_it ~ N(0, residual_variance)

    (``random_effects="intercept"`` drops u1; ``common_intercept=True`` drops b_g; with a
    ``baseline`` y is the log fold change, t the days since baseline and b0, b_g, u0 are
    dropped). Fitted by REML (default) or ML as lme4 does (profiled criterion in the
    relative covariance factor theta; see :mod:`cohorts._lmm`), from several starting
    points, the best optimum polished by Newton steps.

    - ``fixed_effects``: names ``Intercept``, ``day``, ``arm[<g>]``, ``arm[<g>]:day``
      (``day`` is the control arm's growth rate, ``arm[<g>]:day`` the difference), each
      with its small-sample t test (see :class:`FixedEffect`).
    - ``df_method``: ``kenward-roger`` (default for REML: Kenward & Roger 1997, as
      pbkrtest / lmerTest and TumGrowth) or ``satterthwaite`` (lmerTest's default; the
      only choice for ML fits).
    - ``growth_rates``: per arm, control first (see :class:`GrowthRate`).
    - ``re_intercept_variance``, ``re_slope_variance``, ``re_correlation``: G on the
      absolute scale (lme4 ``VarCorr``); terms absent from the fitted structure are None
      (``re_correlation`` is None for the uncorrelated structure).
      (nlme/SynergyLMM print the slope SD relative to the residual SD.)
    - ``residual_variance``: sigma^2.
    - ``log_likelihood``: the REML or ML log-likelihood (nlme ``logLik``);
      ``reml_criterion`` = -2 x REML log-likelihood (lme4 "REML criterion at
      convergence"), None for ML; ``aic`` = -2 logLik + 2 k (k = fixed + variance
      parameters, as nlme), reported for ML and REML alike.
    - ``singular``: the reported fit is singular, as lme4 ``isSingular``: a diagonal
      entry of the relative covariance factor (theta) below 1e-4 — a variance estimated
      as 0 or a correlation of -/+1.
    - ``reductions``: the rule applied to singular fits (Bates, Kliegl, Vasishth & Baayen
      2015, arXiv:1506.04967; Matuschek et al. 2017, J Mem Lang 94:305): a singular
      correlated intercept + slope model is refitted without the correlation
      (``intercept_slope_uncorrelated``, lme4 ``(1 + day || animal)``); a singular
      model is then refitted without each variance estimated as 0 (``intercept``,
      ``slope``, or ``none`` = ordinary least squares). ``random_effects`` is the
      structure reported, ``random_effects_requested`` the one asked for,
      ``fallback_used`` whether they differ.
    - ``converged``: the score at the reported interior optimum is ~0 (relative 1e-4)
      or the optimum is on the boundary (singular) and the optimisers agree.
      ``optimizer``: the run whose optimum is reported; ``attempts``: every run of every
      structure tried; ``warnings``: only statements true of the reported fit.
    """

    control: str
    arms: tuple[str, ...]
    site: str
    scale: str
    method: str
    df_method: str
    random_effects_requested: str
    random_effects: str
    common_intercept: bool
    n_animals: tuple[tuple[str, int], ...]
    n_observations: int
    fixed_effects: tuple[FixedEffect, ...]
    growth_rates: tuple[GrowthRate, ...]
    re_intercept_variance: float | None
    re_slope_variance: float | None
    re_correlation: float | None
    residual_variance: float
    log_likelihood: float
    reml_criterion: float | None
    aic: float
    singular: bool
    converged: bool
    optimizer: str
    fallback_used: bool
    reductions: tuple[ModelReduction, ...]
    attempts: tuple[OptimizerAttempt, ...]
    warnings: tuple[str, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]

    def fixed_effect(self, name: str) -> FixedEffect:
        """The fixed effect called ``name`` (KeyError if absent)."""
        for fe in self.fixed_effects:
            if fe.name == name:
                return fe
        raise KeyError(name)


def _attempts(fit: LmmFit) -> list[OptimizerAttempt]:
    return [
        OptimizerAttempt(
            a.optimizer,
            fit.structure,
            a.success,
            _f(-0.5 * a.deviance) if a.deviance is not None else None,
            (a.message,),
        )
        for a in fit.attempts
    ]


def _zero_terms(fit: LmmFit) -> list[str]:
    """Random-effect terms of a singular fit whose variance is estimated as 0."""
    from ._lmm import STRUCTURES

    cols, _ = STRUCTURES[fit.structure]
    names = {0: "intercept", 1: "slope"}
    return [names[c] for k, c in enumerate(cols) if fit.g[k, k] <= SINGULAR_TOL**2 * fit.sigma2]


def _reduce(fit: LmmFit) -> tuple[str, str]:
    """The next structure for a singular fit, and the reason (see GrowthModelResult)."""
    if fit.structure == "intercept_slope":
        g = fit.g
        denom = math.sqrt(max(g[0, 0] * g[1, 1], 0.0))
        what = (
            f"correlation {g[0, 1] / denom:+.3f}"
            if denom > 0 and not _zero_terms(fit)
            else "a variance estimated as 0"
        )
        return _REDUCE_CORRELATED, f"singular fit ({what}): refitted without the correlation"
    zero = _zero_terms(fit)
    keep = [t for t in ("intercept", "slope") if t in fit.structure and t not in zero]
    if fit.structure in ("intercept", "slope"):
        keep = []
    target = keep[0] if len(keep) == 1 else "none"
    dropped = ", ".join(zero) if zero else "a term"
    return target, f"singular fit (random {dropped} variance estimated as 0): dropped"


def fit_growth_model(
    cohort: Cohort,
    *,
    control: str,
    treated: Sequence[str] | None = None,
    site: str = "whole_body",
    scale: Literal["log10", "ln", "log1p", "linear"] = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    random_effects: Literal["intercept_slope", "intercept", "slope"] | None = None,
    common_intercept: bool = False,
    baseline: Literal["first"] | float | None = None,
    method: Literal["reml", "ml"] = "reml",
    df_method: Literal["kenward-roger", "satterthwaite"] | None = None,
) -> GrowthModelResult:
    """Fit y ~ day * arm with a random intercept and slope per animal; compare growth rates.

    Parameters
    ----------
    cohort : Cohort
    control : str
        Reference arm; treated arms' growth rates are contrasted with it.
    treated : sequence of str, optional
        Treated arms (default: every other arm of the cohort).
    site, scale, floor, exclude_flags
        As for :func:`summarize`. ``scale="ln"`` reproduces nlme models of log(volume),
        ``scale="log1p"`` tumr's ``lmm`` on log1p(Volume).
    random_effects : {"intercept_slope", "intercept", "slope"}, optional
        Random intercept and slope per animal (default, unstructured G), intercept only, or
        slope only (the default, and the only choice, with ``baseline``).
    common_intercept : bool
        Drop the arm main effects (one intercept for all arms), appropriate when mice were
        randomised into arms by baseline flux.
    baseline : "first" or float, optional
        Relative-growth model (SynergyLMM's ``lmmModel``): y is the log fold change from
        each animal's baseline image (``"first"`` or that day), baseline rows are dropped
        (y = 0 there by construction; listed in ``exclusions``), time is days since the
        baseline, and the model has no intercept: y = (b_day + b_g:day) t + u1_i t + e.
        Needs a log scale.
    method : {"reml", "ml"}
        REML (default; lme4/nlme default) or maximum likelihood (for likelihood-ratio tests
        between models with different fixed effects).
    df_method : {"kenward-roger", "satterthwaite"}, optional
        Degrees of freedom of the t tests (default Kenward-Roger for REML, Satterthwaite
        for ML; Kenward-Roger is defined for REML only).

    Returns
    -------
    GrowthModelResult
    """
    if baseline is not None:
        if random_effects not in (None, "slope"):
            raise InvalidInputError(
                "with baseline= the model has no intercept: use random_effects='slope'"
            )
        if scale not in ("log10", "ln"):
            raise InvalidInputError("baseline= in the mixed model needs scale 'log10' or 'ln'")
        random_effects = "slope"
    elif random_effects is None:
        random_effects = "intercept_slope"
    elif random_effects not in ("intercept_slope", "intercept_slope_uncorrelated", "intercept"):
        raise InvalidInputError(
            "random_effects must be 'intercept_slope' or 'intercept' ('slope' needs baseline=)"
        )
    if method not in ("reml", "ml"):
        raise InvalidInputError(f"method must be 'reml' or 'ml', got {method!r}")
    if df_method is None:
        df_method = "kenward-roger" if method == "reml" else "satterthwaite"
    if df_method not in DF_METHODS:
        raise InvalidInputError(
            f"df_method must be 'kenward-roger' or 'satterthwaite', got {df_method!r}"
        )
    if df_method == "kenward-roger" and method != "reml":
        raise InvalidInputError("Kenward-Roger df need a REML fit; use df_method='satterthwaite'")
    treated_arms = (
        tuple(a for a in cohort.arms if a != control) if treated is None else tuple(treated)
    )
    if not treated_arms:
        raise InvalidInputError(f"no treated arm to compare with control {control!r}")
    arms = (control, *treated_arms)
    prep = prepare(
        cohort,
        arms=arms,
        site=site,
        scale=scale,
        floor=floor,
        exclude_flags=exclude_flags,
        baseline=baseline,
    )
    df = prep.frame
    excl = list(prep.exclusions)
    if baseline is not None:
        at_base = (df["day"] == df["baseline_day"]).to_numpy()
        for r in df[at_base].itertuples(index=False):
            excl.append(
                Exclusion(r.animal, r.arm, site, float(r.day), "baseline image (log fold change 0)")
            )
        df = df[~at_base]
        day = (df["day"] - df["baseline_day"]).to_numpy(dtype=np.float64)
    else:
        day = df["day"].to_numpy(dtype=np.float64)
    for a in arms:
        require_animals(df, a, f"the mixed model at site {site!r}")
    n_per_arm = tuple((a, int(df.loc[df["arm"] == a, "animal"].nunique())) for a in arms)
    if baseline is None:
        cols, names = [np.ones(len(df)), day], ["Intercept", "day"]
    else:
        cols, names = [day], ["day"]
    for a in treated_arms:
        ind = (df["arm"] == a).to_numpy(dtype=np.float64)
        if not common_intercept and baseline is None:
            cols.append(ind)
            names.append(f"arm[{a}]")
        cols.append(ind * day)
        names.append(f"arm[{a}]:day")
    exog = np.column_stack(cols)
    if len(df) <= exog.shape[1] + 2:
        raise InsufficientDataError(
            f"{len(df)} observations at site {site!r} are too few for {exog.shape[1]} fixed "
            "effects plus variance components"
        )
    endog = df["y"].to_numpy(dtype=np.float64)
    groups = df["animal"].to_numpy()
    reml = method == "reml"

    attempts: list[OptimizerAttempt] = []
    reductions: list[ModelReduction] = []
    structure: str = random_effects  # a key of STRUCTURES; reductions leave the Literal
    while True:
        fit = fit_lmm(endog, exog, day, groups, structure=structure, reml=reml)
        if fit is None:
            raise InsufficientDataError(
                f"the mixed model at site {site!r} ({structure} random effects) could not be "
                "fitted: no optimiser reached a finite REML criterion"
            )
        attempts.extend(_attempts(fit))
        if not fit.singular or structure == "none":
            break
        target, why = _reduce(fit)
        reductions.append(
            ModelReduction(
                structure,
                target,
                why,
                fit.log_likelihood,
                tuple(float(v) for v in fit.theta),
            )
        )
        structure = target

    k = exog.shape[1]
    fixed = []
    for i, nm in enumerate(names):
        c = fit.contrast(np.eye(k)[i], df_method=df_method)
        fixed.append(FixedEffect(nm, float(fit.beta[i]), *_test(c)))

    label = scale_label(scale)
    rates = []
    for a, n in n_per_arm:
        lv = np.zeros(k)
        lv[names.index("day")] = 1.0
        diff = d_se = d_df = d_t = d_p = None
        if a != control:
            j = names.index(f"arm[{a}]:day")
            lv[j] = 1.0
            dc = fit.contrast(np.eye(k)[j], df_method=df_method)
            diff = Effect(
                f"difference in growth rate ({label} per day, {a} - {control})",
                dc.estimate,
                _f(dc.ci_low),
                _f(dc.ci_high),
            )
            d_se, d_df, d_t, d_p = _f(dc.se), _f(dc.df), _f(dc.t), _f(dc.p_value)
        rc = fit.contrast(lv, df_method=df_method)
        rate = Effect(f"growth rate ({label} per day)", rc.estimate, _f(rc.ci_low), _f(rc.ci_high))
        dbl = None
        if scale in ("log10", "ln") and rc.estimate > 0:
            dbl = (math.log10(2) if scale == "log10" else math.log(2)) / rc.estimate
        rates.append(GrowthRate(a, n, rate, _f(rc.se), _f(rc.df), diff, d_se, d_df, d_t, d_p, dbl))

    g = fit.g
    int_var = slope_var = corr = None
    if structure in ("intercept_slope", "intercept_slope_uncorrelated"):
        int_var, slope_var = float(g[0, 0]), float(g[1, 1])
        if structure == "intercept_slope":
            denom = math.sqrt(g[0, 0] * g[1, 1])
            corr = float(g[0, 1] / denom) if denom > 0 else None
    elif structure == "intercept":
        int_var = float(g[0, 0])
    elif structure == "slope":
        slope_var = float(g[0, 0])
    n_par = k + fit.n_variance_parameters
    llf = fit.log_likelihood
    msgs = [r.reason + f" ({r.from_structure} -> {r.to_structure})" for r in reductions]
    if fit.singular:
        msgs.append(f"the reported fit ({structure}) is singular: a variance is estimated as 0")
    elif not fit.hessian_ok:
        msgs.append(
            "the Hessian of the criterion is not positive definite at the reported optimum: "
            "the variance parameters are poorly determined; treat the df with caution"
        )
    if not fit.converged:
        msgs.append("the optimiser did not reach a stationary point: do not trust the numbers")
    return GrowthModelResult(
        control=control,
        arms=arms,
        site=site,
        scale=scale,
        method=method,
        df_method=df_method,
        random_effects_requested=random_effects,
        random_effects=structure,
        common_intercept=common_intercept,
        n_animals=n_per_arm,
        n_observations=len(df),
        fixed_effects=tuple(fixed),
        growth_rates=tuple(rates),
        re_intercept_variance=int_var,
        re_slope_variance=slope_var,
        re_correlation=corr,
        residual_variance=float(fit.sigma2),
        log_likelihood=float(llf),
        reml_criterion=float(fit.deviance) if reml else None,
        aic=-2.0 * float(llf) + 2.0 * n_par,
        singular=fit.singular,
        converged=fit.converged,
        optimizer=fit.optimizer,
        fallback_used=structure != random_effects,
        reductions=tuple(reductions),
        attempts=tuple(attempts),
        warnings=tuple(msgs),
        exclusions=tuple(excl),
        adjustments=tuple(prep.adjustments),
    )


def _test(c: Contrast) -> tuple[float | None, ...]:
    """se, df, t, p, CI of a contrast, None where undefined."""
    return _f(c.se), _f(c.df), _f(c.t), _f(c.p_value), _f(c.ci_low), _f(c.ci_high)
