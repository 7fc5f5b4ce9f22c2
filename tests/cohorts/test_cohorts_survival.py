"""Positivity, incidence (Fisher) and metastasis-free survival vs lifelines / R."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from numpy.testing import assert_allclose

from cohorts import (
    AnimalEnd,
    Cohort,
    InsufficientDataError,
    InvalidInputError,
    Observation,
    incidence_by_day,
    metastasis_free_survival,
    site_onsets,
)

DAYS = (0, 3, 7, 10, 14, 17, 21, 24, 28)
LOW, HIGH, THRESHOLD = 2e4, 5e6, 1e5


# onset day of spine positivity (None: never) and humane-endpoint day (None: to study end)
ARMS = {
    "IgG": [
        (7, None),
        (10, None),
        (10, None),
        (14, None),
        (14, None),
        (14, None),
        (17, None),
        (21, None),
        (None, None),
        (None, 12),
        (10, None),
        (24, 19),
        (None, None),
        (17, 26),
    ],
    "1D11": [
        (14, None),
        (17, None),
        (21, 19),
        (21, None),
        (24, None),
        (None, 12),
        (None, None),
        (28, None),
        (None, None),
        (17, None),
        (None, 26),
        (24, None),
        (28, None),
        (10, None),
    ],
}


def _study():
    """Two arms of 14 mice imaged on DAYS; spine turns positive at ``onset`` (flux jumps
    from LOW to HIGH) unless the mouse reaches a humane endpoint first. Returns the cohort
    and the true (time, event, arm) per mouse."""
    rng = np.random.default_rng(11)
    obs, ends, truth = [], [], {}
    for arm, mice in ARMS.items():
        for i, (onset, death) in enumerate(mice):
            animal = f"{arm}-{i}"
            last = 28 if death is None or (onset is not None and onset <= death) else death
            if last == 28:
                ends.append(AnimalEnd(animal, 28.0, "study_end"))
            else:
                ends.append(AnimalEnd(animal, float(death), "humane_endpoint"))
            for d in DAYS:
                if d <= last:
                    high = onset is not None and d >= onset
                    v = HIGH if high else LOW * rng.uniform(0.5, 2)
                    obs.append(Observation(animal, arm, d, v, site="spine"))
            event = onset is not None and onset <= last
            truth[animal] = (float(onset if event else last), event, arm)
    return Cohort.from_records(obs, ends=ends), truth


def test_onsets_and_censoring_match_construction():
    cohort, truth = _study()
    table = site_onsets(cohort, site="spine", threshold=THRESHOLD)
    got = {a.animal: (a.time, a.event, a.arm) for a in table.animals}
    assert got == truth
    censored = [a for a in table.animals if not a.event]
    assert all(a.censor_reason.startswith("censored: ") for a in censored)


def test_km_logrank_cox_match_lifelines():
    cohort, truth = _study()
    res = metastasis_free_survival(
        cohort, control="IgG", treated="1D11", site="spine", threshold=THRESHOLD
    )
    arms = np.array([v[2] for v in truth.values()])
    t = np.array([v[0] for v in truth.values()])
    e = np.array([v[1] for v in truth.values()])
    for curve in res.curves:
        m = arms == curve.arm
        km = KaplanMeierFitter().fit(t[m], e[m])
        ev_times = [p.time for p in curve.points]
        surv = km.survival_function_.loc[ev_times, "KM_estimate"].to_numpy()
        assert_allclose([p.survival for p in curve.points], surv, rtol=1e-12)
        ci = km.confidence_interval_.loc[ev_times].to_numpy()
        got = np.array([[p.ci_low, p.ci_high] for p in curve.points], dtype=float)
        assert_allclose(got, ci, rtol=1e-9)
        lifelines_median = km.median_survival_time_
        if np.isfinite(lifelines_median):
            assert curve.median_time == lifelines_median
        else:
            assert curve.median_time is None
        assert curve.n == m.sum() and curve.n_events == e[m].sum()
    lr = logrank_test(t[arms == "1D11"], t[arms == "IgG"], e[arms == "1D11"], e[arms == "IgG"])
    assert_allclose(res.logrank.statistic, lr.test_statistic, rtol=1e-9)
    assert_allclose(res.logrank.p_value, lr.p_value, rtol=1e-9)

    df = pd.DataFrame({"T": t, "E": e.astype(int), "treated": (arms == "1D11").astype(float)})
    # Efron ties, as res.ties; lifelines' default Newton precision (1e-7) stops ~1e-4 short
    cph = CoxPHFitter().fit(df, "T", "E", fit_options={"precision": 1e-12})
    assert res.ties == "efron"
    assert_allclose(res.hazard_ratio.estimate, cph.hazard_ratios_["treated"], rtol=1e-7)
    ci = np.exp(cph.confidence_intervals_.loc["treated"].to_numpy())
    assert_allclose([res.hazard_ratio.ci_low, res.hazard_ratio.ci_high], ci, rtol=1e-6)
    assert_allclose(res.cox.p_value, cph.summary.loc["treated", "p"], rtol=1e-6)
    assert res.events_control + res.events_treated == e.sum()
    json.dumps(res.to_dict())


def test_small_case_by_hand():
    # control times 2, 4+, 6 ; treated 5, 8+, 9+  (+ = censored)
    obs = []
    ends = []
    for animal, arm, time, event in [
        ("c1", "v", 2, True),
        ("c2", "v", 4, False),
        ("c3", "v", 6, True),
        ("t1", "d", 5, True),
        ("t2", "d", 8, False),
        ("t3", "d", 9, False),
    ]:
        obs.append(Observation(animal, arm, 0, 1.0, site="femur"))
        obs.append(Observation(animal, arm, time, 100.0 if event else 1.0, site="femur"))
        ends.append(AnimalEnd(animal, time, "study_end" if not event else "death"))
    res = metastasis_free_survival(
        Cohort.from_records(obs, ends=ends), control="v", treated="d", site="femur", threshold=10
    )
    ctrl = res.curves[0]
    # S(2) = 2/3, S(6) = 2/3 * (1 - 1/1) = 0
    assert [(p.time, p.at_risk, p.events) for p in ctrl.points] == [(2, 3, 1), (6, 1, 1)]
    assert_allclose([p.survival for p in ctrl.points], [2 / 3, 0.0], atol=1e-15)
    assert ctrl.median_time == 6.0
    # R: survdiff(Surv(c(2,4,6,5,8,9), c(1,0,1,1,0,0)) ~ rep(c("v","d"), each = 3))
    # hand: O-E for v at t=2 (1 - 3/6), t=5 (0 - 1/4), t=6 (1 - 1/3): 0.916667;
    # V = 3*3/36 + 1*3/16 + 1*2/9 = 0.659722;  chisq = 0.916667^2 / 0.659722 = 1.273684
    assert_allclose(res.logrank.statistic, 0.9166666666666666**2 / 0.6597222222222222, rtol=1e-9)


def test_k_consecutive_images_and_background_multiple():
    obs = []
    series = {"a": [1, 50, 1, 50, 50], "b": [1, 50, 50, 1, 1], "c": [1, 1, 1, 1, 1]}
    for animal, values in series.items():
        for d, v in zip((0, 7, 14, 21, 28), values, strict=True):
            obs.append(Observation(animal, "v", d, v, site="skull"))
    c = Cohort.from_records(obs)
    k1 = {a.animal: a.onset_day for a in site_onsets(c, site="skull", threshold=10).animals}
    assert k1 == {"a": 7.0, "b": 7.0, "c": None}
    k2 = site_onsets(c, site="skull", background=5, background_multiple=3, consecutive=2)
    assert {a.animal: a.onset_day for a in k2.animals} == {"a": 21.0, "b": 7.0, "c": None}
    assert all(a.threshold == 15 for a in k2.animals)
    assert "3 x background on 2 consecutive" in k2.rule
    no_c = site_onsets(
        c, site="skull", background={"a": 5, "b": 100}, background_multiple=3, consecutive=1
    )
    assert {a.animal: a.onset_day for a in no_c.animals} == {"a": 7.0, "b": None}
    assert [(e.animal, e.reason) for e in no_c.exclusions] == [("c", "no background value given")]
    with pytest.raises(InvalidInputError, match="exactly one of threshold"):
        site_onsets(c, site="skull")
    with pytest.raises(InvalidInputError, match="consecutive"):
        site_onsets(c, site="skull", threshold=1, consecutive=0)


def test_incidence_fisher_matches_r_tea_tasting():
    # day 14: treated 3/4 positive, control 1/4 positive -> table [[3, 1], [1, 3]]
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2)) -> p-value = 0.4857,
    #    odds ratio 6.408309, 95 % CI 0.2117329 621.9337505
    obs = []
    for i in range(4):
        obs.append(Observation(f"t{i}", "drug", 14, 1e6 if i < 3 else 1.0, site="spine"))
        obs.append(Observation(f"c{i}", "veh", 14, 1e6 if i < 1 else 1.0, site="spine"))
    res = incidence_by_day(
        Cohort.from_records(obs), control="veh", treated="drug", site="spine", threshold=1e3
    )
    row = res.rows[0]
    assert (row.positive_treated, row.n_treated, row.positive_control, row.n_control) == (
        3,
        4,
        1,
        4,
    )
    assert_allclose(row.fisher.p_value, 0.4857, atol=5e-5)
    assert_allclose(row.odds_ratio.estimate, 6.408309, rtol=5e-6)
    assert_allclose(row.odds_ratio.ci_low, 0.2117329, rtol=5e-5)
    # scipy's root-finding upper bound differs from R's uniroot in the 3rd digit
    assert_allclose(row.odds_ratio.ci_high, 621.9337505, rtol=0.01)
    assert row.fisher.p_adjusted == row.fisher.p_value  # one day: Holm leaves it


def test_incidence_is_cumulative_among_animals_imaged():
    cohort, truth = _study()
    res = incidence_by_day(cohort, control="IgG", treated="1D11", site="spine", threshold=THRESHOLD)
    for row in res.rows:
        for arm, pos, n in (
            ("IgG", row.positive_control, row.n_control),
            ("1D11", row.positive_treated, row.n_treated),
        ):
            alive = [a for a, v in truth.items() if v[2] == arm and (v[1] or v[0] >= row.day)]
            imaged = [a for a in alive if truth[a][0] >= row.day or truth[a][1]]
            assert n == len(imaged)
            assert pos == sum(1 for a in imaged if truth[a][1] and truth[a][0] <= row.day)


def test_no_event_and_one_sided_events():
    obs = [Observation(f"m{i}", "v" if i < 3 else "d", 0, 1.0, site="spine") for i in range(6)]
    obs += [Observation(f"m{i}", "v" if i < 3 else "d", 7, 1.0, site="spine") for i in range(6)]
    c = Cohort.from_records(obs)
    with pytest.raises(InsufficientDataError, match=r"no animal .* became positive"):
        metastasis_free_survival(c, control="v", treated="d", site="spine", threshold=10)
    obs[6] = Observation("m0", "v", 7, 100.0, site="spine")
    res = metastasis_free_survival(
        Cohort.from_records(obs), control="v", treated="d", site="spine", threshold=10
    )
    assert res.hazard_ratio.estimate is None and res.cox is None
    assert "not estimable" in res.warnings[0]
    assert res.logrank.p_value < 1


def test_completely_separated_event_times_give_no_hazard_ratio():
    # Every control animal turns positive (days 3-7) before any treated one (days 17-21):
    # the Cox partial likelihood rises without bound, so no finite HR exists (lifelines'
    # CoxPHFitter warns of the same convergence failure). The log-rank test still applies.
    obs = []
    for arm, onsets in (("ctl", (3, 3, 7, 7)), ("trt", (17, 21, 21, 17))):
        for i, onset in enumerate(onsets):
            for day in (0, 3, 7, 10, 14, 17, 21):
                value = 1e7 if day >= onset else 1e4
                obs.append(Observation(f"{arm}{i}", arm, day, value, site="spine"))
    res = metastasis_free_survival(
        Cohort.from_records(obs), control="ctl", treated="trt", site="spine", threshold=1e6
    )
    assert res.events_control == 4 and res.events_treated == 4
    assert res.hazard_ratio.estimate is None and res.cox is None
    assert any("no finite hazard ratio" in w for w in res.warnings)
    expected = logrank_test([3, 3, 7, 7], [17, 21, 21, 17])
    assert_allclose(res.logrank.p_value, expected.p_value, rtol=1e-9)


# R 4.2.2, survival 3.5.3: summary(survfit(Surv(time, event) ~ 1))$table["median"]
KM_MEDIANS_FROM_R = [
    # flat at exactly 0.5 from day 4 to the next event on day 10 -> midpoint 7
    ([2, 3, 4, 5, 10, 12], [1, 1, 1, 0, 1, 0], 7.0),
    # statsmodels' product gives 0.5000000000000001 on day 10; R: (10 + 17) / 2
    ([6, 10, 21, 10, 27, 17, 4, 29], [1, 1, 0, 1, 1, 1, 1, 1], 13.5),
    # 0.5000000000000001 on day 11, next event day 12 -> 11.5
    ([11, 8, 12, 12, 7, 29, 2], [1, 1, 0, 1, 1, 0, 0], 11.5),
    # reaches 0.5 on day 28 with its last event and stays there -> 28 (not "not reached")
    ([7, 14, 21, 28, 28, 28, 28, 28], [1, 1, 1, 1, 0, 0, 0, 0], 28.0),
    # reaches 0.5 on day 5, never drops below -> 5
    ([1, 2, 3, 4, 5, 28, 28, 28, 28, 28], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], 5.0),
    # flat at 0.5 from day 15 to day 20 -> 17.5
    ([3, 6, 9, 12, 15, 20, 30, 30, 30, 30], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0], 17.5),
    # passes below 0.5 without touching it -> 6
    ([2, 4, 6, 8, 10], [1, 1, 1, 1, 0], 6.0),
]


@pytest.mark.parametrize(("time", "event", "median"), KM_MEDIANS_FROM_R)
def test_km_median_is_r_survfit_median(time, event, median):
    from cohorts._survival import kaplan_meier

    curve = kaplan_meier("a", np.array(time, dtype=float), np.array(event, dtype=bool))
    assert curve.median_time == median


def test_km_median_not_reached_is_none():
    from cohorts._survival import kaplan_meier, km_median

    # R: survfit(Surv(c(5, 9, 20, 20), c(1, 0, 0, 0)) ~ 1) median NA (S = 0.75 at the end)
    curve = kaplan_meier("a", np.array([5.0, 9, 20, 20]), np.array([True, False, False, False]))
    assert curve.median_time is None
    # within R's tolerance sqrt(eps) = 1.49e-8 of 0.5 counts as 0.5; beyond it does not
    assert km_median([4.0, 10.0], [0.5 + 1e-9, 0.25]) == 7.0
    assert km_median([4.0, 10.0], [0.5 + 1e-7, 0.25]) == 10.0


def test_km_median_through_the_survival_analysis():
    # control: onset days 2, 4, 4 of 6 mice, the others censored at study end (day 10):
    # S = 5/6, 3/6 = 0.5 from day 4 to the end -> median 4 (R survfit); treated: 1 event
    obs, ends = [], []
    for arm, onsets in {"v": [2, 4, 4, None, None, None], "d": [8, None, None, None]}.items():
        for i, onset in enumerate(onsets):
            animal = f"{arm}{i}"
            for day in (0, 2, 4, 6, 8, 10):
                high = onset is not None and day >= onset
                obs.append(Observation(animal, arm, day, 100.0 if high else 1.0, site="spine"))
            ends.append(AnimalEnd(animal, 10.0, "study_end"))
    res = metastasis_free_survival(
        Cohort.from_records(obs, ends=ends), control="v", treated="d", site="spine", threshold=10
    )
    assert res.curves[0].median_time == 4.0
    assert res.curves[1].median_time is None


def test_death_is_event_counts_humane_endpoints_and_names_every_reason():
    cohort, _ = _study()
    kept = metastasis_free_survival(
        cohort, control="IgG", treated="1D11", site="spine", threshold=THRESHOLD
    )
    assert {a.reason for a in kept.animals} == {"onset", "study_end", "humane_endpoint"}
    for a in kept.animals:
        assert a.event == (a.reason == "onset")
    res = metastasis_free_survival(
        cohort,
        control="IgG",
        treated="1D11",
        site="spine",
        threshold=THRESHOLD,
        death_is_event=True,
    )
    # every humane endpoint without onset is now an event at its day (5 in ARMS)
    dead = [a for a in res.animals if a.reason == "humane_endpoint"]
    assert len(dead) == 5 and all(a.event and a.censor_reason is None for a in dead)
    assert sum(a.event for a in res.animals) == sum(a.event for a in kept.animals) + 5
    t = np.array([a.time for a in res.animals])
    e = np.array([a.event for a in res.animals])
    arms = np.array([a.arm for a in res.animals])
    lr = logrank_test(t[arms == "1D11"], t[arms == "IgG"], e[arms == "1D11"], e[arms == "IgG"])
    assert_allclose(res.logrank.statistic, lr.test_statistic, rtol=1e-9)
    for curve in res.curves:
        m = arms == curve.arm
        km = KaplanMeierFitter().fit(t[m], e[m])
        surv = km.survival_function_.loc[[p.time for p in curve.points], "KM_estimate"]
        assert_allclose([p.survival for p in curve.points], surv.to_numpy(), rtol=1e-12)
