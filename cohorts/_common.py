"""Result building blocks and the two-sample tests shared by the comparisons."""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats.contingency import odds_ratio
from statsmodels.stats.multitest import multipletests

from ._data import _AsDict
from ._errors import InvalidInputError

__all__ = ["CORRECTIONS", "Effect", "TestResult"]

_WARNINGS = threading.RLock()
"""``warnings.catch_warnings`` sets the filters and ``showwarning`` of the whole process and
puts back what it found when it ends: two blocks on two threads at once (two comparisons
fitted together) recorded each other's warnings, and could leave each other's settings in
place for good. Every such block of cohorts holds this lock (Python 3.11 has no per-thread
warnings)."""


@contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised inside the block, every one recorded and none shown."""
    with _WARNINGS, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


@contextmanager
def ignored_warnings(category: type[Warning], message: str = "") -> Iterator[None]:
    """Warnings of ``category`` (whose text starts with ``message``) silenced in the block."""
    with _WARNINGS, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message, category=category)
        yield

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}

MW_EXACT = "exact (no ties, both arms < 50 animals; as R wilcox.test)"
MW_NORMAL = "normal approximation with continuity correction (an arm has >= 50 animals)"
MW_NORMAL_TIES = (
    "normal approximation with continuity and tie corrections (tied values; as R wilcox.test)"
)


@dataclass(frozen=True, slots=True)
class Effect(_AsDict):
    """An effect estimate with its confidence interval.

    ``name`` says what is estimated and in which direction, e.g. ``"difference in mean
    log10 value (treated - control)"``; ``ci_low``/``ci_high`` bound the
    ``confidence`` (0.95) interval and are None where no interval is defined.
    """

    name: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = 0.95


@dataclass(frozen=True, slots=True)
class TestResult(_AsDict):
    """A hypothesis test: ``test`` name, ``statistic``, ``df`` (None if not applicable),
    two-sided ``p_value`` and, inside a family of tests, ``p_adjusted`` by ``correction``.
    An undefined test (e.g. Welch with zero variance in both arms) has NaN statistic and
    p (``None`` in ``to_dict()``). ``method`` says how p was computed where a test has
    more than one way (Mann-Whitney: ``exact`` or ``normal approximation ...``)."""

    test: str
    statistic: float
    df: float | None
    p_value: float
    p_adjusted: float | None = None
    correction: str | None = None
    method: str | None = None


def _f(x: float | np.floating | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def welch(treated: np.ndarray, control: np.ndarray, label: str) -> tuple[Effect, TestResult]:
    """Welch's unequal-variance t test of treated vs control (Welch 1947):
    ``scipy.stats.ttest_ind(T, C, equal_var=False)`` and its ``confidence_interval(0.95)``,
    as R ``t.test(T, C)``.

    diff = mean(T) - mean(C); se = sqrt(s_T^2/n_T + s_C^2/n_C); t = diff / se;
    Welch-Satterthwaite df; 95 % CI diff -/+ t(0.975, df) se; p two-sided.

    An arm whose values are all equal (e.g. every value at the floor) makes scipy warn of
    "precision loss": its variance is exactly 0, which the formula takes as it is, so the
    warning is silenced. When both arms have zero variance the test is undefined:
    statistic, df, p and CI are NaN/None.
    """
    t_ = np.asarray(treated, dtype=np.float64)
    c_ = np.asarray(control, dtype=np.float64)
    diff = float(t_.mean() - c_.mean())
    name = f"difference in mean {label} (treated - control)"
    if float(np.var(t_, ddof=1)) + float(np.var(c_, ddof=1)) == 0:
        return Effect(name, diff, None, None), TestResult("Welch t", math.nan, None, math.nan)
    with ignored_warnings(RuntimeWarning, "Precision loss occurred in moment calculation"):
        res = stats.ttest_ind(t_, c_, equal_var=False)
        ci = res.confidence_interval(0.95)
    return (
        Effect(name, diff, float(ci.low), float(ci.high)),
        TestResult("Welch t", float(res.statistic), float(res.df), float(res.pvalue)),
    )


def fisher_2x2(
    positive_treated: int, n_treated: int, positive_control: int, n_control: int
) -> tuple[Effect, TestResult]:
    """Fisher's exact test of positive animals, treated vs control, and the odds ratio.

    Table [[pos_T, n_T - pos_T], [pos_C, n_C - pos_C]]: two-sided p and the sample odds ratio
    (scipy ``fisher_exact``); the conditional maximum-likelihood odds ratio with its exact
    95 % CI (scipy ``odds_ratio(kind="conditional")``), both as R ``fisher.test``. Infinite
    or undefined bounds (a zero cell) are None.
    """
    table = np.array(
        [
            [positive_treated, n_treated - positive_treated],
            [positive_control, n_control - positive_control],
        ]
    )
    result = stats.fisher_exact(table, alternative="two-sided")
    # a zero cell gives an infinite bound (reported as None), which scipy warns about
    with ignored_warnings(RuntimeWarning):
        ratio = odds_ratio(table, kind="conditional")
        ci = ratio.confidence_interval(0.95)
    effect = Effect(
        "odds ratio of being positive (treated vs control), conditional MLE",
        _f(ratio.statistic),
        _f(ci.low),
        _f(ci.high),
    )
    test = TestResult(
        "Fisher exact (statistic: sample odds ratio)",
        float(result.statistic),
        None,
        float(result.pvalue),
    )
    return effect, test


def _u_null_cdf(m: int, n: int) -> np.ndarray:
    """Exact null CDF of the Mann-Whitney U statistic for sizes m, n without ties."""
    # f[j] holds the counts for (i, j) while i grows: f(i, j) = f(i-1, j) shifted by j + f(i, j-1)
    f = [np.ones(1) for _ in range(n + 1)]
    for _i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            a = np.concatenate([np.zeros(j), f[j]])
            b = new[j - 1]
            size = max(a.size, b.size)
            new.append(np.pad(a, (0, size - a.size)) + np.pad(b, (0, size - b.size)))
        f = new
    counts = f[n]
    return np.cumsum(counts) / counts.sum()


def hodges_lehmann(
    treated: np.ndarray, control: np.ndarray, label: str
) -> tuple[Effect, TestResult]:
    """Mann-Whitney U test and the Hodges-Lehmann shift with its 95 % CI.

    Shift = median of all pairwise differences treated_i - control_j. CI as in R's
    ``wilcox.test(treated, control, conf.int=TRUE)``: the order statistics
    D_(q) and D_(mn-q+1) of the sorted differences, q = qwilcox(0.025, m, n) (exact null
    distribution) when there are no ties and m, n < 50; otherwise the normal
    approximation q = floor(mn/2 - 1.96 sqrt(mn(m+n+1)/12)) (approximate; R inverts the
    tie-corrected normal test numerically, so its interval may differ slightly).

    U (= R's W) is the Mann-Whitney statistic of the treated arm. Its two-sided p is
    chosen as R ``wilcox.test(treated, control)`` does by default: the exact null
    distribution when there are no ties and both arms have fewer than 50 animals
    (``method="exact"``), otherwise the normal approximation with continuity and tie
    corrections (scipy ``mannwhitneyu(method="asymptotic", use_continuity=True)``, as R
    ``correct = TRUE``); ``TestResult.method`` names the one used.
    """
    m, n = len(treated), len(control)
    d = np.sort(np.subtract.outer(np.asarray(treated), np.asarray(control)).ravel())
    both = np.concatenate([treated, control])
    ties = np.unique(both).size < both.size
    exact = not ties and m < 50 and n < 50
    res = stats.mannwhitneyu(
        treated,
        control,
        alternative="two-sided",
        method="exact" if exact else "asymptotic",
        use_continuity=True,
    )
    method = MW_EXACT if exact else (MW_NORMAL_TIES if ties else MW_NORMAL)
    if exact:
        cdf = _u_null_cdf(m, n)
        q = int(np.searchsorted(cdf, 0.025 - 1e-12))  # smallest q with P(U <= q) >= 0.025
        q = max(q, 1)
        lo, hi = d[q - 1], d[m * n - q]
    else:
        k = math.floor(m * n / 2 - 1.959963984540054 * math.sqrt(m * n * (m + n + 1) / 12))
        k = min(max(k, 1), m * n)
        lo, hi = d[k - 1], d[m * n - k]
    name = f"Hodges-Lehmann shift in {label} (treated - control)"
    if not exact:
        name += (
            "; median of pairwise differences, CI from normal-approximation order statistics "
            "(R's wilcox.test inverts the tie-corrected test numerically: may differ by up to "
            "one pairwise difference)"
        )
    eff = Effect(
        name,
        float(np.median(d)),
        float(lo),
        float(hi),
    )
    return eff, TestResult(
        "Mann-Whitney U", float(res.statistic), None, float(res.pvalue), method=method
    )


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment, as R ``p.adjust(p, "holm")``: sorted p times (m - rank),
    running maximum, capped at 1. Not statsmodels' ``multipletests(method="holm")``, which
    (0.15) runs ``gc.collect()`` on every call: a full collection costs 0.3 s and more in a
    process holding many objects (an API process; the test suite), per comparison."""
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(tests: Sequence[TestResult], correction: str) -> tuple[TestResult, ...]:
    """Holm (``holm``, :func:`_holm`) or Benjamini-Hochberg (``bh``, statsmodels
    ``multipletests``) adjustment across a family of tests; ``none`` leaves p_adjusted = p.
    Undefined (NaN) p-values are not counted in the family and stay NaN."""
    if correction not in CORRECTIONS:
        raise InvalidInputError(f"unknown correction {correction!r}; use holm, bh or none")
    if not tests:
        return ()
    p = np.array([t.p_value for t in tests], dtype=np.float64)
    method = CORRECTIONS[correction]
    padj = np.full_like(p, np.nan)
    ok = np.isfinite(p)  # undefined tests (NaN) are left out of the family
    if ok.any():
        if method is None:
            padj[ok] = p[ok]
        elif method == "holm":
            padj[ok] = _holm(p[ok])
        else:
            padj[ok] = multipletests(p[ok], method=method)[1]
    return tuple(
        dataclasses.replace(t, p_adjusted=float(pa), correction=correction)
        for t, pa in zip(tests, padj, strict=True)
    )


def scale_label(scale: str, baseline: object | None = None) -> str:
    base = {"log10": "log10 value", "ln": "ln value", "log1p": "ln(1 + value)", "linear": "value"}
    label = base[scale]
    if baseline is not None:
        label = f"{label} relative to baseline"
    return label
