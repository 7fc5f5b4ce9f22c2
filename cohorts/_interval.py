"""Interval-censored metastasis-free survival: Turnbull NPMLE and parametric AFT models.

A site is imaged on discrete days, so "first image at or above threshold" only says that
onset happened after the last negative image and no later than the first positive one.
Treating the first positive day as the onset time (the conventional Kaplan-Meier of
:func:`cohorts.metastasis_free_survival`) shifts every onset late by up to one imaging
interval, more in arms imaged less often. Here each animal contributes the interval
(left, right] in which its onset lies (:mod:`cohorts._onset_interval`), and the analyses
use that interval:

- the Turnbull (1976) nonparametric maximum-likelihood estimate of S(t) per arm
  (:mod:`cohorts._turnbull`), and
- Weibull and log-normal accelerated-failure-time models with the arm as covariate
  (as R ``survreg(Surv(left, right, type = "interval2") ~ arm)``), whose arm coefficient
  gives the time ratio with its Wald test and a likelihood-ratio test between the arms
  (this module, with :func:`interval_censored_survival` that runs them all).

No well-kept Python library offers a semi-parametric test for interval-censored data
(lifelines 0.30 has none; scikit-survival handles right censoring only; the R packages
``interval`` / ``icenReg`` have no Python port), so none is given.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ._common import Effect, TestResult, _f, recorded_warnings
from ._data import Adjustment, Cohort, Exclusion, _AsDict
from ._errors import InsufficientDataError, InvalidInputError
from ._onset_interval import OnsetInterval, onset_intervals
from ._survival import (
    SurvivalResult,
    _estimable,
    metastasis_free_survival,
    require_survival_data,
)
from ._turnbull import TurnbullCurve, turnbull

__all__ = [
    "AFTFit",
    "IntervalSurvivalResult",
    "interval_aft",
    "interval_censored_survival",
]

Distribution = Literal["weibull", "lognormal"]
DISTRIBUTIONS: tuple[str, ...] = ("weibull", "lognormal")

_Z975 = float(stats.norm.ppf(0.975))
# lifelines takes the log of an interval's lower bound; an onset known only to precede the
# first image ("left-censored", lower bound 0) enters with this lower bound instead. For any
# fitted scale the probability of onset before 1e-9 day is below 1e-15.
_LOWER_ZERO_DAY = 1e-9
# An SE of the log time ratio above this (a 95 % CI wider than e^±5.9, ~360-fold) means the
# intervals carry almost no information on the arm effect: said in the result's warnings.
_MAX_INFORMATIVE_SE = 3.0

SEMI_PARAMETRIC = (
    "not available: no well-kept Python library provides a semi-parametric test for "
    "interval-censored data (lifelines 0.30: none; scikit-survival: right censoring only); "
    "the arms are compared by the Weibull and log-normal AFT models"
)


# ------------------------------------------------------------------------------------ AFT


@dataclass(frozen=True, slots=True)
class AFTFit(_AsDict):
    """An interval-censored accelerated-failure-time model, log T = b0 + b1 x + sigma W.

    ``x`` is 1 for the treated arm, 0 for control; W is the standard extreme-value (minimum)
    distribution for ``weibull`` (S(t) = exp(-(t / exp(b0 + b1 x))^(1/sigma))) and standard
    normal for ``lognormal``. Fitted by maximum likelihood, each animal contributing
    log(S(left) - S(right)) (log density for an exact time), with lifelines
    (``WeibullAFTFitter`` / ``LogNormalAFTFitter``.fit_interval_censoring); parameterised
    as R ``survreg(Surv(left, right, type = "interval2") ~ arm, dist = ...)``:
    ``intercept`` b0, ``arm_coefficient`` b1, ``scale`` sigma (R's Scale; lifelines' 1/rho
    for the Weibull), ``se_*`` from the inverse observed information (R ``vcov``;
    ``se_log_scale`` of log sigma). ``log_likelihood`` / ``log_likelihood_null`` (arm
    dropped): R ``fit$loglik[2]`` / ``[1]``.

    - ``time_ratio``: exp(b1), the factor by which the treatment multiplies onset times
      (> 1: later onset), 95 % CI exp(b1 -/+ 1.96 se).
    - ``wald``: z = b1 / se, two-sided normal p (R ``summary(fit)``).
    - ``likelihood_ratio``: 2 (loglik - loglik_null), chi-square with 1 df (R's "Chisq").
    - ``median_control`` / ``median_treated``: model median onset day per arm,
      exp(b0 [+ b1]) (log 2)^sigma (Weibull) or exp(b0 [+ b1]) (log-normal).

    Fields are None (with a warning) when the fit fails or the arm effect is not finite
    (all events in one arm: the likelihood keeps rising as b1 grows).
    """

    distribution: str
    intercept: float | None
    arm_coefficient: float | None
    scale: float | None
    se_intercept: float | None
    se_arm: float | None
    se_log_scale: float | None
    log_likelihood: float | None
    log_likelihood_null: float | None
    time_ratio: Effect
    wald: TestResult | None
    likelihood_ratio: TestResult | None
    median_control: float | None
    median_treated: float | None
    warnings: tuple[str, ...]


def _lifelines_fit(
    distribution: str, frame: pd.DataFrame, *, covariate: bool
) -> tuple[Any, list[str]]:
    # lifelines is imported here: it takes ~1.5 s and only this analysis needs it.
    from lifelines import LogNormalAFTFitter, WeibullAFTFitter
    from lifelines.exceptions import ConvergenceError

    fitter = WeibullAFTFitter() if distribution == "weibull" else LogNormalAFTFitter()
    cols = ["lower", "upper", "treated"] if covariate else ["lower", "upper"]
    with recorded_warnings() as caught:
        try:
            fitter.fit_interval_censoring(
                frame[cols], lower_bound_col="lower", upper_bound_col="upper"
            )
        except (ConvergenceError, np.linalg.LinAlgError, ValueError) as exc:
            return None, [f"{distribution} fit failed: {str(exc).strip().splitlines()[0]}"]
    msgs = list(
        dict.fromkeys(f"{w.category.__name__}: {str(w.message).strip()[:300]}" for w in caught)
    )
    return fitter, msgs


def interval_aft(
    left: Sequence[float] | np.ndarray,
    right: Sequence[float | None] | np.ndarray,
    treated: Sequence[bool] | np.ndarray,
    *,
    distribution: Distribution,
) -> AFTFit:
    """Fit an interval-censored Weibull or log-normal AFT model (see :class:`AFTFit`).

    ``left``/``right`` in days as :func:`turnbull` (``left`` 0: onset before the first
    image); ``treated``: True for the treated arm.
    """
    if distribution not in DISTRIBUTIONS:
        raise InvalidInputError(
            f"unknown distribution {distribution!r}; use {' or '.join(DISTRIBUTIONS)}"
        )
    lo = np.asarray(left, dtype=np.float64)
    hi = np.array([math.inf if r is None else float(r) for r in right], dtype=np.float64)
    hi = np.where(np.isnan(hi), math.inf, hi)
    x = np.asarray(treated, dtype=bool)
    if not (lo.shape == hi.shape == x.shape) or lo.ndim != 1:
        raise InvalidInputError("left, right and treated must be equal-length 1-d sequences")
    if (lo < 0).any() or (hi < lo).any() or (hi <= 0).any():
        raise InvalidInputError("every interval needs 0 <= left <= right and right > 0")
    return _interval_aft(distribution, tuple(lo), tuple(hi), tuple(x))


# A study's JSON, CSV and plot requests fit the same data; the fits take ~1 s.
@functools.lru_cache(maxsize=64)
def _interval_aft(
    distribution: str, lo: tuple[float, ...], hi: tuple[float, ...], x: tuple[bool, ...]
) -> AFTFit:
    frame = pd.DataFrame(
        {
            "lower": np.where(np.array(lo) > 0, lo, _LOWER_ZERO_DAY),
            "upper": np.array(hi),
            "treated": np.array(x, dtype=np.float64),
        }
    )
    name = f"time ratio (treated vs control), {distribution} AFT: exp(arm coefficient)"
    fit, msgs = _lifelines_fit(distribution, frame, covariate=True)
    null, msgs0 = _lifelines_fit(distribution, frame, covariate=False)
    msgs += [m for m in msgs0 if m not in msgs]
    empty = AFTFit(
        distribution=distribution,
        intercept=None,
        arm_coefficient=None,
        scale=None,
        se_intercept=None,
        se_arm=None,
        se_log_scale=None,
        log_likelihood=None,
        log_likelihood_null=None,
        time_ratio=Effect(name, None, None, None),
        wald=None,
        likelihood_ratio=None,
        median_control=None,
        median_treated=None,
        warnings=(),
    )
    if fit is None:
        return _replace_warnings(empty, msgs)
    loc, shape = ("lambda_", "rho_") if distribution == "weibull" else ("mu_", "sigma_")
    params, se = fit.params_, fit.standard_errors_
    b0, b1 = float(params[(loc, "Intercept")]), float(params[(loc, "treated")])
    log_shape = float(params[(shape, "Intercept")])
    scale = math.exp(-log_shape) if distribution == "weibull" else math.exp(log_shape)
    se0, se1 = float(se[(loc, "Intercept")]), float(se[(loc, "treated")])
    se_ls = float(se[(shape, "Intercept")])
    ll = float(fit.log_likelihood_)
    if not _estimable(b1, se1):
        events, treated = np.isfinite(np.array(hi)), np.array(x, dtype=bool)
        if events[treated].any() and events[~treated].any():
            msgs.append(
                f"the data do not determine the {distribution} time ratio (log {b1:.3g}, SE "
                f"{se1:.3g}): onsets fall in too few distinct imaging intervals"
            )
        else:
            msgs.append(
                f"the {distribution} arm effect is not finite (log time ratio {b1:.3g}, SE "
                f"{se1:.3g}): every event is in one arm (the likelihood rises without bound)"
            )
        return _replace_warnings(empty, msgs)
    if se1 > _MAX_INFORMATIVE_SE:
        msgs.append(
            f"the data hardly determine the {distribution} time ratio (SE of its log "
            f"{se1:.3g}): onsets fall in too few distinct imaging intervals"
        )
    ll0 = None if null is None else float(null.log_likelihood_)
    lrt = None
    if ll0 is not None:
        chi2 = max(2.0 * (ll - ll0), 0.0)
        lrt = TestResult("likelihood ratio (arm)", chi2, 1.0, float(stats.chi2.sf(chi2, 1)))
    z = b1 / se1
    wald = TestResult("Wald z (arm coefficient)", z, None, float(2 * stats.norm.sf(abs(z))))

    def median(xb: float) -> float:
        return math.exp(xb) * (math.log(2) ** scale if distribution == "weibull" else 1.0)

    return AFTFit(
        distribution=distribution,
        intercept=b0,
        arm_coefficient=b1,
        scale=scale,
        se_intercept=se0,
        se_arm=se1,
        se_log_scale=se_ls,
        log_likelihood=ll,
        log_likelihood_null=ll0,
        time_ratio=Effect(
            name,
            _f(math.exp(b1)),
            _f(math.exp(b1 - _Z975 * se1)),
            _f(math.exp(b1 + _Z975 * se1)),
        ),
        wald=wald,
        likelihood_ratio=lrt,
        median_control=_f(median(b0)),
        median_treated=_f(median(b0 + b1)),
        warnings=tuple(msgs),
    )


def _replace_warnings(fit: AFTFit, msgs: list[str]) -> AFTFit:
    return dataclasses.replace(fit, warnings=tuple(msgs))


# ------------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class IntervalSurvivalResult(_AsDict):
    """Interval-censored metastasis-free survival of a treated arm vs its control.

    - ``animals``: each animal's onset interval (:class:`OnsetInterval`); ``censoring`` the
      rule in words.
    - ``turnbull``: the Turnbull NPMLE per arm (control first).
    - ``weibull`` / ``lognormal``: AFT models with the arm as covariate (:class:`AFTFit`):
      the tests between arms.
    - ``semi_parametric``: why no semi-parametric test is given.
    - ``conventional``: the right-censored Kaplan-Meier / log-rank / Cox analysis that takes
      the first positive image as the onset day (:func:`cohorts.metastasis_free_survival`;
      it censors at the end record's day), kept for comparison with published analyses;
      None when it cannot be computed (reason in ``warnings``).
    """

    control: str
    treated: str
    site: str
    rule: str
    death_is_event: bool
    censoring: str
    n_control: int
    n_treated: int
    events_control: int
    events_treated: int
    animals: tuple[OnsetInterval, ...]
    turnbull: tuple[TurnbullCurve, ...]
    weibull: AFTFit
    lognormal: AFTFit
    conventional: SurvivalResult | None
    semi_parametric: str
    warnings: tuple[str, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def interval_censored_survival(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str,
    threshold: float | None = None,
    background: float | Mapping[str, float] | None = None,
    background_multiple: float | None = None,
    consecutive: int = 1,
    exclude_flags: Collection[str] | None = None,
    death_is_event: bool = False,
) -> IntervalSurvivalResult:
    """Turnbull curves and Weibull / log-normal AFT tests of interval-censored time to site
    positivity, treated vs control, beside the conventional Kaplan-Meier analysis (see
    :class:`IntervalSurvivalResult`; positivity as :func:`cohorts.site_onsets`)."""
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    rule_args: dict[str, Any] = {
        "site": site,
        "threshold": threshold,
        "background": background,
        "background_multiple": background_multiple,
        "consecutive": consecutive,
        "exclude_flags": exclude_flags,
        "death_is_event": death_is_event,
    }
    table = onset_intervals(cohort, arms=(control, treated), **rule_args)
    animals = table.animals
    require_survival_data(animals, control=control, treated=treated, site=site, rule=table.rule)
    curves = []
    for arm in (control, treated):
        sub = [x for x in animals if x.arm == arm]
        curves.append(turnbull([x.left for x in sub], [x.right for x in sub], arm=arm))
    left = [x.left for x in animals]
    right = [x.right for x in animals]
    is_treated = [x.arm == treated for x in animals]
    fits = {
        d: interval_aft(left, right, is_treated, distribution=d) for d in ("weibull", "lognormal")
    }
    msgs = [f"{d}: {m}" for d, f in fits.items() for m in f.warnings]
    for c in curves:
        if not c.converged:
            msgs.append(f"Turnbull EM for arm {c.arm!r} stopped after {c.iterations} iterations")
    try:
        conventional: SurvivalResult | None = metastasis_free_survival(
            cohort, control=control, treated=treated, **rule_args
        )
    except InsufficientDataError as exc:
        conventional = None
        msgs.append(f"conventional Kaplan-Meier not computed: {exc}")
    return IntervalSurvivalResult(
        control=control,
        treated=treated,
        site=site,
        rule=table.rule,
        death_is_event=death_is_event,
        censoring=table.censoring,
        n_control=curves[0].n,
        n_treated=curves[1].n,
        events_control=curves[0].n_events,
        events_treated=curves[1].n_events,
        animals=animals,
        turnbull=tuple(curves),
        weibull=fits["weibull"],
        lognormal=fits["lognormal"],
        conventional=conventional,
        semi_parametric=SEMI_PARAMETRIC,
        warnings=tuple(msgs),
        exclusions=table.exclusions,
        adjustments=table.adjustments,
    )
