"""Power of the log-rank test for onset, by simulation: the vectorised log-rank against
lifelines, simulated power against Schoenfeld's formula, the type I error at HR = 1, expected
numbers of events against their closed forms (continuous, on imaging days, with dropout, from
growth), reproducibility and refusals. Bigger grids: bench/bench_survival_power.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines.statistics import logrank_test, power_under_cph
from numpy.testing import assert_allclose
from scipy import stats

from cohorts import (
    GrowthOnset,
    GrowthParameters,
    InvalidInputError,
    OnsetDesign,
    OnsetDistribution,
    simulate_onset_power,
)
from cohorts._power_survival import logrank_rows

Z = stats.norm.ppf(0.975)


def schoenfeld(hr: float, events: float) -> float:
    """Schoenfeld (1981), equal arms: Phi(|log HR| sqrt(D / 4) - z_0.975), written out here
    independently of cohorts.schoenfeld_power."""
    return float(stats.norm.cdf(abs(math.log(hr)) * math.sqrt(events / 4) - Z))


def p_event_exponential(rate: float, dropout: float, follow_up: float) -> float:
    """P(onset seen) with exponential onset (rate) and dropout, continuous observation:
    rate / (rate + dropout) (1 - exp(-(rate + dropout) follow_up))."""
    total = rate + dropout
    return rate / total * (1 - math.exp(-total * follow_up))


@pytest.mark.parametrize("ties", [True, False])
def test_logrank_rows_equals_lifelines(ties: bool) -> None:
    rng = np.random.default_rng(14)
    m, n = 60, 9
    time = rng.exponential(10.0, (m, 2 * n))
    if ties:
        time = np.ceil(time / 7) * 7  # imaging every 7 days: heavy ties, censored ties too
    event = rng.random((m, 2 * n)) < 0.7
    group = np.repeat([False, True], n)
    before = time.copy()
    chi2, u = logrank_rows(time, event, group)
    expected = [
        logrank_test(time[i, :n], time[i, n:], event[i, :n], event[i, n:]).test_statistic
        for i in range(m)
    ]
    assert_allclose(chi2, expected, rtol=1e-10)
    # u = observed - expected events of the treated arm
    observed = (event & group).sum(axis=1)
    assert np.all(np.sign(u[observed == 0]) <= 0)
    assert_allclose(time, before, rtol=0)  # input unchanged


def test_logrank_rows_unequal_arms_and_no_events() -> None:
    rng = np.random.default_rng(3)
    time = rng.exponential(5.0, (20, 11))
    event = rng.random((20, 11)) < 0.5
    event[0] = False  # no event: undefined, NaN
    group = np.arange(11) >= 4
    chi2, _ = logrank_rows(time, event, group)
    assert math.isnan(chi2[0])
    expected = [
        logrank_test(time[i, :4], time[i, 4:], event[i, :4], event[i, 4:]).test_statistic
        for i in range(1, 20)
    ]
    assert_allclose(chi2[1:], expected, rtol=1e-10)


# Schoenfeld's formula is asymptotic: checked where each design has ~50 events (40 per arm).
# 4000 studies per design; tolerance 3.5 Monte Carlo SEs (seeded, so reproducible).
@pytest.mark.parametrize(
    ("hr", "shape", "dropout"), [(0.5, 1.0, 0.0), (0.6, 1.0, 0.01), (0.5, 2.0, 0.0)]
)
def test_continuous_power_agrees_with_schoenfeld(hr: float, shape: float, dropout: float) -> None:
    n, median, follow_up, n_sim = 40, 20.0, 40.0, 4000
    model = OnsetDistribution(median, shape=shape, dropout_per_day=dropout)
    row = simulate_onset_power(
        model, [OnsetDesign(n, follow_up)], hazard_ratio=hr, n_sim=n_sim, seed=7
    ).rows[0]
    if shape == 1.0:
        rate = math.log(2) / median
        p_c = p_event_exponential(rate, dropout, follow_up)
        p_t = p_event_exponential(rate * hr, dropout, follow_up)
    else:  # Weibull S(t) = 0.5^((t / median)^k); treated S^HR
        p_c = 1 - 0.5 ** ((follow_up / median) ** shape)
        p_t = 1 - 0.5 ** (hr * (follow_up / median) ** shape)
    events = n * (p_c + p_t)
    se_events = math.sqrt(n * (p_c * (1 - p_c) + p_t * (1 - p_t)) / n_sim)
    assert abs(row.expected_events - events) < 3.5 * se_events
    assert abs(row.expected_events_control - n * p_c) < 3.5 * se_events
    expected = schoenfeld(hr, events)
    se = math.sqrt(expected * (1 - expected) / n_sim)
    assert abs(row.power - expected) < 3.5 * se, (row.power, expected)
    assert row.ci_low <= row.power <= row.ci_high
    assert row.schoenfeld_power is not None
    assert_allclose(row.schoenfeld_power, schoenfeld(hr, row.expected_events), rtol=1e-12)
    # lifelines' power_under_cph is Freedman's (1982) formula, a little more conservative
    # than Schoenfeld's for HR < 1; the simulation should not fall below it
    freedman = power_under_cph(n, n, p_t, p_c, hr)
    assert freedman < expected and row.power > freedman - 3.5 * se


@pytest.mark.parametrize("interval", [None, 7.0])
def test_hazard_ratio_one_gives_alpha(interval: float | None) -> None:
    # 30 animals per arm; 8000 studies; tolerance 3.5 SE of alpha (0.0024)
    model = OnsetDistribution(20.0, dropout_per_day=0.01)
    row = simulate_onset_power(
        model, [OnsetDesign(30, 42.0, interval)], hazard_ratio=1.0, n_sim=8000, seed=11
    ).rows[0]
    assert abs(row.power - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / 8000), row.power


def test_events_on_imaging_days_with_dropout() -> None:
    # onset seen on the first image at or after it, if the animal is alive then:
    # P(event) = sum_j P(d_(j-1) < T <= d_j) exp(-mu d_j), d_0 = first image (T <= d_0 seen then)
    rate, mu, n, n_sim = math.log(2) / 15, 0.02, 20, 4000
    design = OnsetDesign(n, 30.0, 4.0, first_day=2.0)
    days = np.array([2.0, 6, 10, 14, 18, 22, 26, 30])
    assert design.days is not None
    assert_allclose(design.days, days, rtol=0)
    cdf = 1 - np.exp(-rate * days)
    p = float(np.sum(np.diff(cdf, prepend=0.0) * np.exp(-mu * days)))
    row = simulate_onset_power(
        OnsetDistribution(15.0, dropout_per_day=mu),
        [design],
        hazard_ratio=1.0,
        n_sim=n_sim,
        seed=2,
    ).rows[0]
    assert row.n_images == 8 and row.interval_days == 4.0
    se = math.sqrt(2 * n * p * (1 - p) / n_sim)
    assert abs(row.expected_events - 2 * n * p) < 3.5 * se


def test_growth_onset_events_follow_the_growth_model() -> None:
    # no noise but the animals' rates: log10 flux b0 + (b1 + u1) t rises through the
    # threshold by the last image (day 28) iff b1 + u1 >= (log10 thr - b0) / 28
    params = GrowthParameters(
        intercept=4.0, growth_rate=0.1, sd_intercept=0.0, sd_slope=0.04, sd_residual=0.0
    )
    model = GrowthOnset(params, threshold=10**6.0)
    n, n_sim = 10, 3000
    table = simulate_onset_power(
        model, [OnsetDesign(n, 28.0, 7.0)], slope_ratio=0.5, n_sim=n_sim, seed=5
    )
    row = table.rows[0]
    need = 2.0 / 28
    p_c = stats.norm.sf(need, loc=0.1, scale=0.04)
    p_t = stats.norm.sf(need, loc=0.05, scale=0.04)
    se_c = math.sqrt(n * p_c * (1 - p_c) / n_sim)
    se_t = math.sqrt(n * p_t * (1 - p_t) / n_sim)
    assert abs(row.expected_events_control - n * p_c) < 3.5 * se_c
    assert abs(row.expected_events_treated - n * p_t) < 3.5 * se_t
    assert table.hazard_ratio is None and row.schoenfeld_power is None
    assert "0.5 x control" in table.effect


def test_growth_onset_without_effect_gives_alpha() -> None:
    params = GrowthParameters(
        intercept=4.5, growth_rate=0.12, sd_intercept=0.4, sd_slope=0.03, sd_residual=0.25
    )
    model = GrowthOnset(params, threshold=1e6, consecutive=2)
    row = simulate_onset_power(
        model, [OnsetDesign(30, 35.0, 3.5)], slope_ratio=1.0, n_sim=6000, seed=8
    ).rows[0]
    assert row.expected_events > 40
    assert abs(row.power - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / 6000), row.power


def test_reproducible_and_designs_independent() -> None:
    model = OnsetDistribution(20.0, shape=1.5, dropout_per_day=0.005)
    designs = [OnsetDesign(8, 42.0, 7.0), OnsetDesign(12, 42.0), OnsetDesign(12, 42.0, 3.5)]
    calls: list[tuple[int, int]] = []
    table = simulate_onset_power(
        model,
        designs,
        hazard_ratio=0.4,
        n_sim=300,
        seed=9,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    again = simulate_onset_power(model, designs[::-1], hazard_ratio=0.4, n_sim=300, seed=9)
    assert again.rows == table.rows[::-1]
    alone = simulate_onset_power(model, designs[1:2], hazard_ratio=0.4, n_sim=300, seed=9)
    assert alone.rows[0] == table.rows[1]
    other = simulate_onset_power(model, designs[1:2], hazard_ratio=0.4, n_sim=300, seed=10)
    assert other.rows[0] != table.rows[1]
    assert table.to_dict()["model"]["median_days"] == 20.0


def test_refusals_name_the_problem() -> None:
    model = OnsetDistribution(20.0)
    design = OnsetDesign(10, 42.0, 7.0)
    growth = GrowthOnset(GrowthParameters(5.0, 0.1, 0.3, 0.02, 0.2), threshold=1e6)
    cases = [
        (lambda: simulate_onset_power(model, [design]), "hazard_ratio"),
        (lambda: simulate_onset_power(model, [design], hazard_ratio=0.0), "hazard_ratio"),
        (lambda: simulate_onset_power(model, [design], slope_ratio=0.5), "hazard_ratio"),
        (lambda: simulate_onset_power(growth, [design], hazard_ratio=0.5), "slope_ratio"),
        (
            lambda: simulate_onset_power(growth, [OnsetDesign(10, 42.0)], slope_ratio=0.5),
            "interval",
        ),
        (
            lambda: simulate_onset_power(OnsetDistribution(-1.0), [design], hazard_ratio=0.5),
            "median",
        ),
        (
            lambda: simulate_onset_power(model, [OnsetDesign(1, 42.0)], hazard_ratio=0.5),
            "n_per_arm",
        ),
        (lambda: simulate_onset_power(model, [OnsetDesign(5, 0.0)], hazard_ratio=0.5), "follow_up"),
        (lambda: simulate_onset_power(model, [], hazard_ratio=0.5), "design"),
        (lambda: simulate_onset_power(model, [design], hazard_ratio=0.5, n_sim=5), "n_sim"),
        (
            lambda: simulate_onset_power(
                GrowthOnset(growth.parameters, threshold=0.0), [design], slope_ratio=0.5
            ),
            "threshold",
        ),
    ]
    for call, word in cases:
        with pytest.raises(InvalidInputError, match=word):
            call()
