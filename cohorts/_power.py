"""Power and sample size of a BLI growth study by simulation from a pilot.

Data model (the growth model of :func:`cohorts.fit_growth_model`, one arm), for animal i
imaged on day t::

    y_it = log10 flux = (b0 + u0_i) + (b1 + u1_i) t + e_it,
    (u0_i, u1_i) ~ N(0, G),   e_it ~ N(0, sigma^2)

G from ``sd_intercept``, ``sd_slope`` and ``correlation``. The treated arm's mean slope is
``slope_ratio`` x b1, or b1 - log10(fold) / day to end ``fold`` times lower on ``day``
(arms randomised, so equal mean intercepts); variances are the same in both arms. Each
animal drops out (death, humane endpoint) at an exponential time with rate
``dropout_per_day`` and is imaged up to then.

Analysis of each simulated study (the fast test, documented in :data:`SLOPE_TEST`): the
per-animal least-squares slope of log10 flux over its images (animals with >= 2 images),
compared between arms by Welch's t test (default; ``test="student"`` for the pooled t
test), two-sided at ``alpha``. With every animal imaged on the same days (no dropout) the
animal slopes are independent with variance sd_slope^2 + sigma^2 / Sxx, Sxx =
sum (t - tbar)^2, and this test is the mixed model's slope test (for balanced data the
REML slope contrast equals the difference of mean OLS slopes and its Kenward–Roger test
is the pooled t test on 2n - 2 df); the pooled-t power is then exact from the noncentral t
(:func:`slope_test_power`), which the simulation reproduces within Monte Carlo error. With
dropout the animals' slopes have unequal precision and the summary test is slightly
conservative compared with the mixed model, which weights each animal by its precision:
an animal lost after two close images counts as much as one imaged throughout, so with
dropout more frequent imaging can even lower the simulated power (``min_images`` leaves
such short series out, as an analysis plan may).

The simulation is vectorised (all studies of a design at once, in chunks of
:data:`CHUNK` studies); the work is about n_sim x 2 n x images per design. A progress
callback ``progress(done_designs, total_designs)`` lets a background job report progress.

Why one long module: the pilot fit, the analytic power and the simulation are three
views of the one data model above — they share its parameters (:class:`GrowthParameters`),
the design (:class:`StudyDesign`) and the slope test, and the analytic power is the check on
the simulation; a fifth of the module is the documentation of that model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import stats

from ._data import Cohort, _AsDict, prepare, require_animals
from ._errors import InsufficientDataError, InvalidInputError
from ._lmm import fit_lmm

__all__ = [
    "GrowthParameters",
    "PilotFit",
    "PowerRow",
    "PowerTable",
    "StudyDesign",
    "fit_pilot",
    "simulate_power",
    "slope_test_power",
]

SLOPE_TEST = (
    "per-animal least-squares slope of log10 flux (animals with >= {min_images} images), "
    "arms compared by a two-sided {test} t test at alpha = {alpha:g}"
)
CHUNK = 500
TEST_NAMES = {"welch": "Welch", "student": "pooled (Student)"}
DROPOUT_REASONS = frozenset({"death", "humane_endpoint", "withdrawn"})

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class GrowthParameters(_AsDict):
    """The control arm's growth on the log10 scale: ``intercept`` (log10 p/s at day 0),
    ``growth_rate`` (log10 per day), between-animal SDs ``sd_intercept`` (log10) and
    ``sd_slope`` (log10 per day) with their ``correlation``, residual SD ``sd_residual``
    (log10; image-to-image noise), and ``dropout_per_day`` (exponential dropout rate, 1/day;
    0 = none)."""

    intercept: float
    growth_rate: float
    sd_intercept: float
    sd_slope: float
    sd_residual: float
    correlation: float = 0.0
    dropout_per_day: float = 0.0

    def check(self) -> None:
        """Raise InvalidInputError naming the first impossible value."""
        for name in ("intercept", "growth_rate"):
            if not math.isfinite(getattr(self, name)):
                raise InvalidInputError(f"{name} must be finite")
        for name in ("sd_intercept", "sd_slope", "sd_residual", "dropout_per_day"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InvalidInputError(f"{name} must be >= 0, got {v!r}")
        if not -1 <= self.correlation <= 1:
            raise InvalidInputError(f"correlation must be in [-1, 1], got {self.correlation}")


@dataclass(frozen=True, slots=True)
class PilotFit(_AsDict):
    """Growth parameters estimated from one arm of a pilot (or a study's control arm).

    The REML fit of ``y = b0 + b1 day + u0_i + u1_i day + e`` (random-effects structure
    reduced as :func:`cohorts.fit_growth_model` does when singular; ``random_effects`` is
    the one reported); ``dropout_per_day`` = dropouts / animal-days at risk (exponential
    maximum likelihood), a dropout being an end record ``death``, ``humane_endpoint`` or
    ``withdrawn`` (not ``study_end``), the time at risk running from each animal's first
    image to its end or last image. ``days``: the imaging days of the pilot.
    """

    arm: str
    site: str
    n_animals: int
    n_observations: int
    days: tuple[float, ...]
    random_effects: str
    parameters: GrowthParameters
    n_dropouts: int
    animal_days_at_risk: float
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StudyDesign(_AsDict):
    """A planned study: ``n_per_arm`` animals in each of two arms, imaged every
    ``interval_days`` from ``first_day`` up to ``length_days`` (days since injection)."""

    n_per_arm: int
    interval_days: float
    length_days: float
    first_day: float = 0.0

    @property
    def n_images(self) -> int:
        """How many imaging days :attr:`days` holds, counted without making them (a bound
        on the work can then refuse a grid of billions of days before allocating it)."""
        return math.floor((self.length_days - self.first_day) / self.interval_days + 1e-9) + 1

    @property
    def days(self) -> np.ndarray:
        return self.first_day + self.interval_days * np.arange(self.n_images, dtype=np.float64)

    def stream(self, seed: int) -> np.random.SeedSequence:
        """The random stream of this design under ``seed``: a child of
        ``SeedSequence(seed)`` keyed by n per arm and the days in millionths of a day."""
        key = (
            self.n_per_arm,
            *(round(v * 1e6) for v in (self.interval_days, self.length_days, self.first_day)),
        )
        return np.random.SeedSequence(seed, spawn_key=key)

    def check(self) -> None:
        if self.n_per_arm < 2:
            raise InvalidInputError(f"n_per_arm must be >= 2, got {self.n_per_arm}")
        if not (math.isfinite(self.interval_days) and self.interval_days > 0):
            raise InvalidInputError(f"interval_days must be > 0, got {self.interval_days}")
        if not math.isfinite(self.length_days) or self.n_images < 2:
            raise InvalidInputError(
                f"a study from day {self.first_day:g} to {self.length_days:g} imaged every "
                f"{self.interval_days:g} days has fewer than 2 imaging days: no slope"
            )


@dataclass(frozen=True, slots=True)
class PowerRow(_AsDict):
    """Power of one design: ``power`` = share of ``n_sim`` simulated studies with p <
    alpha, ``mc_se`` = sqrt(power (1 - power) / n_sim), ``ci_low``/``ci_high`` its 95 %
    Wilson interval; ``n_images`` per animal, ``mean_animals_analysed`` per arm (after
    dropout); ``analytic_power``: the pooled-t power without dropout
    (:func:`slope_test_power`), a check on the simulation."""

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


@dataclass(frozen=True, slots=True)
class PowerTable(_AsDict):
    """Power by design. ``control_slope`` and ``treated_slope`` (log10 per day) are the
    arms' mean growth rates simulated; ``effect`` says how the effect was given; ``test``
    the analysis of each simulated study; ``seed`` reproduces the table."""

    parameters: GrowthParameters
    effect: str
    control_slope: float
    treated_slope: float
    test: str
    alpha: float
    n_sim: int
    seed: int
    rows: tuple[PowerRow, ...]


def fit_pilot(
    cohort: Cohort,
    *,
    arm: str,
    site: str = "whole_body",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
) -> PilotFit:
    """Estimate :class:`GrowthParameters` from one arm of a cohort (log10 scale).

    Values are prepared as for every analysis (QC exclusions, duplicates averaged,
    ``floor``), then the mixed model is fitted by REML (:mod:`cohorts._lmm`).
    """
    from ._mixed import _reduce

    prep = prepare(
        cohort, arms=(arm,), site=site, scale="log10", floor=floor, exclude_flags=exclude_flags
    )
    df = prep.frame
    require_animals(df, arm, "a pilot fit", minimum=3)
    day = df["day"].to_numpy(dtype=np.float64)
    if np.unique(day).size < 2:
        raise InsufficientDataError(f"arm {arm!r} was imaged on one day only: no growth rate")
    y = df["y"].to_numpy(dtype=np.float64)
    x = np.column_stack([np.ones(day.size), day])
    groups = df["animal"].to_numpy()
    structure = "intercept_slope"
    warnings = []
    while True:
        fit = fit_lmm(y, x, day, groups, structure=structure, reml=True)
        if fit is None:
            raise InsufficientDataError(f"the pilot model of arm {arm!r} could not be fitted")
        if not fit.singular or structure == "none":
            break
        structure, why = _reduce(fit)
        warnings.append(why)
    g = fit.g
    sd0 = sd1 = 0.0
    corr = 0.0
    if structure in ("intercept_slope", "intercept_slope_uncorrelated"):
        sd0, sd1 = math.sqrt(g[0, 0]), math.sqrt(g[1, 1])
        if structure == "intercept_slope" and sd0 * sd1 > 0:
            corr = float(g[0, 1] / (sd0 * sd1))
    elif structure == "intercept":
        sd0 = math.sqrt(g[0, 0])
    elif structure == "slope":
        sd1 = math.sqrt(g[0, 0])
    if not fit.converged:
        warnings.append("the optimiser did not reach a stationary point")
    ends = {e.animal: e for e in cohort.ends}
    events, at_risk = 0, 0.0
    for animal, sub in df.groupby("animal", sort=True):
        first, last = float(sub["day"].min()), float(sub["day"].max())
        end = ends.get(str(animal))
        if end is not None and end.reason in DROPOUT_REASONS:
            events += 1
            last = max(end.day, first)
        at_risk += last - first
    dropout = events / at_risk if at_risk > 0 else 0.0
    return PilotFit(
        arm=arm,
        site=site,
        n_animals=int(df["animal"].nunique()),
        n_observations=len(df),
        days=tuple(float(d) for d in np.unique(day)),
        random_effects=structure,
        parameters=GrowthParameters(
            intercept=float(fit.beta[0]),
            growth_rate=float(fit.beta[1]),
            sd_intercept=sd0,
            sd_slope=sd1,
            sd_residual=math.sqrt(fit.sigma2),
            correlation=corr,
            dropout_per_day=dropout,
        ),
        n_dropouts=events,
        animal_days_at_risk=at_risk,
        warnings=tuple(warnings),
    )


def treated_slope(
    params: GrowthParameters,
    *,
    slope_ratio: float | None = None,
    fold: float | None = None,
    fold_day: float | None = None,
) -> tuple[float, str]:
    """The treated arm's mean slope (log10/day) and a sentence saying how it was set."""
    if (slope_ratio is None) == (fold is None):
        raise InvalidInputError("give the effect as slope_ratio or as fold (with fold_day)")
    if slope_ratio is not None:
        if not (math.isfinite(slope_ratio) and slope_ratio >= 0):
            raise InvalidInputError(f"slope_ratio must be >= 0, got {slope_ratio}")
        return (
            params.growth_rate * slope_ratio,
            f"treated growth rate = {slope_ratio:g} x control ({params.growth_rate:.4g} log10/day)",
        )
    assert fold is not None
    if not (math.isfinite(fold) and fold > 0):
        raise InvalidInputError(f"fold must be > 0, got {fold}")
    if fold_day is None or not (math.isfinite(fold_day) and fold_day > 0):
        raise InvalidInputError("fold needs fold_day > 0: the day at which the arms differ")
    return (
        params.growth_rate - math.log10(fold) / fold_day,
        f"treated mean flux {fold:g}-fold below control on day {fold_day:g}",
    )


def slope_test_power(
    params: GrowthParameters, design: StudyDesign, slope_difference: float, *, alpha: float = 0.05
) -> float:
    """Exact power of the pooled two-sample t test on per-animal slopes without dropout.

    Animal slopes have variance v = sd_slope^2 + sd_residual^2 / Sxx (Sxx over the design's
    imaging days); with n per arm, t has a noncentral t distribution with 2n - 2 df and
    noncentrality delta / sqrt(2 v / n); power = P(|T| > t(1 - alpha/2, 2n - 2)).
    """
    t = design.days
    sxx = float(((t - t.mean()) ** 2).sum())
    v = params.sd_slope**2 + params.sd_residual**2 / sxx
    n = design.n_per_arm
    df = 2 * n - 2
    if v == 0:
        return 1.0 if slope_difference != 0 else alpha
    nc = slope_difference / math.sqrt(2 * v / n)
    if abs(nc) > 1e6:  # past scipy's noncentral t (NaN from ~1e10); power is 1 to 1e-16
        return 1.0
    crit = stats.t.ppf(1 - alpha / 2, df)
    # P(T < -crit) as P(-T > crit), -T noncentral t with -nc: scipy's nct.cdf gives NaN in
    # its far left tail for a moderate positive nc (e.g. 10 with 18 df), its sf does not
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def _simulate_slopes(
    params: GrowthParameters,
    days: np.ndarray,
    mean_slope: float,
    n_sim: int,
    n: int,
    rng: np.random.Generator,
    min_images: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-animal OLS slopes (n_sim x n) and whether each counts (>= min_images images)."""
    sd0, sd1, r = params.sd_intercept, params.sd_slope, params.correlation
    z0 = rng.standard_normal((n_sim, n))
    z1 = rng.standard_normal((n_sim, n))
    u0 = sd0 * z0
    u1 = sd1 * (r * z0 + math.sqrt(max(1 - r * r, 0.0)) * z1)
    e = params.sd_residual * rng.standard_normal((n_sim, n, days.size))
    y = (params.intercept + u0)[..., None] + (mean_slope + u1)[..., None] * days + e
    if params.dropout_per_day > 0:
        until = rng.exponential(1.0 / params.dropout_per_day, (n_sim, n))
        seen = (days <= until[..., None]).astype(np.float64)
    else:
        seen = np.ones_like(y)
    k = seen.sum(axis=2)
    tbar = np.divide((seen * days).sum(axis=2), k, out=np.zeros_like(k), where=k > 0)
    ybar = np.divide((seen * y).sum(axis=2), k, out=np.zeros_like(k), where=k > 0)
    dt = (days - tbar[..., None]) * seen
    sxx = (dt * dt).sum(axis=2)
    ok = (k >= min_images) & (sxx > 0)
    sxy = (dt * (y - ybar[..., None])).sum(axis=2)
    return np.divide(sxy, sxx, out=np.zeros_like(sxx), where=ok), ok


def _two_sample_p(
    a: np.ndarray, a_ok: np.ndarray, b: np.ndarray, b_ok: np.ndarray, test: str
) -> np.ndarray:
    """Two-sided p per row (NaN where an arm has < 2 slopes or no spread)."""
    na, nb = a_ok.sum(axis=1).astype(np.float64), b_ok.sum(axis=1).astype(np.float64)
    good = (na >= 2) & (nb >= 2)
    na_, nb_ = np.where(good, na, 2.0), np.where(good, nb, 2.0)
    ma = (a * a_ok).sum(axis=1) / na_
    mb = (b * b_ok).sum(axis=1) / nb_
    va = (((a - ma[:, None]) * a_ok) ** 2).sum(axis=1) / (na_ - 1)
    vb = (((b - mb[:, None]) * b_ok) ** 2).sum(axis=1) / (nb_ - 1)
    if test == "welch":
        se2 = va / na_ + vb / nb_
        den = (va / na_) ** 2 / (na_ - 1) + (vb / nb_) ** 2 / (nb_ - 1)
        df = np.divide(se2**2, den, out=np.ones_like(se2), where=den > 0)
    else:
        pooled = ((na_ - 1) * va + (nb_ - 1) * vb) / (na_ + nb_ - 2)
        se2 = pooled * (1 / na_ + 1 / nb_)
        df = na_ + nb_ - 2
    good &= se2 > 0
    t = np.divide(ma - mb, np.sqrt(se2), out=np.zeros_like(se2), where=good)
    p = 2 * stats.t.sf(np.abs(t), df)
    return np.where(good, p, np.nan)


def _wilson(p: float, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    # p itself is always inside (at p = 0 or 1 one bound equals p up to rounding)
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


class _Checked(Protocol):
    def check(self) -> None: ...


def check_simulation(designs: Sequence[_Checked], *, alpha: float, n_sim: int, seed: int) -> None:
    """The inputs every power simulation shares: designs (each checked), alpha, n_sim, seed."""
    if not designs:
        raise InvalidInputError("give at least one design")
    for d in designs:
        d.check()
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
    if n_sim < 10:
        raise InvalidInputError(f"n_sim must be >= 10, got {n_sim}")
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed}")


def simulate_power(
    params: GrowthParameters,
    designs: Sequence[StudyDesign],
    *,
    slope_ratio: float | None = None,
    fold: float | None = None,
    fold_day: float | None = None,
    alpha: float = 0.05,
    test: Literal["welch", "student"] = "welch",
    n_sim: int = 1000,
    seed: int = 0,
    min_images: int = 2,
    progress: ProgressCallback | None = None,
) -> PowerTable:
    """Power of each design to detect the effect, by simulating ``n_sim`` studies.

    Parameters
    ----------
    params : GrowthParameters
        The control arm (e.g. :attr:`PilotFit.parameters`).
    designs : sequence of StudyDesign
    slope_ratio : float, optional
        Treated / control mean growth rate (e.g. 0.5: growth halved).
    fold, fold_day : float, optional
        Instead: the treated arm's geometric-mean flux ``fold`` times below control on
        ``fold_day`` (a constant difference in growth rate, log10(fold) / fold_day).
    alpha : float
        Two-sided significance level.
    test : {"welch", "student"}
        Two-sample t test on the animal slopes (module docstring).
    n_sim : int
        Simulated studies per design.
    seed : int
        Seed of ``numpy.random.default_rng``. Each design has its own stream, derived from
        the seed and the design itself (:meth:`StudyDesign.stream`), so a design's power does
        not depend on the other designs asked for nor on their order: a long grid can be
        split into one call per design (e.g. the steps of a background job) with the same
        result.
    min_images : int
        Images an animal needs for its slope to count (>= 2; see the module docstring on
        dropout).
    progress : callable(done, total), optional
        Called after each design (for background jobs).

    Returns
    -------
    PowerTable
    """
    params.check()
    check_simulation(designs, alpha=alpha, n_sim=n_sim, seed=seed)
    if test not in ("welch", "student"):
        raise InvalidInputError(f"test must be 'welch' or 'student', got {test!r}")
    if min_images < 2:
        raise InvalidInputError(f"min_images must be >= 2 (a slope needs two), got {min_images}")
    slope_t, effect = treated_slope(params, slope_ratio=slope_ratio, fold=fold, fold_day=fold_day)
    rows = []
    for i, design in enumerate(designs):
        rng = np.random.default_rng(design.stream(seed))
        days, n = design.days, design.n_per_arm
        hits = 0
        analysed = 0.0
        for start in range(0, n_sim, CHUNK):
            m = min(CHUNK, n_sim - start)
            c, c_ok = _simulate_slopes(params, days, params.growth_rate, m, n, rng, min_images)
            t, t_ok = _simulate_slopes(params, days, slope_t, m, n, rng, min_images)
            p = _two_sample_p(t, t_ok, c, c_ok, test)
            hits += int(np.sum(p < alpha))  # NaN (study not analysable) is not a rejection
            analysed += float(c_ok.sum() + t_ok.sum()) / 2
        power = hits / n_sim
        lo, hi = _wilson(power, n_sim)
        rows.append(
            PowerRow(
                n_per_arm=n,
                interval_days=design.interval_days,
                length_days=design.length_days,
                n_images=int(days.size),
                power=power,
                mc_se=math.sqrt(power * (1 - power) / n_sim),
                ci_low=lo,
                ci_high=hi,
                mean_animals_analysed=analysed / n_sim,
                analytic_power=slope_test_power(
                    params, design, slope_t - params.growth_rate, alpha=alpha
                ),
            )
        )
        if progress is not None:
            progress(i + 1, len(designs))
    return PowerTable(
        parameters=params,
        effect=effect,
        control_slope=params.growth_rate,
        treated_slope=slope_t,
        test=SLOPE_TEST.format(test=TEST_NAMES[test], alpha=alpha, min_images=min_images),
        alpha=alpha,
        n_sim=n_sim,
        seed=seed,
        rows=tuple(rows),
    )
