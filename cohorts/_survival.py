"""Metastasis-free survival of a treated arm vs its control: Kaplan-Meier, log-rank, Cox.

The times come from the positivity rule of :mod:`cohorts._positivity` (onset = first
positive image); the interval-censored analysis is :mod:`cohorts._interval`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from ._common import Effect, TestResult, _f, recorded_warnings
from ._data import Adjustment, Cohort, Exclusion, _AsDict
from ._errors import InsufficientDataError, InvalidInputError
from ._positivity import AnimalOnset, site_onsets

__all__ = ["KMCurve", "KMPoint", "SurvivalResult", "metastasis_free_survival"]

_Z975 = float(stats.norm.ppf(0.975))

KM_CI = (
    "log(-log) transform with Greenwood's variance (R survfit conf.type = 'log-log', "
    "lifelines' default; R's default is conf.type = 'log'): its bounds stay within [0, 1] "
    "and it covers better in small arms (Borgan & Liestol 1990, Scand J Stat 17:35)"
)
KM_MEDIAN = (
    "R survfit: first time S(t) <= 0.5; where S is 0.5 (within sqrt(eps)) the midpoint to "
    "the next event time; not reached (None) if S stays above 0.5"
)


@dataclass(frozen=True, slots=True)
class KMPoint(_AsDict):
    """Kaplan-Meier estimate just after an event time.

    ``survival`` S(t) = prod_{t_j <= t} (1 - d_j / n_j); ``at_risk`` n_j, ``events`` d_j.
    95 % CI by the log(-log) transform with Greenwood's variance (Kalbfleisch & Prentice
    2002; lifelines' default "exponential Greenwood"): S^exp(-/+ 1.96 se), se =
    sqrt(sum d_j / (n_j (n_j - d_j))) / |log S|; None where S is 0 or 1.
    """

    time: float
    at_risk: int
    events: int
    survival: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class KMCurve(_AsDict):
    """An arm's Kaplan-Meier curve.

    ``median_time`` as R ``survfit`` (``print.survfit``, ``quantile.survfit``): the first
    time S(t) <= 0.5; where the curve is flat at exactly 0.5 (within sqrt(machine eps),
    so a rounding error such as 0.5000000000000001 counts as 0.5), the midpoint between
    the time it reached 0.5 and the next event time it drops below; the time it reached
    0.5 if it never drops below; None ("not reached") if S(t) stays above 0.5.
    """

    arm: str
    n: int
    n_events: int
    median_time: float | None
    points: tuple[KMPoint, ...]


@dataclass(frozen=True, slots=True)
class SurvivalResult(_AsDict):
    """Metastasis-free survival of a treated arm vs its control at one site.

    - ``curves``: Kaplan-Meier curves (control first).
    - ``logrank``: Mantel-Cox log-rank chi-square (1 df) and p (statsmodels ``survdiff``;
      R ``survdiff(Surv(time, event) ~ arm)``).
    - ``hazard_ratio``: Cox proportional-hazards HR of treated vs control, exp(beta), 95 %
      CI exp(beta -/+ 1.96 se); ``cox``: its Wald z test. Ties by ``ties`` (default
      Efron, as R ``coxph`` and lifelines; statsmodels ``PHReg``). None, with a warning,
      when all events fall in one arm (the partial likelihood has no maximum).
    - ``censoring``, ``km_confidence_interval``, ``km_median``: the definitions used, in
      words (deaths as events or censored; the CI transform, which is not R's default
      ``conf.type = "log"``; R survfit's median rule).
    """

    control: str
    treated: str
    site: str
    rule: str
    ties: str
    n_control: int
    n_treated: int
    events_control: int
    events_treated: int
    curves: tuple[KMCurve, ...]
    logrank: TestResult
    hazard_ratio: Effect
    cox: TestResult | None
    warnings: tuple[str, ...]
    animals: tuple[AnimalOnset, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]
    death_is_event: bool = False
    censoring: str = ""
    km_confidence_interval: str = KM_CI
    km_median: str = KM_MEDIAN


def _censoring_rule(death_is_event: bool) -> str:
    if death_is_event:
        return (
            "event: site positive, death or humane endpoint (first); censored: withdrawal, "
            "study end, or last usable image without an end record"
        )
    return (
        "event: site positive; censored at death, humane endpoint, withdrawal, study end, or "
        "the last usable image without an end record"
    )


def kaplan_meier(arm: str, time: np.ndarray, event: np.ndarray) -> KMCurve:
    """Kaplan-Meier curve of one arm (see :class:`KMPoint`)."""
    sf = SurvfuncRight(time, event.astype(int))
    pts = []
    cum = 0.0
    for t, s, n, d in zip(sf.surv_times, sf.surv_prob, sf.n_risk, sf.n_events, strict=True):
        n, d, s = int(n), int(d), float(s)
        cum += d / (n * (n - d)) if n > d else math.inf
        lo = hi = None
        if 0 < s < 1 and math.isfinite(cum):
            se = math.sqrt(cum) / abs(math.log(s))
            lo, hi = s ** math.exp(_Z975 * se), s ** math.exp(-_Z975 * se)
        pts.append(KMPoint(float(t), n, d, s, lo, hi))
    median = km_median([p.time for p in pts], [p.survival for p in pts])
    return KMCurve(arm, int(time.size), int(event.sum()), median, tuple(pts))


# R survival's tolerance for "S(t) is 0.5" (minmin() in survfit's print method)
_MEDIAN_TOL = math.sqrt(np.finfo(np.float64).eps)


def km_median(times: Sequence[float], survival: Sequence[float]) -> float | None:
    """Median survival time of a Kaplan-Meier curve by R ``survfit``'s rule.

    ``times``/``survival``: the event times in increasing order and S just after each.
    The first time with S <= 0.5 + tol (tol = sqrt(eps) = 1.49e-8, as R); if S there is
    0.5 within tol and the curve later drops below it, the midpoint of that time and the
    first time S drops below it. None if S never reaches 0.5 (median not reached).
    """
    keep = [(t, s) for t, s in zip(times, survival, strict=True) if s < 0.5 + _MEDIAN_TOL]
    if not keep:
        return None
    t0, s0 = keep[0]
    if abs(s0 - 0.5) < _MEDIAN_TOL:
        later = [t for t, s in keep if s < s0]
        if later:
            return float((t0 + later[0]) / 2)
    return float(t0)


# |log HR| beyond this (HR outside 1e-9 … 1e9) or a SE beyond this means the partial
# likelihood kept rising towards infinity: the estimate is an artefact of separation.
_MAX_ABS_LOG_HR = 20.0
_MAX_LOG_HR_SE = 50.0


def _estimable(beta: float, se: float) -> bool:
    return (
        math.isfinite(beta)
        and math.isfinite(se)
        and abs(beta) <= _MAX_ABS_LOG_HR
        and se <= _MAX_LOG_HR_SE
    )


class _ArmEvent(Protocol):
    """An animal's arm and whether its time is an event (AnimalOnset, OnsetInterval)."""

    @property
    def arm(self) -> str: ...

    @property
    def event(self) -> bool: ...


def require_survival_data(
    animals: Sequence[_ArmEvent],
    *,
    control: str,
    treated: str,
    site: str,
    rule: str,
) -> None:
    """Refuse a survival comparison with fewer than 2 animals in an arm or no event at all."""
    for arm in (control, treated):
        n = sum(1 for x in animals if x.arm == arm)
        if n < 2:
            raise InsufficientDataError(
                f"arm {arm!r} has {n} animal(s) with usable data at site {site!r}; at least 2 "
                "are needed for survival analysis"
            )
    if not any(x.event for x in animals):
        raise InsufficientDataError(
            f"no animal of arm {control!r} or {treated!r} became positive at site {site!r} "
            f"({rule}); survival cannot be compared"
        )


def metastasis_free_survival(
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
    ties: Literal["efron", "breslow"] = "efron",
) -> SurvivalResult:
    """Kaplan-Meier, log-rank and Cox HR of time to site positivity, treated vs control.

    Times and censoring come from :func:`site_onsets` (event = onset; censored at the end
    record or last image). See :class:`SurvivalResult` for every field.
    """
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    if ties not in ("efron", "breslow"):
        raise InvalidInputError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    onsets = site_onsets(
        cohort,
        site=site,
        arms=(control, treated),
        threshold=threshold,
        background=background,
        background_multiple=background_multiple,
        consecutive=consecutive,
        exclude_flags=exclude_flags,
        death_is_event=death_is_event,
    )
    a = onsets.animals
    arm_arr = np.array([x.arm for x in a])
    time = np.array([x.time for x in a], dtype=np.float64)
    event = np.array([x.event for x in a], dtype=bool)
    require_survival_data(a, control=control, treated=treated, site=site, rule=onsets.rule)
    curves = tuple(
        kaplan_meier(arm, time[arm_arr == arm], event[arm_arr == arm]) for arm in (control, treated)
    )
    group = (arm_arr == treated).astype(int)
    chi2, p = survdiff(time, event.astype(int), group)
    logrank = TestResult("log-rank", float(chi2), 1.0, float(p))
    ev_c = int(event[group == 0].sum())
    ev_t = int(event[group == 1].sum())
    msgs: list[str] = []
    hr_name = f"hazard ratio ({treated} vs {control}), Cox PH, {ties} ties"
    if ev_c == 0 or ev_t == 0:
        msgs.append(
            f"all events are in arm {treated if ev_c == 0 else control!r}: the Cox hazard "
            "ratio is not estimable (monotone likelihood); see the log-rank test"
        )
        hr, cox = Effect(hr_name, None, None, None), None
    else:
        with recorded_warnings() as caught:
            res = PHReg(
                time, group[:, None].astype(float), status=event.astype(int), ties=ties
            ).fit()
        msgs.extend(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        beta, se = float(res.params[0]), float(res.bse[0])
        if not _estimable(beta, se):
            msgs.append(
                "the Cox fit has no finite hazard ratio (monotone likelihood: the arms' event "
                f"times are completely separated; log HR {beta:.3g}, SE {se:.3g}); "
                "see the log-rank test"
            )
            hr, cox = Effect(hr_name, None, None, None), None
        else:
            hr = Effect(
                hr_name,
                _f(math.exp(beta)),
                _f(math.exp(beta - _Z975 * se)),
                _f(math.exp(beta + _Z975 * se)),
            )
            cox = TestResult("Cox Wald z", beta / se, None, float(res.pvalues[0]))
    return SurvivalResult(
        control=control,
        treated=treated,
        site=site,
        rule=onsets.rule,
        ties=ties,
        n_control=int((group == 0).sum()),
        n_treated=int((group == 1).sum()),
        events_control=ev_c,
        events_treated=ev_t,
        curves=curves,
        logrank=logrank,
        hazard_ratio=hr,
        cox=cox,
        warnings=tuple(msgs),
        animals=a,
        exclusions=onsets.exclusions,
        adjustments=onsets.adjustments,
        death_is_event=death_is_event,
        censoring=_censoring_rule(death_is_event),
    )
