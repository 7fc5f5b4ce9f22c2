"""End-of-study readouts (histology, radiography, necropsy): one value per animal, compared
between arms and correlated with BLI."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from ._common import Effect, TestResult, _f, adjust, fisher_2x2, hodges_lehmann, welch
from ._data import _AsDict
from ._errors import InsufficientDataError, InvalidInputError

__all__ = [
    "ReadoutArm",
    "ReadoutArmComparison",
    "ReadoutComparison",
    "SkippedPair",
    "SpearmanResult",
    "compare_readout",
    "spearman",
]

ReadoutKindArg = Literal["numeric", "count", "binary"]

SPEARMAN_EXACT = (
    "Spearman rank correlation; two-sided p of S = sum of squared rank differences as R "
    "cor.test(method='spearman'): exact permutation distribution for n <= 9, the Edgeworth "
    "series of AS 89 (Best & Roberts 1975) for 10 <= n < 1290"
)
SPEARMAN_T = (
    "Spearman rank correlation (mid-ranks for tied values); two-sided p from the t "
    "approximation t = rho sqrt((n-2)/(1-rho^2)) on n-2 df, as R cor.test(method='spearman') "
    "with ties (where it warns that it cannot compute exact p-values) or n >= 1290"
)
#: AS 89 Edgeworth coefficients (Best & Roberts 1975, as in R's prho.c).
_AS89 = (
    0.2274,
    0.2531,
    0.1745,
    0.0758,
    0.1033,
    0.3932,
    0.0879,
    0.0151,
    0.0072,
    0.0831,
    0.0131,
    4.6e-4,
)
_EXACT_N = 9


@dataclass(frozen=True, slots=True)
class ReadoutArm(_AsDict):
    """One arm's values of a readout: ``n`` animals, ``mean``, ``sd`` (n-1; None for one
    animal), ``median``, ``q1``/``q3`` (quartiles, linear interpolation as R type 7),
    ``n_positive``: animals whose value is above the threshold."""

    arm: str
    n: int
    mean: float
    sd: float | None
    median: float
    q1: float
    q3: float
    n_positive: int


@dataclass(frozen=True, slots=True)
class ReadoutArmComparison(_AsDict):
    """A treated arm against its control on one readout.

    - ``mean_difference`` / ``welch``: Welch's unequal-variance t test, mean(T) - mean(C)
      with its 95 % CI (as R ``t.test(T, C)``); None for binary readouts.
    - ``shift`` / ``mann_whitney``: Hodges-Lehmann shift and the two-sided Mann-Whitney U
      (R's W) of the treated arm; p exact when no value is tied and both arms have < 50
      animals (R ``wilcox.test(T, C, exact=TRUE)``); with ties an exact p is not defined
      and the normal approximation with continuity and tie corrections is used, which is
      what R does then too (it warns "cannot compute exact p-value with ties"); ``method``
      says which. None for binary readouts.
    - ``odds_ratio`` / ``fisher``: animals positive (value > threshold) in each arm, the
      conditional-MLE odds ratio with its exact 95 % CI and Fisher's exact two-sided p, as R
      ``fisher.test(matrix(c(pos_T, neg_T, pos_C, neg_C), 2))``.

    ``p_adjusted`` of each test: Holm (default) across the treated arms compared on this
    readout, test by test (Welch with Welch, ...).
    """

    control: str
    treated: str
    n_control: int
    n_treated: int
    positive_control: int
    positive_treated: int
    mean_difference: Effect | None
    welch: TestResult | None
    shift: Effect | None
    mann_whitney: TestResult | None
    odds_ratio: Effect
    fisher: TestResult


@dataclass(frozen=True, slots=True)
class SkippedPair(_AsDict):
    """A treated arm not compared with its control, and why."""

    control: str
    treated: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadoutComparison(_AsDict):
    """Every arm's summary of one readout and each treated arm against its control.

    ``threshold``: a value above it counts the animal as positive (Fisher's test).
    ``correction``: ``holm``, ``bh`` or ``none`` across ``comparisons``.
    """

    readout: str
    unit: str | None
    kind: str
    threshold: float
    correction: str
    arms: tuple[ReadoutArm, ...]
    comparisons: tuple[ReadoutArmComparison, ...]
    skipped: tuple[SkippedPair, ...]


@dataclass(frozen=True, slots=True)
class SpearmanResult(_AsDict):
    """Spearman's rank correlation of ``n`` pairs: ``rho`` and its two-sided ``p_value``
    (see ``method``); both None when fewer than 3 pairs or one variable is constant
    (``reason`` says which)."""

    n: int
    rho: float | None
    p_value: float | None
    method: str
    reason: str | None = None


def _check_values(arm: str, values: np.ndarray, kind: str) -> None:
    if not np.all(np.isfinite(values)):
        raise InvalidInputError(f"arm {arm!r} has a missing or non-finite readout value")
    if kind == "binary" and not np.all(np.isin(values, (0.0, 1.0))):
        raise InvalidInputError(f"arm {arm!r}: a binary readout takes the values 0 and 1 only")
    if kind == "count" and not np.all((values >= 0) & (values == np.round(values))):
        raise InvalidInputError(f"arm {arm!r}: a count readout takes whole numbers >= 0 only")


def _arm_summary(arm: str, values: np.ndarray, threshold: float) -> ReadoutArm:
    q1, median, q3 = np.percentile(values, (25, 50, 75))
    return ReadoutArm(
        arm=arm,
        n=int(values.size),
        mean=float(values.mean()),
        sd=float(np.std(values, ddof=1)) if values.size > 1 else None,
        median=float(median),
        q1=float(q1),
        q3=float(q3),
        n_positive=int(np.sum(values > threshold)),
    )


def compare_readout(
    values: Mapping[str, Sequence[float]],
    *,
    pairs: Sequence[tuple[str, str]],
    kind: ReadoutKindArg = "numeric",
    threshold: float = 0.0,
    correction: Literal["holm", "bh", "none"] = "holm",
    readout: str = "readout",
    unit: str | None = None,
) -> ReadoutComparison:
    """Compare arms on one per-animal readout.

    Parameters
    ----------
    values
        Arm name → the values of its animals (one per animal, in the readout's unit).
    pairs
        ``(control, treated)`` arm names: each treated arm is compared with its control
        (several treatments against one control: Holm across them, as in
        :func:`compare_by_day`).
    kind
        ``numeric`` and ``count``: Welch t, Mann-Whitney U and Fisher's exact test on the
        animals above ``threshold``; ``binary`` (0/1): Fisher's exact test only.
    threshold
        An animal is positive when its value is > ``threshold`` (default 0: any lesion).

    A pair is compared when both arms have at least 2 animals; others are listed in
    ``skipped``. See :class:`ReadoutArmComparison` for each test and its R equivalent.
    """
    if kind not in ("numeric", "count", "binary"):
        raise InvalidInputError(f"unknown readout kind {kind!r}; use numeric, count or binary")
    if not math.isfinite(threshold):
        raise InvalidInputError(f"threshold must be a finite number, not {threshold!r}")
    arrays = {arm: np.asarray(v, dtype=np.float64) for arm, v in values.items()}
    for arm, array in arrays.items():
        _check_values(arm, array, kind)
    for control, treated in pairs:
        for arm in (control, treated):
            if arm not in arrays:
                raise InvalidInputError(
                    f"arm {arm!r} of the pair ({control!r}, {treated!r}) has no values given"
                )
    arms = tuple(_arm_summary(a, v, threshold) for a, v in arrays.items() if v.size)
    raw, skipped = [], []
    for control, treated in pairs:
        yc, yt = arrays[control], arrays[treated]
        if yc.size < 2 or yt.size < 2:
            skipped.append(
                SkippedPair(
                    control,
                    treated,
                    f"{yc.size} control and {yt.size} treated animal(s) with a value; at least "
                    "2 per arm are needed",
                )
            )
            continue
        label = f"{readout} ({unit})" if unit else readout
        numeric = kind != "binary"
        mean_diff, w = welch(yt, yc, label) if numeric else (None, None)
        shift, mw = hodges_lehmann(yt, yc, label) if numeric else (None, None)
        pos_t, pos_c = int(np.sum(yt > threshold)), int(np.sum(yc > threshold))
        ratio, fisher = fisher_2x2(pos_t, yt.size, pos_c, yc.size)
        raw.append(
            (
                control,
                treated,
                yc.size,
                yt.size,
                pos_c,
                pos_t,
                mean_diff,
                w,
                shift,
                mw,
                ratio,
                fisher,
            )
        )
    if not raw and pairs:
        raise InsufficientDataError(
            f"readout {readout!r}: no treated arm and its control both have 2 animals with a "
            f"value ({'; '.join(s.reason for s in skipped)})"
        )
    fisher_adj = adjust([r[11] for r in raw], correction)
    welch_adj: Sequence[TestResult | None] = [None] * len(raw)
    mw_adj: Sequence[TestResult | None] = [None] * len(raw)
    if kind != "binary":
        welch_adj = adjust([r[7] for r in raw if r[7] is not None], correction)
        mw_adj = adjust([r[9] for r in raw if r[9] is not None], correction)
    comparisons = tuple(
        ReadoutArmComparison(
            control=r[0],
            treated=r[1],
            n_control=int(r[2]),
            n_treated=int(r[3]),
            positive_control=r[4],
            positive_treated=r[5],
            mean_difference=r[6],
            welch=wa,
            shift=r[8],
            mann_whitney=ma,
            odds_ratio=r[10],
            fisher=fa,
        )
        for r, wa, ma, fa in zip(raw, welch_adj, mw_adj, fisher_adj, strict=True)
    )
    return ReadoutComparison(
        readout=readout,
        unit=unit,
        kind=kind,
        threshold=float(threshold),
        correction=correction,
        arms=arms,
        comparisons=comparisons,
        skipped=tuple(skipped),
    )


@functools.cache
def _s_distribution(n: int) -> np.ndarray:
    """Sorted values of S = sum (i - p_i)^2 over all n! permutations p (n <= 9)."""
    ranks = np.arange(n)
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
    return np.sort(((perms - ranks) ** 2).sum(axis=1))


def _prho(n: int, s: float, *, lower_tail: bool) -> float:
    """P[S >= s] (upper tail) or P[S < s] (lower tail) under independence: R's ``prho``
    (AS 89; exact for n <= 9, Edgeworth series above)."""
    pv = 0.0 if lower_tail else 1.0
    if s <= 0:
        return pv
    if s > n * (n * n - 1) / 3:
        return 1.0 - pv
    if n <= _EXACT_N:
        values = _s_distribution(n)
        at_least = values.size - int(np.searchsorted(values, s, side="left"))
        return (values.size - at_least if lower_tail else at_least) / values.size
    c = _AS89
    b = 1.0 / n
    x = (6.0 * (s - 1) * b / (n * n - 1) - 1) * math.sqrt(1.0 / b - 1)
    y = x * x
    u = (
        x
        * b
        * (
            c[0]
            + b * (c[1] + c[2] * b)
            + y
            * (
                -c[3]
                + b * (c[4] + c[5] * b)
                - y * b * (c[6] + c[7] * b - y * (c[8] - c[9] * b + y * b * (c[10] - c[11] * y)))
            )
        )
    )
    tail = u / math.exp(y / 2)
    normal = float(stats.norm.cdf(x)) if lower_tail else float(stats.norm.sf(x))
    return min(1.0, max(0.0, (-tail if lower_tail else tail) + normal))


def _spearman_p(rho: float, n: int) -> float:
    """Two-sided p of rho (no ties) as R ``cor.test(method="spearman")``."""
    q = (n**3 - n) * (1 - rho) / 6
    if q > (n**3 - n) / 6:
        p = _prho(n, round(q), lower_tail=False)
    else:
        p = _prho(n, round(q) + 2, lower_tail=True)
    return min(2 * p, 1.0)


def spearman(x: Sequence[float], y: Sequence[float]) -> SpearmanResult:
    """Spearman's rank correlation between paired values (e.g. a readout and final BLI flux).

    rho = Pearson correlation of the mid-ranks of ``x`` and ``y`` (Spearman 1904). Two-sided
    p as R ``cor.test(x, y, method="spearman")`` by default: without ties and n < 1290 from
    the null distribution of S = (n^3 - n)(1 - rho)/6 (exact for n <= 9, the AS 89 Edgeworth
    series above: Best & Roberts 1975); with ties (or n >= 1290) from t = rho
    sqrt((n-2)/(1-rho^2)) on n-2 df (scipy ``spearmanr``). ``method`` says which. Ranks are
    invariant to monotone transforms, so flux and log10 flux give the same rho.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise InvalidInputError(f"x and y must be paired 1-d sequences, got {xa.shape}, {ya.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise InvalidInputError("x and y must be finite numbers")
    n = int(xa.size)
    ties = np.unique(xa).size < n or np.unique(ya).size < n
    exact = not ties and n < 1290
    method = SPEARMAN_EXACT if exact else SPEARMAN_T
    if n < 3:
        return SpearmanResult(n, None, None, method, f"{n} pair(s); at least 3 needed")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return SpearmanResult(
            n, None, None, method, "one variable has the same value for every animal"
        )
    result = stats.spearmanr(xa, ya)
    rho = float(result.statistic)
    p = _spearman_p(rho, n) if exact else float(result.pvalue)
    return SpearmanResult(n, _f(rho), _f(p), method)
