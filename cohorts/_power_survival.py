"""Power of the log-rank test for time to onset, by simulation.

Onset is the first imaging day on which an animal's site is positive (as
:func:`cohorts.site_onsets` finds it); arms are compared by the two-sided log-rank test
(:func:`cohorts.metastasis_free_survival`). Two models of onset in the control arm:

- :class:`OnsetDistribution`: the true onset time T is Weibull with median ``median_days``
  and shape k (k = 1: exponential), S(t) = exp(-(t / lambda)^k), lambda = median /
  ln(2)^(1/k). The treated arm's hazard is ``hazard_ratio`` x control's at every time
  (proportional hazards): S_treated = S_control^HR, i.e. lambda_treated = lambda HR^(-1/k).
- :class:`GrowthOnset`: the growth model of :mod:`cohorts._power` (a pilot's
  :class:`~cohorts.GrowthParameters`, as :func:`cohorts.fit_pilot` estimates them), each
  image positive when its simulated flux >= ``threshold`` (p/s), onset the first of
  ``consecutive`` positive images; the treatment slows growth (``slope_ratio`` or ``fold``
  as for growth power), so its hazard ratio is whatever the growth implies.

Observation (:class:`OnsetDesign`): onset is seen only on imaging days (``interval_days``
from ``first_day`` up to ``follow_up_days``): an onset between two images is recorded on the
next image, so onset days tie as in the real analysis; ``interval_days=None`` observes
continuously (the setting of Schoenfeld's formula). An animal drops out (death, humane
endpoint) at an exponential time with rate ``dropout_per_day`` and is censored then (an
onset it would have shown at a later image is not seen); animals without onset are censored
at the end of follow-up (administrative censoring).

Each simulated study is analysed by the log-rank test (Mantel-Cox, hypergeometric variance
with ties, as R ``survdiff``, lifelines ``logrank_test`` and statsmodels ``survdiff``),
vectorised over the simulated studies (:func:`logrank_rows`; equal to lifelines on random
data with ties to 1e-10 relative, tested); a study without any event is not a rejection.
With continuous observation and proportional hazards the power approaches Schoenfeld's
(1981) formula Phi(|log HR| sqrt(D p (1 - p)) - z_(1 - alpha/2)), D the number of events,
p = 1/2 the share of animals treated (:func:`schoenfeld_power`, given beside the simulation
at the simulated mean number of events).

References: Schoenfeld D (1981) The asymptotic properties of nonparametric tests for
comparing survival distributions. Biometrika 68:316-319. Mantel N (1966) Cancer Chemother
Rep 50:163-170.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._data import _AsDict
from ._errors import InvalidInputError
from ._power import (
    CHUNK,
    GrowthParameters,
    StudyDesign,
    _wilson,
    check_simulation,
    treated_slope,
)

__all__ = [
    "GrowthOnset",
    "OnsetDesign",
    "OnsetDistribution",
    "OnsetPowerRow",
    "OnsetPowerTable",
    "logrank_rows",
    "schoenfeld_power",
    "simulate_onset_power",
]

LOGRANK_TEST = (
    "log-rank test (Mantel-Cox, ties by the hypergeometric variance, as R survdiff) of time "
    "to onset {observed}, two-sided at alpha = {alpha:g}"
)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class OnsetDistribution(_AsDict):
    """Onset time in the control arm: Weibull with median ``median_days`` and ``shape`` k
    (1 = exponential); ``dropout_per_day``: exponential dropout rate (1/day, both arms)."""

    median_days: float
    shape: float = 1.0
    dropout_per_day: float = 0.0

    def check(self) -> None:
        if not (math.isfinite(self.median_days) and self.median_days > 0):
            raise InvalidInputError(f"median_days must be > 0, got {self.median_days!r}")
        if not (math.isfinite(self.shape) and 0.05 <= self.shape <= 20):
            raise InvalidInputError(f"shape must be in [0.05, 20], got {self.shape!r}")
        if not (math.isfinite(self.dropout_per_day) and self.dropout_per_day >= 0):
            raise InvalidInputError(f"dropout_per_day must be >= 0, got {self.dropout_per_day!r}")

    @property
    def scale_days(self) -> float:
        """Weibull scale lambda = median / ln(2)^(1/k) (days)."""
        return self.median_days / math.log(2) ** (1 / self.shape)


@dataclass(frozen=True, slots=True)
class GrowthOnset(_AsDict):
    """Onset from simulated growth: an image is positive when its flux >= ``threshold``
    (p/s); onset on the first of ``consecutive`` positive images. ``parameters``: the control
    arm's growth (log10 scale) and dropout, e.g. :attr:`cohorts.PilotFit.parameters`."""

    parameters: GrowthParameters
    threshold: float
    consecutive: int = 1

    def check(self) -> None:
        self.parameters.check()
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise InvalidInputError(f"threshold must be > 0 (p/s), got {self.threshold!r}")
        if not isinstance(self.consecutive, int) or self.consecutive < 1:
            raise InvalidInputError(f"consecutive must be an integer >= 1, got {self.consecutive}")


@dataclass(frozen=True, slots=True)
class OnsetDesign(_AsDict):
    """A planned study: ``n_per_arm`` animals in each of two arms, followed to
    ``follow_up_days`` (days since injection), imaged every ``interval_days`` from
    ``first_day`` (None: onset seen the moment it happens)."""

    n_per_arm: int
    follow_up_days: float
    interval_days: float | None = None
    first_day: float = 0.0

    @property
    def days(self) -> np.ndarray | None:
        """Imaging days up to the end of follow-up (None: continuous observation)."""
        imaged = self._imaged()
        return None if imaged is None else imaged.days

    @property
    def n_images(self) -> int | None:
        """How many imaging days :attr:`days` holds (None: continuous), none made."""
        imaged = self._imaged()
        return None if imaged is None else imaged.n_images

    def _imaged(self) -> StudyDesign | None:
        if self.interval_days is None:
            return None
        return StudyDesign(self.n_per_arm, self.interval_days, self.follow_up_days, self.first_day)

    def stream(self, seed: int) -> np.random.SeedSequence:
        """This design's random stream under ``seed`` (as :meth:`StudyDesign.stream`; a
        continuous design is keyed with interval 0)."""
        interval = 0.0 if self.interval_days is None else self.interval_days
        key = (
            self.n_per_arm,
            *(round(v * 1e6) for v in (interval, self.follow_up_days, self.first_day)),
        )
        return np.random.SeedSequence(seed, spawn_key=key)

    def check(self) -> None:
        if self.n_per_arm < 2:
            raise InvalidInputError(f"n_per_arm must be >= 2, got {self.n_per_arm}")
        if not (math.isfinite(self.first_day) and self.first_day >= 0):
            raise InvalidInputError(f"first_day must be >= 0, got {self.first_day}")
        if not (math.isfinite(self.follow_up_days) and self.follow_up_days > self.first_day):
            raise InvalidInputError(
                f"follow_up_days must be after first_day ({self.first_day:g}), got "
                f"{self.follow_up_days!r}"
            )
        if self.interval_days is not None and not (
            math.isfinite(self.interval_days) and self.interval_days > 0
        ):
            raise InvalidInputError(f"interval_days must be > 0, got {self.interval_days}")


@dataclass(frozen=True, slots=True)
class OnsetPowerRow(_AsDict):
    """Power of one design: ``power`` = share of ``n_sim`` simulated studies whose log-rank
    p < alpha, ``mc_se`` = sqrt(power (1 - power) / n_sim), ``ci_low``/``ci_high`` its 95 %
    Wilson interval. ``n_images``: imaging days (None: continuous). ``expected_events``:
    mean number of onsets seen per study (both arms), ``expected_events_control`` /
    ``_treated`` per arm; ``studies_without_events``: share of studies with no onset (never
    a rejection). ``schoenfeld_power``: Schoenfeld's approximation at ``expected_events``
    (only when the hazard ratio is given)."""

    n_per_arm: int
    interval_days: float | None
    follow_up_days: float
    n_images: int | None
    power: float
    mc_se: float
    ci_low: float
    ci_high: float
    expected_events: float
    expected_events_control: float
    expected_events_treated: float
    studies_without_events: float
    schoenfeld_power: float | None


@dataclass(frozen=True, slots=True)
class OnsetPowerTable(_AsDict):
    """Power by design. ``model``: the onset model; ``hazard_ratio``: treated vs control
    (None when the effect is on growth); ``effect`` says how the effect was given; ``test``
    the analysis of each simulated study; ``seed`` reproduces the table."""

    model: OnsetDistribution | GrowthOnset
    effect: str
    hazard_ratio: float | None
    test: str
    alpha: float
    n_sim: int
    seed: int
    rows: tuple[OnsetPowerRow, ...]


def schoenfeld_power(
    hazard_ratio: float, events: float, *, alpha: float = 0.05, allocation: float = 0.5
) -> float:
    """Schoenfeld's (1981) power of the two-sided log-rank test with ``events`` events:
    Phi(|log HR| sqrt(D p (1 - p)) - z_(1 - alpha/2)), p the share of animals treated."""
    z = stats.norm.ppf(1 - alpha / 2)
    return float(
        stats.norm.cdf(
            abs(math.log(hazard_ratio)) * math.sqrt(events * allocation * (1 - allocation)) - z
        )
    )


def logrank_rows(
    time: np.ndarray, event: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample log-rank statistic of every row (one simulated study per row).

    Parameters
    ----------
    time : (m, N) float array
        Event or censoring times.
    event : (m, N) bool array
        True where the time is an event.
    group : (N,) or (m, N) bool array
        True for the second arm (treated).

    Returns
    -------
    chi2, u : (m,) float arrays
        ``u`` = O - E of the treated arm summed over distinct event times, V = sum of
        d (n1 / n) (1 - n1 / n) (n - d) / (n - 1) (ties: hypergeometric variance), chi2 =
        u^2 / V; NaN where V = 0 (no event, or every event with one arm only at risk).
        An animal censored at an event time counts as at risk then.
    """
    time = np.asarray(time, dtype=np.float64)
    m, n_total = time.shape
    order = np.argsort(time, axis=1, kind="stable")
    t = np.take_along_axis(time, order, axis=1)
    e = np.take_along_axis(np.asarray(event, dtype=bool), order, axis=1)
    g = np.take_along_axis(np.broadcast_to(np.asarray(group, dtype=bool), time.shape), order, 1)
    change = t[:, 1:] != t[:, :-1]
    is_start = np.concatenate([np.ones((m, 1), dtype=bool), change], axis=1)
    is_end = np.concatenate([change, np.ones((m, 1), dtype=bool)], axis=1)
    position = np.arange(n_total)
    start = np.maximum.accumulate(np.where(is_start, position, 0), axis=1)
    zero = np.zeros((m, 1))
    g_before = np.concatenate([zero, np.cumsum(g, axis=1, dtype=np.float64)[:, :-1]], axis=1)
    cum_e = np.cumsum(e, axis=1, dtype=np.float64)
    cum_e1 = np.cumsum(e & g, axis=1, dtype=np.float64)
    e_before = np.concatenate([zero, cum_e[:, :-1]], axis=1)
    e1_before = np.concatenate([zero, cum_e1[:, :-1]], axis=1)
    # at the last element of each block of tied times: the block's counts
    at_risk = (n_total - start).astype(np.float64)
    at_risk1 = g.sum(axis=1, dtype=np.float64)[:, None] - np.take_along_axis(g_before, start, 1)
    d = cum_e - np.take_along_axis(e_before, start, 1)
    d1 = cum_e1 - np.take_along_axis(e1_before, start, 1)
    share = at_risk1 / at_risk
    u = np.where(is_end, d1 - d * share, 0.0).sum(axis=1)
    var = d * share * (1 - share) * (at_risk - d) / np.maximum(at_risk - 1, 1)
    v = np.where(is_end, var, 0.0).sum(axis=1)
    chi2 = np.divide(u * u, v, out=np.full(m, np.nan), where=v > 1e-12)
    return chi2, u


def _dropout(rate: float, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if rate > 0:
        return rng.exponential(1.0 / rate, shape)
    return np.full(shape, np.inf)


def _observe(
    onset: np.ndarray, dropout: np.ndarray, design: OnsetDesign, days: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(time, event) of true onset times as the design sees them."""
    end = np.minimum(dropout, design.follow_up_days)
    if days is None:
        event = onset <= end
        return np.where(event, onset, end), event
    index = np.searchsorted(days, onset, side="left")
    seen_on = days[np.minimum(index, days.size - 1)]
    event = (index < days.size) & (seen_on <= end)
    return np.where(event, seen_on, end), event


def _distribution_arm(
    model: OnsetDistribution,
    hazard_ratio: float,
    design: OnsetDesign,
    days: np.ndarray | None,
    m: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    n = design.n_per_arm
    onset = model.scale_days * (rng.standard_exponential((m, n)) / hazard_ratio) ** (
        1 / model.shape
    )
    return _observe(onset, _dropout(model.dropout_per_day, (m, n), rng), design, days)


def _growth_arm(
    model: GrowthOnset,
    mean_slope: float,
    design: OnsetDesign,
    days: np.ndarray,
    m: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    p, n, k = model.parameters, design.n_per_arm, model.consecutive
    z0 = rng.standard_normal((m, n))
    z1 = rng.standard_normal((m, n))
    u0 = p.sd_intercept * z0
    u1 = p.sd_slope * (p.correlation * z0 + math.sqrt(max(1 - p.correlation**2, 0.0)) * z1)
    e = p.sd_residual * rng.standard_normal((m, n, days.size))
    y = (p.intercept + u0)[..., None] + (mean_slope + u1)[..., None] * days + e
    dropout = _dropout(p.dropout_per_day, (m, n), rng)
    positive = (y >= math.log10(model.threshold)) & (days <= dropout[..., None])
    if days.size < k:
        run = np.zeros((m, n, 0), dtype=bool)
    else:
        count = np.concatenate(
            [np.zeros((m, n, 1)), np.cumsum(positive, axis=2, dtype=np.float64)], axis=2
        )
        run = (count[..., k:] - count[..., :-k]) == k
    event = np.asarray(run.any(axis=2), dtype=bool)
    first = days[: run.shape[2]][np.argmax(run, axis=2)] if run.shape[2] else np.zeros((m, n))
    end = np.minimum(dropout, design.follow_up_days)
    return np.where(event, first, end), event


def simulate_onset_power(
    model: OnsetDistribution | GrowthOnset,
    designs: Sequence[OnsetDesign],
    *,
    hazard_ratio: float | None = None,
    slope_ratio: float | None = None,
    fold: float | None = None,
    fold_day: float | None = None,
    alpha: float = 0.05,
    n_sim: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> OnsetPowerTable:
    """Power of the log-rank test of time to onset for each design, by simulating ``n_sim``
    studies per design (module docstring for the models).

    Parameters
    ----------
    model : OnsetDistribution or GrowthOnset
        The control arm's onset.
    designs : sequence of OnsetDesign
    hazard_ratio : float, optional
        Treated / control hazard (with :class:`OnsetDistribution` only; < 1: later onset).
    slope_ratio, fold, fold_day : float, optional
        The treatment's effect on growth (with :class:`GrowthOnset` only), as
        :func:`cohorts.simulate_power` takes it.
    alpha : float
        Two-sided significance level.
    n_sim : int
        Simulated studies per design (>= 10).
    seed : int
        Seed; each design has its own stream derived from the seed and the design
        (:meth:`OnsetDesign.stream`), so a design's power does not depend on the others.
    progress : callable(done, total), optional
        Called after each design (for background jobs).

    Returns
    -------
    OnsetPowerTable
    """
    model.check()
    check_simulation(designs, alpha=alpha, n_sim=n_sim, seed=seed)
    slope_t = 0.0
    if isinstance(model, OnsetDistribution):
        if slope_ratio is not None or fold is not None:
            raise InvalidInputError(
                "an onset distribution takes the effect as hazard_ratio, not slope_ratio/fold"
            )
        if hazard_ratio is None or not (math.isfinite(hazard_ratio) and hazard_ratio > 0):
            raise InvalidInputError(f"hazard_ratio must be > 0, got {hazard_ratio!r}")
        effect = f"treated hazard of onset = {hazard_ratio:g} x control"
    else:
        if hazard_ratio is not None:
            raise InvalidInputError(
                "onset from growth takes the effect on growth (slope_ratio or fold), not "
                "hazard_ratio: the hazard ratio follows from the growth"
            )
        slope_t, effect = treated_slope(
            model.parameters, slope_ratio=slope_ratio, fold=fold, fold_day=fold_day
        )
        if any(d.interval_days is None for d in designs):
            raise InvalidInputError("onset from growth is seen on imaging days: give interval_days")
    crit = float(stats.chi2.isf(alpha, 1))
    rows = []
    for i, design in enumerate(designs):
        rng = np.random.default_rng(design.stream(seed))
        days, n = design.days, design.n_per_arm
        group = np.repeat([False, True], n)
        hits = 0
        events_c = events_t = 0.0
        no_events = 0
        for start in range(0, n_sim, CHUNK):
            m = min(CHUNK, n_sim - start)
            if isinstance(model, OnsetDistribution):
                assert hazard_ratio is not None
                tc, ec = _distribution_arm(model, 1.0, design, days, m, rng)
                tt, et = _distribution_arm(model, hazard_ratio, design, days, m, rng)
            else:
                assert days is not None
                growth = model.parameters.growth_rate
                tc, ec = _growth_arm(model, growth, design, days, m, rng)
                tt, et = _growth_arm(model, slope_t, design, days, m, rng)
            chi2, _ = logrank_rows(np.hstack([tc, tt]), np.hstack([ec, et]), group)
            hits += int(np.sum(chi2 > crit))  # NaN (no event) is not a rejection
            events_c += float(ec.sum())
            events_t += float(et.sum())
            no_events += int(np.sum(~(ec.any(axis=1) | et.any(axis=1))))
        power = hits / n_sim
        lo, hi = _wilson(power, n_sim)
        mean_events = (events_c + events_t) / n_sim
        rows.append(
            OnsetPowerRow(
                n_per_arm=n,
                interval_days=design.interval_days,
                follow_up_days=design.follow_up_days,
                n_images=None if days is None else int(days.size),
                power=power,
                mc_se=math.sqrt(power * (1 - power) / n_sim),
                ci_low=lo,
                ci_high=hi,
                expected_events=mean_events,
                expected_events_control=events_c / n_sim,
                expected_events_treated=events_t / n_sim,
                studies_without_events=no_events / n_sim,
                schoenfeld_power=None
                if hazard_ratio is None
                else schoenfeld_power(hazard_ratio, mean_events, alpha=alpha),
            )
        )
        if progress is not None:
            progress(i + 1, len(designs))
    observed = (
        "seen on imaging days"
        if all(d.interval_days is not None for d in designs)
        else "seen on imaging days (continuously in the designs without an imaging interval)"
    )
    return OnsetPowerTable(
        model=model,
        effect=effect,
        hazard_ratio=hazard_ratio,
        test=LOGRANK_TEST.format(observed=observed, alpha=alpha),
        alpha=alpha,
        n_sim=n_sim,
        seed=seed,
        rows=tuple(rows),
    )
