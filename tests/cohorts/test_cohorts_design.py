"""Randomisation into arms: reproducible from the seed, strata respected, balance better
than a plain random permutation, balance statistics against R and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from cohorts import InvalidInputError, RandomisationUnit, randomise
from cohorts._design import _tests, imbalance

ARMS = ("Vehicle", "1D11", "LY2109761")


def roster(seed: int, n: int = 24, *, weight: bool = False) -> list[RandomisationUnit]:
    """Baseline flux log-normal (log10 mean 6, SD 0.5); sex alternating, 2:1 female."""
    rng = np.random.default_rng(seed)
    return [
        RandomisationUnit(
            f"m{i:02d}",
            float(10 ** rng.normal(6.0, 0.5)),
            body_weight_g=float(rng.normal(20.0, 2.0)) if weight else None,
            stratum="female" if i % 3 else "male",
        )
        for i in range(n)
    ]


def test_same_seed_same_allocation_different_seed_another() -> None:
    units = roster(1, weight=True)
    a = randomise(units, ARMS, seed=2026)
    b = randomise(list(reversed(units)), ARMS, seed=2026)  # input order does not matter
    assert a == b
    c = randomise(units, ARMS, seed=2027)
    assert [x.arm for x in c.assignments] != [x.arm for x in a.assignments]


def test_strata_and_arm_sizes_respected() -> None:
    units = roster(3, n=23)  # 15 female, 8 male; 23 = 8 + 8 + 7
    r = randomise(units, ARMS, seed=5)
    sizes = {b.arm: b.n for b in r.balance}
    assert sizes == {"Vehicle": 8, "1D11": 8, "LY2109761": 7}
    by_stratum: dict[str | None, dict[str, int]] = {}
    for s in r.strata:
        by_stratum.setdefault(s.stratum, {})[s.arm] = s.n
    # each stratum is spread as evenly as the arm sizes allow: within one of its share
    for stratum, n_s in (("female", 15), ("male", 8)):
        for arm, n_arm in sizes.items():
            assert abs(by_stratum[stratum][arm] - n_s * n_arm / 23) < 1
    # and the counts describe the assignments
    for s in r.strata:
        assert s.n == sum(1 for x in r.assignments if x.stratum == s.stratum and x.arm == s.arm)
    custom = randomise(units, ARMS, seed=5, sizes={"Vehicle": 11, "1D11": 6, "LY2109761": 6})
    assert [b.n for b in custom.balance] == [11, 6, 6]


def test_balance_better_than_plain_permutation() -> None:
    # Under plain randomisation M ~ chi2 with d (k - 1) = 4 df (mean 4); rerandomisation
    # keeping the best 1 % of 2000 candidates must do far better, on average and in the
    # spread of the arm means of log10 baseline flux.
    m_rerand, m_plain, spread_rerand, spread_plain = [], [], [], []
    for seed in range(30):
        units = roster(100 + seed, weight=True)
        good = randomise(units, ARMS, seed=seed)
        plain = randomise(units, ARMS, seed=seed, method="permutation")
        m_rerand.append(good.imbalance_m)
        m_plain.append(plain.imbalance_m)
        spread_rerand.append(np.ptp([b.log10_baseline_mean for b in good.balance]))
        spread_plain.append(np.ptp([b.log10_baseline_mean for b in plain.balance]))
        assert good.expected_m_random == 4.0
        assert good.imbalance_m <= good.acceptance_threshold_m
        assert good.candidate_percentile <= 1.0 + 1e-9
    assert np.mean(m_plain) == pytest.approx(4.0, abs=1.5)  # chi2(4) mean, SE ~0.5
    assert np.mean(m_rerand) < 0.1 * np.mean(m_plain)
    assert np.mean(spread_rerand) < 0.4 * np.mean(spread_plain)


def test_imbalance_is_morgan_rubin_m_for_two_arms() -> None:
    # Morgan & Rubin (2012) eq. 3: M = n p (1 - p) (xT - xC)' S^-1 (xT - xC)
    units = roster(7, n=16, weight=True)
    r = randomise(units, ARMS[:2], seed=11, method="permutation")
    x = np.array([[a.log10_baseline_flux, a.body_weight_g] for a in r.assignments])
    treated = np.array([a.arm == "1D11" for a in r.assignments])
    diff = x[treated].mean(axis=0) - x[~treated].mean(axis=0)
    s = np.cov(x, rowvar=False, ddof=1)
    p = treated.mean()
    expected = 16 * p * (1 - p) * diff @ np.linalg.inv(s) @ diff
    assert_allclose(r.imbalance_m, expected, rtol=1e-10)


def test_balance_summary_matches_the_assignments() -> None:
    r = randomise(roster(9, weight=True), ARMS, seed=3)
    for b in r.balance:
        logs = np.array([a.log10_baseline_flux for a in r.assignments if a.arm == b.arm])
        grams = np.array([a.body_weight_g for a in r.assignments if a.arm == b.arm])
        assert_allclose(
            [b.log10_baseline_mean, b.log10_baseline_sd, b.body_weight_mean_g, b.body_weight_sd_g],
            [logs.mean(), logs.std(ddof=1), grams.mean(), grams.std(ddof=1)],
            rtol=1e-12,
        )
    assert r.covariates == ("log10_baseline_flux", "body_weight_g")
    assert {(t.covariate, t.test) for t in r.tests} == {
        (c, t) for c in r.covariates for t in ("one-way ANOVA F", "Kruskal-Wallis H")
    }
    # the baseline's log10 is of the flux given
    units = {u.animal: u for u in roster(9, weight=True)}
    for a in r.assignments:
        assert_allclose(a.log10_baseline_flux, np.log10(units[a.animal].baseline_flux), rtol=1e-14)


def test_balance_tests_against_r() -> None:
    # R 4.x: x <- c(5.91, 6.42, 5.57, 6.05, 6.88, 5.73, 6.21, 6.60, 5.36, 6.12, 5.98, 6.47)
    # g <- factor(rep(0:2, 4)); oneway.test(x ~ g, var.equal = TRUE); kruskal.test(x ~ g)
    x = np.array([5.91, 6.42, 5.57, 6.05, 6.88, 5.73, 6.21, 6.60, 5.36, 6.12, 5.98, 6.47])
    alloc = np.tile([0, 1, 2], 4)
    anova, kw = _tests(alloc, x[:, None], ("log10_baseline_flux",), 3)
    assert anova.df == (2.0, 9.0)
    assert_allclose([anova.statistic, anova.p_value], [3.65062779315, 0.0690393250793], rtol=1e-9)
    assert_allclose([kw.statistic, kw.p_value], [4.26923076923, 0.118290077812], rtol=1e-9)


def test_imbalance_zero_for_identical_arm_means() -> None:
    z = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    assert_allclose(imbalance(np.array([[0, 0, 1, 1]]), z, 2), [0.0], atol=1e-15)
    assert_allclose(imbalance(np.array([[0, 1, 0, 1]]), z, 2), [4.0], rtol=1e-12)


def test_undefined_tests_are_none_not_errors() -> None:
    units = [RandomisationUnit(f"m{i}", 1e6) for i in range(4)]  # no spread at all
    r = randomise(units, ARMS[:2], seed=1)
    assert all(t.p_value is None for t in r.tests)
    assert r.imbalance_m == 0.0


def test_inputs_unchanged() -> None:
    units = roster(4)
    before = list(units)
    randomise(units, ARMS, seed=1)
    assert units == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": ("A",)}, "at least two distinct arms"),
        ({"arms": ("A", "A")}, "at least two distinct arms"),
        ({"method": "minimisation"}, "method must be"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"acceptance": 0.0}, "acceptance"),
        ({"seed": -1}, "seed"),
        ({"sizes": {"A": 2, "B": 2}}, "add up to"),
        ({"sizes": {"A": 4, "C": 2}}, "not randomised into"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, message: str) -> None:
    args = {"arms": ("A", "B"), "seed": 1} | kwargs
    with pytest.raises(InvalidInputError, match=message):
        randomise(roster(1, n=6), **args)


def test_bad_units_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="positive number of p/s"):
        randomise([RandomisationUnit("a", 0.0), RandomisationUnit("b", 1.0)], ("A", "B"), seed=1)
    with pytest.raises(InvalidInputError, match="listed twice"):
        randomise([RandomisationUnit("a", 1.0), RandomisationUnit("a", 2.0)], ("A", "B"), seed=1)
    with pytest.raises(InvalidInputError, match="for every animal or for none"):
        randomise(
            [RandomisationUnit("a", 1.0, 20.0), RandomisationUnit("b", 2.0)], ("A", "B"), seed=1
        )
    with pytest.raises(InvalidInputError, match="cannot fill 3 arms"):
        randomise(roster(1, n=2), ARMS, seed=1)


def test_p_values_near_one_after_rerandomisation() -> None:
    # The point of balancing: the baseline ANOVA is far from significant (F tiny).
    r = randomise(roster(21, n=30), ARMS, seed=8)
    anova = next(t for t in r.tests if t.test == "one-way ANOVA F")
    assert anova.p_value is not None and anova.p_value > 0.9
    groups = [[a.log10_baseline_flux for a in r.assignments if a.arm == arm] for arm in ARMS]
    assert_allclose(anova.p_value, stats.f_oneway(*groups).pvalue, rtol=1e-12)
