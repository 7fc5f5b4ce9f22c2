"""End-of-study readouts compared between arms and correlated with BLI: values from R 4.2.

R session (run once; the values are written next to each assertion)::

    c0 <- c(2.31, 4.07, 1.52, 3.88, 5.14, 2.96, 0.47, 4.45)   # control, tumour area mm²
    ta <- c(0.84, 1.27, 0.12, 2.05, 0.61, 1.49, 0.33)          # treatment A
    tb <- c(1.95, 3.12, 0.92, 2.64, 4.81, 1.18)                # treatment B
    cc <- c(3, 2, 4, 0, 3, 5, 2, 1)                            # control, metastatic bones
    ct <- c(0, 1, 0, 2, 1, 0, 0)                               # treated, metastatic bones
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cohorts import (
    InsufficientDataError,
    InvalidInputError,
    compare_readout,
    spearman,
)

C0 = [2.31, 4.07, 1.52, 3.88, 5.14, 2.96, 0.47, 4.45]
TA = [0.84, 1.27, 0.12, 2.05, 0.61, 1.49, 0.33]
TB = [1.95, 3.12, 0.92, 2.64, 4.81, 1.18]
CC = [3, 2, 4, 0, 3, 5, 2, 1]
CT = [0, 1, 0, 2, 1, 0, 0]
RTOL = 1e-6


def _area() -> object:
    return compare_readout(
        {"Vehicle": C0, "A": TA, "B": TB},
        pairs=[("Vehicle", "A"), ("Vehicle", "B")],
        readout="tumour area",
        unit="mm²",
    )


def test_welch_against_r() -> None:
    res = _area()
    a, b = res.comparisons
    # t.test(ta, c0, var.equal=FALSE): t = -3.46980515021046, df = 9.77695500689277,
    # p = 0.00622762627690657, 95 % CI -3.52081326254571 -0.762043880311431
    assert_allclose(a.welch.statistic, -3.46980515021046, rtol=RTOL)
    assert_allclose(a.welch.df, 9.77695500689277, rtol=RTOL)
    assert_allclose(a.welch.p_value, 0.00622762627690657, rtol=RTOL)
    assert_allclose(
        [a.mean_difference.ci_low, a.mean_difference.ci_high],
        [-3.52081326254571, -0.762043880311431],
        rtol=RTOL,
    )
    assert_allclose(a.mean_difference.estimate, 0.958571428571429 - 3.1, rtol=RTOL)
    # t.test(tb, c0, var.equal=FALSE): t = -0.818976604169731, df = 11.4838528451210,
    # p = 0.429468154920183, 95 % CI -2.43690864207660 1.11024197540993
    assert_allclose(b.welch.statistic, -0.818976604169731, rtol=RTOL)
    assert_allclose(b.welch.df, 11.483852845121, rtol=RTOL)
    assert_allclose(
        [b.mean_difference.ci_low, b.mean_difference.ci_high],
        [-2.4369086420766, 1.11024197540993],
        rtol=RTOL,
    )
    # p.adjust(c(pa, pb), "holm") = 0.0124552525538131 0.429468154920183
    assert_allclose(
        [a.welch.p_adjusted, b.welch.p_adjusted], [0.0124552525538131, 0.429468154920183], rtol=RTOL
    )
    assert a.welch.correction == "holm"


def test_exact_mann_whitney_against_r() -> None:
    a, b = _area().comparisons
    # wilcox.test(ta, c0, exact=TRUE): W = 6, p = 0.00932400932400932
    # wilcox.test(tb, c0, exact=TRUE): W = 18, p = 0.490842490842491
    assert (a.mann_whitney.statistic, b.mann_whitney.statistic) == (6, 18)
    assert_allclose(
        [a.mann_whitney.p_value, b.mann_whitney.p_value],
        [0.00932400932400932, 0.490842490842491],
        rtol=RTOL,
    )
    assert a.mann_whitney.method.startswith("exact")
    # p.adjust(c(0.00932400932400932, 0.490842490842491), "holm")
    assert_allclose(
        [a.mann_whitney.p_adjusted, b.mann_whitney.p_adjusted],
        [0.0186480186480186, 0.490842490842491],
        rtol=RTOL,
    )


def test_count_readout_with_ties_against_r() -> None:
    res = compare_readout(
        {"Vehicle": CC, "1D11": CT},
        pairs=[("Vehicle", "1D11")],
        kind="count",
        readout="metastatic bones",
    )
    (c,) = res.comparisons
    # t.test(ct, cc, var.equal=FALSE): t = -3.01242241338769, df = 10.458135766161,
    # p = 0.0124552200099392, 95 % CI -3.34661461325959 -0.510528243883266
    assert_allclose(
        [c.welch.statistic, c.welch.df, c.welch.p_value],
        [-3.01242241338769, 10.458135766161, 0.0124552200099392],
        rtol=RTOL,
    )
    # wilcox.test(ct, cc, exact=TRUE) warns "cannot compute exact p-value with ties" and
    # uses the normal approximation with continuity and tie corrections: W = 8,
    # p = 0.020477021755323
    assert c.mann_whitney.statistic == 8
    assert_allclose(c.mann_whitney.p_value, 0.020477021755323, rtol=RTOL)
    assert "tie corrections" in c.mann_whitney.method
    # positives (> 0): 3 of 7 treated, 7 of 8 control.
    # fisher.test(matrix(c(3, 4, 7, 1), 2)): p = 0.118881118881119; its odds ratio and CI
    # come from uniroot at R's default tol (~1.2e-4): 0.126962469073328, CI 0.00191837989505549
    # 1.98894846678245. The same R code at tol = 1e-14 (tests/cohorts/r/readouts_fisher_ci.R):
    # 0.126962585221102, CI 0.00191027558717426 1.98885280173056
    assert (c.positive_treated, c.positive_control) == (3, 7)
    assert_allclose(c.fisher.p_value, 0.118881118881119, rtol=RTOL)
    assert_allclose(
        [c.odds_ratio.estimate, c.odds_ratio.ci_low, c.odds_ratio.ci_high],
        [0.126962585221102, 0.00191027558717426, 1.98885280173056],
        rtol=RTOL,
    )
    assert_allclose(c.odds_ratio.ci_low, 0.00191837989505549, rtol=5e-3)  # R's printed CI
    arms = {a.arm: a for a in res.arms}
    assert (arms["Vehicle"].n, arms["Vehicle"].n_positive, arms["Vehicle"].median) == (8, 7, 2.5)


def test_threshold_moves_the_positive_count() -> None:
    # positives (> 1): 1 of 7 treated, 6 of 8 control. fisher.test(matrix(c(1, 6, 6, 2), 2))
    # gives p = 0.0405594405594406 (R 4.2).
    (c,) = compare_readout(
        {"Vehicle": CC, "1D11": CT}, pairs=[("Vehicle", "1D11")], kind="count", threshold=1
    ).comparisons
    assert (c.positive_treated, c.positive_control) == (1, 6)
    assert_allclose(c.fisher.p_value, 0.0405594405594406, rtol=RTOL)


def test_binary_readout_is_fisher_only() -> None:
    # fisher.test(matrix(c(1, 6, 7, 1), 2)): p = 0.0101010101010101; odds ratio and CI at
    # uniroot tol = 1e-14 (tests/cohorts/r/readouts_fisher_ci.R): 0.0367100880710598,
    # CI 0.000455691766699678 0.666010071429418 (R's printed, default tol: 0.0367044671727191,
    # 0.000466213678688931 0.666009622143383)
    (c,) = compare_readout(
        {"IgG": [1, 1, 1, 0, 1, 1, 1, 1], "1D11": [0, 0, 1, 0, 0, 0, 0]},
        pairs=[("IgG", "1D11")],
        kind="binary",
    ).comparisons
    assert c.welch is None and c.mann_whitney is None
    assert_allclose(c.fisher.p_value, 0.0101010101010101, rtol=RTOL)
    assert_allclose(
        [c.odds_ratio.estimate, c.odds_ratio.ci_low, c.odds_ratio.ci_high],
        [0.0367100880710598, 0.000455691766699678, 0.666010071429418],
        rtol=RTOL,
    )


def test_spearman_against_r() -> None:
    x = [2.31, 4.07, 1.52, 3.88, 5.14, 2.96, 0.47, 4.45, 0.84, 1.27]
    y = [3.1e6, 2.2e7, 8.4e5, 9.9e6, 4.1e7, 1.5e6, 2.6e5, 7.7e6, 1.1e6, 4.0e5]
    # cor.test(x, y, method="spearman"): rho = 0.915151515151515, p = 0.000466722165549449
    # (n = 10, no ties: R's AS 89 Edgeworth series; the t approximation, exact=FALSE, would
    # give 0.000204472406148833)
    res = spearman(x, y)
    assert res.n == 10 and "AS 89" in res.method
    assert_allclose([res.rho, res.p_value], [0.915151515151515, 0.000466722165549449], rtol=RTOL)
    # log10 flux: the same ranks, the same result
    assert_allclose(spearman(x, np.log10(y)).rho, 0.915151515151515, rtol=RTOL)
    # n <= 9, exact permutation distribution:
    # cor.test(x[1:7], y[1:7], method="spearman")$p.value = 0.00277777777777778 (and the same
    # for -y); cor.test(x[1:9], rev(y[1:9]), method="spearman")$p.value = 0.0138282627865961
    assert_allclose(spearman(x[:7], y[:7]).p_value, 0.00277777777777778, rtol=RTOL)
    assert_allclose(spearman(x[:7], [-v for v in y[:7]]).p_value, 0.00277777777777778, rtol=RTOL)
    assert_allclose(spearman(x[:9], y[:9][::-1]).p_value, 0.0138282627865961, rtol=RTOL)
    # n = 15, both tails of the series:
    x2 = [0.12, 0.33, 0.61, 0.84, 1.27, 1.49, 2.05, 1.95, 3.12, 0.92, 2.64, 4.81, 1.18, 2.2, 0.5]
    y2 = [5e5, 3e5, 8e5, 2e6, 1e6, 4e6, 3e6, 9e5, 7e6, 6e5, 1.2e7, 2.5e7, 2.2e6, 1.5e6, 4.4e5]
    # cor.test(x2, y2, method="spearman"): rho = 0.857142857142857, p = 8.56584851227334e-06;
    # cor.test(x2, rev(y2), method="spearman")$p.value = 0.685767940753034
    assert_allclose(
        [spearman(x2, y2).rho, spearman(x2, y2).p_value],
        [0.857142857142857, 8.56584851227334e-06],
        rtol=RTOL,
    )
    assert_allclose(spearman(x2, y2[::-1]).p_value, 0.685767940753034, rtol=RTOL)
    # with ties R cannot compute the exact p and uses the t approximation:
    # cor.test(c(3, 2, 4, 0, 3, 5, 2, 1, 0, 1), y, method="spearman")
    # rho = -0.012270862382797, p = 0.97316152995852
    tied = spearman([3, 2, 4, 0, 3, 5, 2, 1, 0, 1], y)
    assert "t approximation" in tied.method
    assert_allclose([tied.rho, tied.p_value], [-0.012270862382797, 0.97316152995852], rtol=RTOL)


def test_spearman_undefined_cases_say_why() -> None:
    assert spearman([1.0, 2.0], [3.0, 4.0]).rho is None
    flat = spearman([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0])
    assert flat.rho is None and flat.p_value is None and "same value" in flat.reason
    with pytest.raises(InvalidInputError):
        spearman([1.0, math.nan, 2.0], [1.0, 2.0, 3.0])


def test_bad_input_is_refused_and_small_arms_skipped() -> None:
    with pytest.raises(InvalidInputError, match="whole numbers"):
        compare_readout({"a": [1.5, 2], "b": [1, 2]}, pairs=[("a", "b")], kind="count")
    with pytest.raises(InvalidInputError, match="0 and 1"):
        compare_readout({"a": [2, 1], "b": [1, 0]}, pairs=[("a", "b")], kind="binary")
    with pytest.raises(InvalidInputError, match="no values"):
        compare_readout({"a": [2, 1]}, pairs=[("a", "b")])
    res = compare_readout({"V": C0, "A": TA, "B": [1.0]}, pairs=[("V", "A"), ("V", "B")])
    assert [s.treated for s in res.skipped] == ["B"]
    # one pair tested: Holm over a family of one leaves p unchanged
    assert res.comparisons[0].welch.p_adjusted == res.comparisons[0].welch.p_value
    with pytest.raises(InsufficientDataError):
        compare_readout({"V": C0, "B": [1.0]}, pairs=[("V", "B")])


def test_inputs_unchanged() -> None:
    values = np.array(C0)
    before = values.copy()
    compare_readout({"V": values, "A": TA}, pairs=[("V", "A")])
    spearman(values, values[::-1].copy())
    assert_allclose(values, before, rtol=0)
