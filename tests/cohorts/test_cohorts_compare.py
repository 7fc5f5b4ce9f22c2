"""Per-day tests, per-animal AUC and growth rates: tumr references and hand cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from cohorts import (
    AnimalEnd,
    Cohort,
    EmptyWindowError,
    InsufficientDataError,
    compare_auc,
    compare_by_day,
    compare_growth_rates,
    per_animal_auc,
    per_animal_growth_rates,
)

from .conftest import make_cohort

# ------------------------------------------------------------------ tumr response features


def test_tumr_breast_rfeat_welch(breast: Cohort):
    # tumr reference/rfeat.md: rfeat(data = breast, ..., comparison = "t.test")
    # Welch t = 0.64605, df = 24.351, p = 0.5243, 95 % CI -0.3345751 0.6398147,
    # mean NR 0.8872739, mean VEH 0.7346541 (slopes of log1p(Volume) on Week)
    res = compare_growth_rates(breast, control="VEH", treated="NR", scale="log1p")
    assert_allclose(res.welch.statistic, 0.64605, atol=5e-6)
    assert_allclose(res.welch.df, 24.351, atol=5e-4)
    assert_allclose(res.welch.p_value, 0.5243, atol=5e-5)
    assert_allclose(res.mean_treated, 0.8872739, rtol=1e-7)
    assert_allclose(res.mean_control, 0.7346541, rtol=1e-7)
    assert_allclose(
        [res.mean_difference.ci_low, res.mean_difference.ci_high],
        [-0.3345751, 0.6398147],
        rtol=1e-6,
    )
    assert (res.n_control, res.n_treated) == (14, 14)
    # the 17 missing volumes are excluded and reported, not silently dropped
    missing = [e for e in res.exclusions if e.reason == "missing value"]
    assert len(missing) == 17
    assert res.doubling_time_control_days is None  # undefined on log1p
    json.dumps(res.to_dict())


def _slopes_by_arm(table) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for m in table.animals:
        out.setdefault(m.arm, []).append(m.value)
    return out


def test_tumr_melanoma2_rfeat_anova_and_tukey(melanoma2: Cohort):
    # tumr articles/tumr.md: rfeat(mel2, comparison = "both")
    # ANOVA F = 2.938 on (4, 42) df, p = 0.0314; Tukey B-A diff -0.039562710 p 0.0200139
    table = per_animal_growth_rates(melanoma2, scale="log1p")
    g = _slopes_by_arm(table)
    arms = sorted(g)
    assert arms == ["A", "B", "C", "D", "E"]
    f = stats.f_oneway(*(g[a] for a in arms))
    assert_allclose(f.statistic, 2.938, atol=5e-4)
    assert_allclose(f.pvalue, 0.0314, atol=5e-5)
    assert sum(len(v) for v in g.values()) - len(arms) == 42
    tukey = stats.tukey_hsd(*(g[a] for a in arms))
    assert_allclose(np.mean(g["B"]) - np.mean(g["A"]), -0.039562710, rtol=1e-7)
    assert_allclose(tukey.pvalue[1, 0], 0.0200139, rtol=1e-4)  # B-A
    assert_allclose(tukey.pvalue[2, 0], 0.1701000, rtol=1e-4)  # C-A
    assert_allclose(tukey.pvalue[3, 0], 0.2941216, rtol=1e-4)  # D-A
    assert_allclose(tukey.pvalue[4, 0], 0.1274422, rtol=1e-4)  # E-A


def test_tumr_melanoma1_rfeat_anova(melanoma1: Cohort):
    # tumr reference/rfeat.md: rfeat(data = melanoma1, ..., comparison = "anova")
    # F value 26.4 on (3, 31), Pr(>F) 1.13e-08; Sum Sq 0.04132 / 0.01618
    g = _slopes_by_arm(per_animal_growth_rates(melanoma1, scale="log1p"))
    f = stats.f_oneway(*(g[a] for a in sorted(g)))
    assert_allclose(f.statistic, 26.4, atol=0.05)
    assert_allclose(f.pvalue, 1.13e-08, rtol=5e-3)
    allv = np.concatenate([g[a] for a in g])
    ss_within = sum(((np.asarray(v) - np.mean(v)) ** 2).sum() for v in g.values())
    assert_allclose(((allv - allv.mean()) ** 2).sum() - ss_within, 0.04132, atol=5e-6)
    assert_allclose(ss_within, 0.01618, atol=5e-6)


# ------------------------------------------------------------------------------ hand cases

HAND = {
    # animal: (arm, {day: flux p/s})
    "c1": ("vehicle", {0: 1e5, 7: 1e6, 14: 1e7}),
    "c2": ("vehicle", {0: 2e5, 7: 4e6, 14: 2e7}),
    "c3": ("vehicle", {0: 1e5, 7: 3e6, 14: 5e7}),
    "t1": ("drug", {0: 1e5, 7: 2e5, 14: 4e5}),
    "t2": ("drug", {0: 3e5, 7: 3e5, 14: 3e6}),
    "t3": ("drug", {0: 1e5, 7: 5e5, 14: 1e6}),
}


def test_compare_by_day_matches_scipy_and_holm():
    res = compare_by_day(make_cohort(HAND), control="vehicle", treated="drug")
    assert [r.day for r in res.rows] == [0.0, 7.0, 14.0]
    p_welch = []
    for row in res.rows:
        c = np.log10([HAND[a][1][row.day] for a in ("c1", "c2", "c3")])
        t = np.log10([HAND[a][1][row.day] for a in ("t1", "t2", "t3")])
        w = stats.ttest_ind(t, c, equal_var=False)
        assert_allclose(row.welch.statistic, w.statistic, rtol=1e-12)
        assert_allclose(row.welch.p_value, w.pvalue, rtol=1e-12)
        assert_allclose(row.mean_difference.estimate, t.mean() - c.mean(), rtol=1e-12)
        u = stats.mannwhitneyu(t, c, alternative="two-sided")
        assert_allclose(row.mann_whitney.p_value, u.pvalue, rtol=1e-12)
        assert (row.n_control, row.n_treated) == (3, 3)
        p_welch.append(w.pvalue)
    # Holm by hand: sort p, multiply by (m - rank), running max, cap at 1
    order = np.argsort(p_welch)
    holm = np.empty(3)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p_welch[i]))
        holm[i] = running
    assert_allclose([r.welch.p_adjusted for r in res.rows], holm, rtol=1e-12)
    assert all(r.welch.correction == "holm" for r in res.rows)


def test_compare_by_day_bh():
    res = compare_by_day(make_cohort(HAND), control="vehicle", treated="drug", correction="bh")
    p = np.array([r.mann_whitney.p_value for r in res.rows])
    # BH by hand: p_(i) * m / i, running min from the largest
    order = np.argsort(p)[::-1]
    bh = np.empty(3)
    running = 1.0
    for i in order:
        rank = int(np.sum(p <= p[i]))
        running = min(running, p[i] * 3 / rank)
        bh[i] = running
    assert_allclose([r.mann_whitney.p_adjusted for r in res.rows], bh, rtol=1e-12)


def test_day_with_one_animal_in_an_arm_is_skipped_with_reason():
    table = dict(HAND)
    table["c4"] = ("vehicle", {21: 1e8})
    table["t4"] = ("drug", {21: 1e6})
    table["t5"] = ("drug", {21: 2e6})
    res = compare_by_day(make_cohort(table), control="vehicle", treated="drug")
    assert [s.day for s in res.skipped_days] == [21.0]
    assert "1 control (vehicle)" in res.skipped_days[0].reason


def test_hodges_lehmann_ci_inverts_the_exact_mann_whitney_test():
    rng = np.random.default_rng(3)
    ctrl = {f"c{i}": ("vehicle", {0: float(10 ** rng.normal(6, 0.4))}) for i in range(9)}
    trt = {f"t{i}": ("drug", {0: float(10 ** rng.normal(5.5, 0.4))}) for i in range(8)}
    res = compare_by_day(make_cohort({**ctrl, **trt}), control="vehicle", treated="drug")
    row = res.rows[0]
    c = np.log10([v[1][0] for v in ctrl.values()])
    t = np.log10([v[1][0] for v in trt.values()])
    diffs = np.subtract.outer(t, c).ravel()
    assert_allclose(row.shift.estimate, np.median(diffs), rtol=1e-12)

    def p_at(shift: float) -> float:
        return stats.mannwhitneyu(t - shift, c, method="exact").pvalue

    lo, hi = row.shift.ci_low, row.shift.ci_high
    eps = 1e-9
    # shifts just inside the interval are not rejected at 5 %, just outside they are
    assert p_at(lo + eps) >= 0.05 and p_at(hi - eps) >= 0.05
    assert p_at(lo - eps) < 0.05 and p_at(hi + eps) < 0.05


def test_auc_trapezoid_by_hand():
    res = compare_auc(make_cohort(HAND), control="vehicle", treated="drug")
    assert res.window == (0.0, 14.0)
    by = {m.animal: m.value for m in res.animals}
    # c1: log10 5, 6, 7 at days 0, 7, 14 -> 7*(5+6)/2 + 7*(6+7)/2 = 84
    assert_allclose(by["c1"], 84.0, rtol=1e-12)
    t2 = np.log10([3e5, 3e5, 3e6])
    assert_allclose(by["t2"], 7 * (t2[0] + t2[1]) / 2 + 7 * (t2[1] + t2[2]) / 2, rtol=1e-12)
    vc = [by[a] for a in ("c1", "c2", "c3")]
    vt = [by[a] for a in ("t1", "t2", "t3")]
    w = stats.ttest_ind(vt, vc, equal_var=False)
    assert_allclose(res.welch.p_value, w.pvalue, rtol=1e-12)
    assert res.metric == "auc" and res.unit == "log10 value x day"


def test_auc_window_interpolates_and_excludes_animals_not_covering_it():
    table = dict(HAND)
    table["c4"] = ("vehicle", {0: 1e5, 7: 1e6})  # died early
    cohort = make_cohort(table, ends=[AnimalEnd("c4", 9, "humane_endpoint")])
    res = per_animal_auc(cohort, arms=["vehicle", "drug"], window=(3.5, 14))
    c4 = [e for e in res.exclusions if e.animal == "c4"]
    assert len(c4) == 1 and "do not cover the AUC window [3.5, 14]" in c4[0].reason
    by = {m.animal: m.value for m in res.animals}
    # c1: y(3.5) = 5.5; 3.5*(5.5+6)/2 + 7*(6+7)/2 = 20.125 + 45.5
    assert_allclose(by["c1"], 65.625, rtol=1e-12)
    # default window: the widest every animal covers, [0, 7] because of c4
    assert per_animal_auc(cohort).window == (0.0, 7.0)
    table["t9"] = ("drug", {14: 1e6, 21: 1e7})  # enrolled late
    late = make_cohort(table, ends=[AnimalEnd("c4", 9, "humane_endpoint")])
    with pytest.raises(EmptyWindowError, match=r"animal 't9' starts on day 14 but animal 'c4'"):
        per_animal_auc(late)
    with pytest.raises(EmptyWindowError, match="start must precede"):
        per_animal_auc(cohort, window=(14, 14))


def test_growth_rate_and_doubling_time_by_hand():
    res = compare_growth_rates(make_cohort(HAND), control="vehicle", treated="drug")
    by = {m.animal: m for m in res.animals}
    # c1: log10 flux 5, 6, 7 at 0, 7, 14 -> slope 1/7 per day; doubling log10(2)*7 days
    assert_allclose(by["c1"].value, 1 / 7, rtol=1e-12)
    assert_allclose(by["c1"].intercept, 5.0, rtol=1e-12)
    assert_allclose(by["c1"].doubling_time_days, 7 * math.log10(2), rtol=1e-12)
    for a in HAND:
        days = np.array(sorted(HAND[a][1]))
        y = np.log10([HAND[a][1][d] for d in days])
        assert_allclose(by[a].value, stats.linregress(days, y).slope, rtol=1e-10)
    assert_allclose(res.doubling_time_control_days, math.log10(2) / res.mean_control, rtol=1e-12)


def test_non_growing_animal_has_no_doubling_time():
    table = {
        "a": ("vehicle", {0: 1e6, 7: 1e6}),
        "b": ("vehicle", {0: 1e6, 7: 1e5}),
        "c": ("drug", {0: 1e6, 7: 2e6}),
        "d": ("drug", {0: 1e6, 7: 3e6}),
    }
    res = compare_growth_rates(make_cohort(table), control="vehicle", treated="drug")
    by = {m.animal: m for m in res.animals}
    assert by["a"].doubling_time_days is None
    assert by["b"].doubling_time_days is None
    assert res.doubling_time_control_days is None
    assert by["c"].doubling_time_days == pytest.approx(7.0)


def test_animal_with_one_image_is_excluded_then_arm_too_small():
    table = {
        "a": ("vehicle", {0: 1e6, 7: 1e7}),
        "b": ("vehicle", {0: 1e6}),
        "c": ("drug", {0: 1e6, 7: 2e6}),
        "d": ("drug", {0: 1e6, 7: 3e6}),
    }
    with pytest.raises(InsufficientDataError, match=r"arm 'vehicle' has 1 animal"):
        compare_growth_rates(make_cohort(table), control="vehicle", treated="drug")
    table_ok = per_animal_growth_rates(make_cohort(table))
    assert [(e.animal, e.day) for e in table_ok.exclusions] == [("b", None)]
    assert "a slope needs at least 2" in table_ok.exclusions[0].reason


def test_identical_values_make_welch_undefined_not_an_error():
    # every animal at the detection floor on day 0 -> zero variance in both arms
    table = {
        "c1": ("vehicle", {0: 10.0, 7: 1e6}),
        "c2": ("vehicle", {0: 50.0, 7: 3e6}),
        "t1": ("drug", {0: 20.0, 7: 1e5}),
        "t2": ("drug", {0: 10.0, 7: 4e5}),
    }
    res = compare_by_day(make_cohort(table), control="vehicle", treated="drug", floor=100.0)
    d0, d7 = res.rows
    assert d0.mean_difference.estimate == 0.0 and d0.mean_difference.ci_low is None
    assert math.isnan(d0.welch.p_value) and math.isnan(d0.welch.p_adjusted)
    # the undefined test is not counted in the Holm family: day 7 keeps its raw p
    assert d7.welch.p_adjusted == d7.welch.p_value
    assert d0.mann_whitney.p_value == 1.0
    assert len([a for a in res.adjustments if a.kind == "floored"]) == 4
    d = res.to_dict()
    assert d["rows"][0]["welch"]["p_value"] is None
    json.dumps(d)


def test_arm_with_a_single_animal_is_named():
    table = {k: v for k, v in HAND.items() if k in ("c1", "c2", "t1")}
    with pytest.raises(InsufficientDataError, match=r"arm 'drug' has 1 animal\(s\)"):
        compare_by_day(make_cohort(table), control="vehicle", treated="drug")


# ------------------------------------------------------ Mann-Whitney: exact where R is exact

# two arms of 10 animals, no ties (log10 values)
MW_CONTROL = (6.62, 7.31, 7.05, 7.48, 6.99, 7.66, 7.20, 6.87, 7.83, 7.40)
MW_TREATED = (5.91, 6.42, 6.05, 6.88, 7.12, 6.33, 6.71, 5.78, 6.95, 6.50)
# R 4.2.2: wilcox.test(MW_TREATED, MW_CONTROL) -> "Wilcoxon rank sum exact test",
# W = 9, p-value = 0.0010500335577735 (with exact = FALSE: 0.00220221994249708)
MW_R_W, MW_R_EXACT_P, MW_R_NORMAL_P = 9.0, 0.0010500335577735, 0.00220221994249708


def _mw_cohort(kind: str) -> Cohort:
    """Each animal's per-day log10 value (day 7), slope (log10 per day over days 0-10) and
    AUC (50 x slope over [0, 10]) are its MW_* value, so every test sees the same pairs."""
    table = {}
    for arm, values in (("vehicle", MW_CONTROL), ("drug", MW_TREATED)):
        for i, v in enumerate(values):
            if kind == "per_day":
                table[f"{arm}{i}"] = (arm, {7: 10**v})
            else:
                table[f"{arm}{i}"] = (arm, {0: 1.0, 10: 10 ** (10 * v)})
    return make_cohort(table)


def test_mann_whitney_is_exact_like_r_for_ten_per_arm_without_ties():
    row = compare_by_day(_mw_cohort("per_day"), control="vehicle", treated="drug").rows[0]
    assert row.mann_whitney.statistic == MW_R_W
    assert_allclose(row.mann_whitney.p_value, MW_R_EXACT_P, rtol=1e-10)
    assert row.mann_whitney.method.startswith("exact")
    # the normal approximation (what scipy's "auto" picks for n > 8) is twice as large
    assert not np.isclose(row.mann_whitney.p_value, MW_R_NORMAL_P, rtol=0.5)


@pytest.mark.parametrize("compare", [compare_growth_rates, compare_auc])
def test_mann_whitney_exact_for_slopes_and_auc(compare):
    res = compare(_mw_cohort("per_animal"), control="vehicle", treated="drug")
    assert res.mann_whitney.statistic == MW_R_W
    assert_allclose(res.mann_whitney.p_value, MW_R_EXACT_P, rtol=1e-10)
    assert res.mann_whitney.method.startswith("exact")


def test_mann_whitney_with_ties_uses_corrected_normal_like_r():
    # R: wilcox.test(c(1,2,2,3,5,6,6), c(3,4,7,8,8,9)) -> W = 6.5, p = 0.0443169632666854
    # ("Wilcoxon rank sum test with continuity correction", ties)
    table = {f"t{i}": ("drug", {0: 10.0**v}) for i, v in enumerate((1, 2, 2, 3, 5, 6, 6))}
    table |= {f"c{i}": ("vehicle", {0: 10.0**v}) for i, v in enumerate((3, 4, 7, 8, 8, 9))}
    row = compare_by_day(make_cohort(table), control="vehicle", treated="drug").rows[0]
    assert row.mann_whitney.statistic == 6.5
    assert_allclose(row.mann_whitney.p_value, 0.0443169632666854, rtol=1e-10)
    assert row.mann_whitney.method.startswith("normal approximation")
    assert "tie" in row.mann_whitney.method
    # the shift says it is not R's estimator here (R inverts the normal test numerically)
    assert "normal-approximation" in row.shift.name
    exact_row = compare_by_day(_mw_cohort("per_day"), control="vehicle", treated="drug").rows[0]
    assert "normal" not in exact_row.shift.name
