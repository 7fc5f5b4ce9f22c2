"""Power by simulation: against the analytic two-sample t power (statsmodels), type I error
at alpha, the pilot fit against lme4, reproducibility and the progress callback."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from cohorts import (
    AnimalEnd,
    Cohort,
    GrowthParameters,
    InvalidInputError,
    Observation,
    StudyDesign,
    fit_growth_model,
    fit_pilot,
    simulate_power,
    slope_test_power,
)

DATA = Path(__file__).parent / "data"

PILOT = GrowthParameters(
    intercept=5.0,
    growth_rate=0.12,
    sd_intercept=0.4,
    sd_slope=0.03,
    sd_residual=0.25,
    correlation=0.3,
)


def cohens_d(params: GrowthParameters, days: np.ndarray, difference: float) -> float:
    """Slope difference over the SD of one animal's OLS slope, sd_slope^2 + sigma^2 / Sxx."""
    sxx = float(((days - days.mean()) ** 2).sum())
    return difference / math.sqrt(params.sd_slope**2 + params.sd_residual**2 / sxx)


@pytest.mark.parametrize("n", [4, 8, 12])
def test_power_matches_the_two_sample_t_power(n: int) -> None:
    # Without dropout and with the pooled t test the per-animal slope analysis is a plain
    # two-sample t test with d = delta / sd(slope): statsmodels' TTestIndPower is exact.
    design = StudyDesign(n, 7.0, 28.0)
    table = simulate_power(PILOT, [design], slope_ratio=0.6, test="student", n_sim=4000, seed=n)
    row = table.rows[0]
    d = cohens_d(PILOT, design.days, 0.12 * 0.4)
    expected = TTestIndPower().power(effect_size=d, nobs1=n, alpha=0.05, ratio=1.0)
    assert abs(row.power - expected) < 3.5 * math.sqrt(expected * (1 - expected) / 4000)
    assert_allclose(row.analytic_power, expected, rtol=1e-8)
    assert row.ci_low <= row.power <= row.ci_high
    assert row.n_images == 5 and row.mean_animals_analysed == n


def test_welch_power_close_to_pooled_and_no_higher() -> None:
    design = StudyDesign(8, 7.0, 28.0)
    welch = simulate_power(PILOT, [design], slope_ratio=0.6, n_sim=4000, seed=3).rows[0]
    pooled = slope_test_power(PILOT, design, -0.12 * 0.4)
    assert pooled - 0.05 < welch.power < pooled + 3 * welch.mc_se


def test_no_effect_gives_alpha() -> None:
    design = StudyDesign(6, 3.5, 21.0)
    for test in ("welch", "student"):
        row = simulate_power(PILOT, [design], slope_ratio=1.0, n_sim=4000, seed=9, test=test).rows[
            0
        ]
        assert abs(row.power - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / 4000)


def test_fold_effect_is_a_slope_difference() -> None:
    table = simulate_power(PILOT, [StudyDesign(6, 7, 28)], fold=10.0, fold_day=28.0, n_sim=50)
    assert_allclose(table.treated_slope, 0.12 - 1 / 28, rtol=1e-12)
    assert "10-fold" in table.effect


def test_dropout_costs_power_and_animals() -> None:
    leaky = GrowthParameters(**(PILOT.to_dict() | {"dropout_per_day": 0.03}))
    design = StudyDesign(10, 7.0, 28.0)
    full = simulate_power(PILOT, [design], slope_ratio=0.6, n_sim=2000, seed=1).rows[0]
    lost = simulate_power(leaky, [design], slope_ratio=0.6, n_sim=2000, seed=1).rows[0]
    # P(imaged on day 7, so >= 2 images) = exp(-0.03 * 7)
    assert_allclose(lost.mean_animals_analysed, 10 * math.exp(-0.21), rtol=0.02)
    assert lost.power < full.power - 0.05


def test_min_images_leaves_short_series_out() -> None:
    leaky = GrowthParameters(**(PILOT.to_dict() | {"dropout_per_day": 0.03}))
    design = StudyDesign(10, 3.5, 28.0)
    row = simulate_power(leaky, [design], slope_ratio=0.6, n_sim=2000, seed=4, min_images=4)
    # counted: imaged on day 10.5 (4th image), P = exp(-0.03 * 10.5)
    assert_allclose(row.rows[0].mean_animals_analysed, 10 * math.exp(-0.315), rtol=0.02)
    assert ">= 4 images" in row.test


def test_more_mice_more_frequent_imaging_and_longer_studies_help() -> None:
    designs = [StudyDesign(n, 7, 28) for n in (4, 8, 16)]
    designs += [StudyDesign(8, 3.5, 28), StudyDesign(8, 7, 42)]
    rows = simulate_power(PILOT, designs, slope_ratio=0.6, n_sim=2000, seed=2).rows
    assert rows[0].power < rows[1].power < rows[2].power
    assert rows[3].n_images == 9 and rows[3].analytic_power > rows[1].analytic_power
    assert rows[4].power > rows[1].power


def test_reproducible_per_design_and_progress_reported() -> None:
    calls: list[tuple[int, int]] = []
    designs = [StudyDesign(6, 7, 21), StudyDesign(8, 7, 28)]
    a = simulate_power(
        PILOT, designs, slope_ratio=0.5, n_sim=300, seed=5, progress=lambda *c: calls.append(c)
    )
    assert calls == [(1, 2), (2, 2)]
    assert a == simulate_power(PILOT, designs, slope_ratio=0.5, n_sim=300, seed=5)
    # each design's power depends on the seed and the design only (not on the others or
    # their order), so a grid may be split into one call per design
    for k in (0, 1):
        alone = simulate_power(PILOT, designs[k : k + 1], slope_ratio=0.5, n_sim=300, seed=5)
        assert alone.rows[0] == a.rows[k]
    swapped = simulate_power(PILOT, designs[::-1], slope_ratio=0.5, n_sim=300, seed=5)
    assert swapped.rows == a.rows[::-1]
    assert simulate_power(PILOT, designs, slope_ratio=0.5, n_sim=300, seed=6).rows != a.rows


def test_slope_t_test_is_the_mixed_model_slope_test_for_balanced_data() -> None:
    # Why the simulation may use the fast test: with every animal imaged on the same days the
    # REML slope contrast of y ~ day * arm + (1 + day | animal) is the difference of the mean
    # animal OLS slopes, and its Kenward-Roger test is the pooled t test on 2n - 2 df.
    rng = np.random.default_rng(3)
    days = np.array([0.0, 7.0, 14.0, 21.0, 28.0])
    obs, slopes = [], {"C": [], "T": []}
    for arm, rate in (("C", 0.12), ("T", 0.07)):
        for i in range(8):
            y = 5 + rng.normal(0, 0.4) + (rate + rng.normal(0, 0.03)) * days
            y = y + rng.normal(0, 0.25, days.size)
            slopes[arm].append(np.polyfit(days, y, 1)[0])
            obs += [Observation(f"{arm}{i}", arm, d, 10**v) for d, v in zip(days, y, strict=True)]
    model = fit_growth_model(Cohort.from_records(obs), control="C")
    assert model.random_effects == "intercept_slope"
    rate = model.growth_rates[1]
    pooled = stats.ttest_ind(slopes["T"], slopes["C"])
    assert_allclose(
        [rate.difference.estimate, rate.t, rate.df, rate.p_value],
        [np.mean(slopes["T"]) - np.mean(slopes["C"]), pooled.statistic, 14.0, pooled.pvalue],
        rtol=1e-8,
    )


def test_pilot_fit_matches_lme4() -> None:
    # R 4.x, lme4 1.1-31, y = log10(flux_ps) of tests/cohorts/data/lmm_small_bli.csv:
    # inhibitor: lmer(y ~ day + (1 + day | animal), REML = TRUE): not singular
    #   fixef 5.35699007017, 0.09179783213; sd 0.27456822953, 0.02609520359, cor 0.63504020999,
    #   residual sd 0.17873605219
    # vehicle: (1 + day | animal) singular -> (1 + day || animal):
    #   fixef 5.4825299772, 0.1529413625; sd 0.15677849896, 0.01008572373, resid 0.24094649328
    frame = pd.read_csv(DATA / "lmm_small_bli.csv").rename(columns={"flux_ps": "value"})
    cohort = Cohort.from_frame(frame)
    fit = fit_pilot(cohort, arm="inhibitor")
    p = fit.parameters
    assert fit.random_effects == "intercept_slope"
    assert_allclose(
        [p.intercept, p.growth_rate, p.sd_intercept, p.sd_slope, p.correlation, p.sd_residual],
        [5.35699007017, 0.09179783213, 0.27456822953, 0.02609520359, 0.63504020999, 0.17873605219],
        rtol=1e-4,
    )
    veh = fit_pilot(cohort, arm="vehicle")
    q = veh.parameters
    assert veh.random_effects == "intercept_slope_uncorrelated" and veh.warnings
    assert_allclose(
        [q.intercept, q.growth_rate, q.sd_intercept, q.sd_slope, q.sd_residual],
        [5.4825299772, 0.1529413625, 0.15677849896, 0.01008572373, 0.24094649328],
        rtol=1e-3,
    )
    assert q.correlation == 0.0 and q.dropout_per_day == 0.0


def test_pilot_dropout_rate_is_events_over_time_at_risk() -> None:
    obs = [
        Observation(a, "Vehicle", d, 10 ** (5 + 0.1 * d + 0.05 * i))
        for i, a in enumerate("abcd")
        for d in (0.0, 7.0, 14.0, 21.0)
        if not (a == "a" and d > 7) and not (a == "b" and d > 14)
    ]
    ends = [
        AnimalEnd("a", 10.0, "humane_endpoint"),
        AnimalEnd("b", 14.0, "death"),
        AnimalEnd("c", 21.0, "study_end"),
    ]
    fit = fit_pilot(Cohort.from_records(obs, ends=ends), arm="Vehicle")
    # 2 events over 10 + 14 + 21 + 21 animal-days
    assert fit.n_dropouts == 2 and fit.animal_days_at_risk == 66.0
    assert_allclose(fit.parameters.dropout_per_day, 2 / 66, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "slope_ratio or as fold"),
        ({"slope_ratio": 0.5, "fold": 2.0}, "slope_ratio or as fold"),
        ({"fold": 10.0}, "fold_day"),
        ({"slope_ratio": 0.5, "alpha": 1.5}, "alpha"),
        ({"slope_ratio": 0.5, "n_sim": 5}, "n_sim"),
        ({"slope_ratio": 0.5, "test": "mann-whitney"}, "test must be"),
        ({"slope_ratio": -1.0}, "slope_ratio must be"),
        ({"slope_ratio": 0.5, "min_images": 1}, "min_images"),
    ],
)
def test_bad_power_input_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        simulate_power(PILOT, [StudyDesign(6, 7, 28)], **kwargs)


def test_bad_design_and_parameters_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="fewer than 2 imaging days"):
        simulate_power(PILOT, [StudyDesign(6, 7, 5)], slope_ratio=0.5)
    with pytest.raises(InvalidInputError, match="n_per_arm"):
        simulate_power(PILOT, [StudyDesign(1, 7, 28)], slope_ratio=0.5)
    bad = GrowthParameters(**(PILOT.to_dict() | {"sd_residual": -0.1}))
    with pytest.raises(InvalidInputError, match="sd_residual"):
        simulate_power(bad, [StudyDesign(6, 7, 28)], slope_ratio=0.5)
