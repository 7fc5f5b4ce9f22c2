"""Linear mixed-effects growth model (statsmodels MixedLM)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM

from ._common import Effect, _f, scale_label
from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare, require_animals
from ._errors import InsufficientDataError, InvalidInputError

__all__ = ["FixedEffect", "GrowthModelResult", "GrowthRate", "OptimizerAttempt", "fit_growth_model"]

DEFAULT_OPTIMIZERS: tuple[str, ...] = ("lbfgs", "powell")

_Z975 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True, slots=True)
class FixedEffect(_AsDict):
    """One fixed-effect coefficient: estimate, standard error, Wald z = estimate / se,
    two-sided normal p and 95 % Wald CI (estimate -/+ 1.96 se)."""

    name: str
    estimate: float
    se: float | None
    z: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class GrowthRate(_AsDict):
    """An arm's model-based growth rate (scale unit per day) and, for treated arms, its
    difference from the control arm.

    - ``rate``: beta_day + beta_{arm:day} (control: beta_day), 95 % Wald CI from the
      fixed-effect covariance.
    - ``difference``: beta_{arm:day} = rate(arm) - rate(control) with its Wald 95 % CI;
      ``z``/``p_value``: Wald z test (normal reference; statsmodels has no
      Satterthwaite / Kenward-Roger df, so p is slightly anti-conservative for few animals).
    - ``doubling_time_days``: log_b(2) / rate on log10 / ln, None if rate <= 0.
    """

    arm: str
    n_animals: int
    rate: Effect
    difference: Effect | None
    z: float | None
    p_value: float | None
    doubling_time_days: float | None


@dataclass(frozen=True, slots=True)
class OptimizerAttempt(_AsDict):
    """One fit attempt: optimiser, random-effects structure, whether statsmodels reported
    convergence, its log-likelihood and the warnings it raised."""

    optimizer: str
    random_effects: str
    converged: bool
    log_likelihood: float | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GrowthModelResult(_AsDict):
    """A linear mixed model of y ~ day x arm with random effects per animal.

    Model (Laird & Ware 1982), for animal i of arm g at day t::

        y_it = b0 + b_g + (b_day + b_g:day) t + u0_i + u1_i t + e_it,
        (u0_i, u1_i) ~ N(0, G),   e_it ~ N(0, residual_variance)

    (``random_effects="intercept"`` drops u1; ``common_intercept=True`` drops b_g; with a
    ``baseline`` y is the log fold change, t the days since baseline and b0, b_g, u0 are
    dropped). Fitted by REML (default) or ML with statsmodels ``MixedLM``.

    - ``fixed_effects``: names ``Intercept``, ``day``, ``arm[<g>]``, ``arm[<g>]:day``
      (``day`` is the control arm's growth rate, ``arm[<g>]:day`` the difference).
    - ``growth_rates``: per arm, control first (see :class:`GrowthRate`).
    - ``re_intercept_variance``, ``re_slope_variance``, ``re_correlation``: G on the
      absolute scale (lme4 ``VarCorr``); terms absent from the fitted structure are None.
      (nlme/SynergyLMM print the slope SD relative to the residual SD.)
    - ``residual_variance``: sigma^2.
    - ``log_likelihood``: the REML or ML log-likelihood (nlme ``logLik``);
      ``reml_criterion`` = -2 x REML log-likelihood (lme4 "REML criterion at
      convergence"), None for ML; ``aic`` = -2 logLik + 2 k (k = fixed + variance
      parameters, as nlme), reported for ML and REML alike.
    - ``optimizer``: the optimiser whose fit is reported. Every optimiser in
      ``optimizers`` is tried; among fits statsmodels reports converged, the one with the
      highest log-likelihood is kept (an optimiser can stop at a worse local optimum and
      still report convergence). If none converges with random slopes, the random-
      intercept model is fitted (``fallback_used`` True, ``random_effects`` says what was
      fitted); if that fails too, the best non-converged fit is reported with
      ``converged`` False. Never trust numbers when ``converged`` is False.
    - ``attempts``: every fit tried; ``warnings``: warnings of the reported fit.
    """

    control: str
    arms: tuple[str, ...]
    site: str
    scale: str
    method: str
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
    converged: bool
    optimizer: str
    fallback_used: bool
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


def _fit_once(endog, exog, groups, exog_re, reml, optimizer):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = MixedLM(endog, exog, groups=groups, exog_re=exog_re).fit(
                reml=reml, method=[optimizer]
            )
        except (np.linalg.LinAlgError, ValueError) as exc:
            return None, (f"{type(exc).__name__}: {exc}",)
    msgs = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return res, msgs


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
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
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
    optimizers : sequence of str
        statsmodels optimisers to try, default ``("lbfgs", "powell")``; see
        :class:`GrowthModelResult` for how the reported fit is chosen.

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
    elif random_effects not in ("intercept_slope", "intercept"):
        raise InvalidInputError(
            "random_effects must be 'intercept_slope' or 'intercept' ('slope' needs baseline=)"
        )
    if method not in ("reml", "ml"):
        raise InvalidInputError(f"method must be 'reml' or 'ml', got {method!r}")
    if not optimizers:
        raise InvalidInputError("optimizers is empty")
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
    chosen = None
    structures = {
        "intercept_slope": ["intercept_slope", "intercept"],
        "intercept": ["intercept"],
        "slope": ["slope"],
    }[random_effects]
    best_failed = None
    for structure in structures:
        exog_re = {
            "intercept_slope": np.column_stack([np.ones(len(df)), day]),
            "intercept": np.ones((len(df), 1)),
            "slope": day[:, None],
        }[structure]
        fits = []
        for opt in optimizers:
            res, msgs = _fit_once(endog, exog, groups, exog_re, reml, opt)
            llf = _f(res.llf) if res is not None else None
            ok = bool(res is not None and res.converged and llf is not None)
            attempts.append(OptimizerAttempt(opt, structure, ok, llf, msgs))
            if res is not None and llf is not None:
                fits.append((ok, llf, opt, res, msgs, structure))
        good = [f for f in fits if f[0]]
        if good:
            chosen = max(good, key=lambda f: f[1])
            break
        if fits and best_failed is None:
            best_failed = max(fits, key=lambda f: f[1])
    if chosen is None:
        if best_failed is None:
            raise InsufficientDataError(
                f"the mixed model at site {site!r} could not be fitted by any optimiser: "
                + "; ".join(m for a in attempts for m in a.warnings)
            )
        chosen = best_failed
    ok, llf, opt, res, msgs, structure = chosen

    k = exog.shape[1]
    fe = np.asarray(res.fe_params, dtype=np.float64)
    cov = np.asarray(res.cov_params(), dtype=np.float64)[:k, :k]
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    fixed = []
    for i, nm in enumerate(names):
        s = _f(se[i]) if se[i] > 0 else None
        z = fe[i] / s if s else None
        fixed.append(
            FixedEffect(
                nm,
                float(fe[i]),
                s,
                _f(z),
                _f(2 * stats.norm.sf(abs(z))) if z is not None else None,
                _f(fe[i] - _Z975 * s) if s else None,
                _f(fe[i] + _Z975 * s) if s else None,
            )
        )

    def lincomb(idx: list[int]) -> tuple[float, float | None]:
        c = np.zeros(k)
        c[idx] = 1.0
        v = float(c @ cov @ c)
        return float(c @ fe), (math.sqrt(v) if v > 0 else None)

    label = scale_label(scale)
    rates = []
    for a, n in n_per_arm:
        if a == control:
            est, s = lincomb([names.index("day")])
            diff = None
            z = p = None
        else:
            j = names.index(f"arm[{a}]:day")
            est, s = lincomb([names.index("day"), j])
            d_est, d_se = float(fe[j]), _f(se[j])
            diff = Effect(
                f"difference in growth rate ({label} per day, {a} - {control})",
                d_est,
                d_est - _Z975 * d_se if d_se else None,
                d_est + _Z975 * d_se if d_se else None,
            )
            z = d_est / d_se if d_se else None
            p = float(2 * stats.norm.sf(abs(z))) if z is not None else None
        rate = Effect(
            f"growth rate ({label} per day)",
            est,
            est - _Z975 * s if s else None,
            est + _Z975 * s if s else None,
        )
        dbl = None
        if scale in ("log10", "ln") and est > 0:
            dbl = (math.log10(2) if scale == "log10" else math.log(2)) / est
        rates.append(GrowthRate(a, n, rate, diff, z, p, dbl))

    g = np.asarray(res.cov_re, dtype=np.float64)
    int_var: float | None = float(g[0, 0])
    if structure == "intercept_slope":
        slope_var = float(g[1, 1])
        denom = math.sqrt(g[0, 0] * g[1, 1])
        corr = float(g[0, 1] / denom) if denom > 0 else None
        n_var = 3
    elif structure == "slope":
        int_var, slope_var, corr, n_var = None, float(g[0, 0]), None, 1
    else:
        slope_var, corr, n_var = None, None, 1
    n_par = k + n_var + 1
    return GrowthModelResult(
        control=control,
        arms=arms,
        site=site,
        scale=scale,
        method=method,
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
        residual_variance=float(res.scale),
        log_likelihood=float(llf),
        reml_criterion=-2.0 * float(llf) if reml else None,
        aic=-2.0 * float(llf) + 2.0 * n_par,
        converged=bool(ok),
        optimizer=opt,
        fallback_used=structure != random_effects,
        attempts=tuple(attempts),
        warnings=msgs,
        exclusions=tuple(excl),
        adjustments=tuple(prep.adjustments),
    )
