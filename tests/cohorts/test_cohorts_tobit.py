"""Left-censored (Tobit) growth model vs R survreg and nlme, and the substitutions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cohorts import (
    Cohort,
    InsufficientDataError,
    InvalidInputError,
    Observation,
    censored_points,
    fit_censored_growth_model,
    substitute_censored,
)

from .conftest import make_cohort


def _survreg_study() -> Cohort:
    """12 animals x 5 days, log10 flux from a formula R can repeat exactly (see below)."""
    obs, k = [], 0
    for i in range(1, 13):
        for day in (0, 3, 7, 10, 14):
            k += 1
            arm = "C" if i <= 6 else "T"
            y = 5 + 0.12 * day - 0.05 * day * (arm == "T") + 0.35 * math.sin(1.3 * k + 0.7 * i)
            obs.append(Observation(f"m{i}", arm, day, 10.0**y))
    return Cohort.from_records(obs)


def test_without_random_effects_equals_r_survreg_left_censored_gaussian():
    # R 4.2, survival 3.5.3:
    # d <- expand.grid(day = c(0, 3, 7, 10, 14), i = 1:12); d$k <- seq_len(nrow(d))
    # d$arm <- factor(ifelse(d$i <= 6, "C", "T"))
    # d$y <- 5 + 0.12*d$day - 0.05*d$day*(d$arm == "T") + 0.35*sin(1.3*d$k + 0.7*d$i)
    # d$event <- d$y >= 5.5; d$yobs <- ifelse(d$event, d$y, 5.5)   # 27 of 60 censored
    # fit <- survreg(Surv(yobs, event, type = "left") ~ arm * day, data = d,
    #                dist = "gaussian"); summary(fit)$table; fit$scale; fit$loglik
    res = fit_censored_growth_model(
        _survreg_study(), control="C", detection_limits=10**5.5, random_effects="none"
    )
    assert res.method == "tobit" and res.converged
    assert [(c.arm, c.n_points, c.n_censored) for c in res.n_censored] == [
        ("C", 30, 11),
        ("T", 30, 16),
    ]
    expected = {  # Value, Std. Error, p
        "Intercept": (5.0105181951834, 0.1260684134070, 0.0),
        "arm[T]": (-0.1310821464540, 0.2107239167633, 5.33904828362e-01),
        "day": (0.1206035136717, 0.0129590797126, 1.32129661463e-20),
        "arm[T]:day": (-0.0370741474155, 0.0206506910597, 7.26062099561e-02),
    }
    for name, (value, se, p) in expected.items():
        fe = res.fixed_effect(name)
        assert_allclose(fe.estimate, value, rtol=0, atol=1e-6, err_msg=name)
        assert_allclose(fe.se, se, rtol=1e-5, err_msg=name)
        assert_allclose(fe.p_value, p, rtol=1e-4, atol=1e-12, err_msg=name)
        assert fe.df is None  # Wald z, as survreg
    assert_allclose(math.sqrt(res.residual_variance), 0.246812413602, rtol=1e-6)  # fit$scale
    assert_allclose(res.log_likelihood, -8.46893579295, rtol=0, atol=1e-6)  # fit$loglik[2]
    diff = res.growth_rates[1].difference
    # Wald 95 % CI of armT:day: estimate -/+ qnorm(0.975) x 0.0206506910597
    assert_allclose([diff.ci_low, diff.ci_high], [-0.0775487838, 0.0034004890], atol=1e-6)
    json.dumps(res.to_dict())


def test_without_censored_points_is_the_ml_mixed_model_of_nlme(cruk: Cohort):
    # CRUK course: nlme::lme(TVlog ~ ExpGroup + time + time:ExpGroup,
    #   random = ~1 + time | IDmouse, method = "ML") -> logLik -57.46153 (as the ML test of
    # test_cohorts_mixed.py); with no point censored the quadrature integrates a Gaussian
    res = fit_censored_growth_model(cruk, control="Vehicle", scale="ln", detection_limits=None)
    assert res.converged and sum(c.n_censored for c in res.n_censored) == 0
    assert_allclose(res.log_likelihood, -57.46153, rtol=0, atol=2e-5)
    assert any("no point is below" in w for w in res.warnings)


def _big_study(seed: int) -> tuple[Cohort, float, float]:
    """One large study (2 x 60 mice) with known slopes: the treated arm starts lower
    (treatment begun before the first image), so more of its early points are censored."""
    rng = np.random.default_rng(seed)
    obs = []
    for arm, start, rate in (("Control", 4.8, 0.15), ("Treated", 4.2, 0.10)):
        for j in range(60):
            u0, u1 = rng.normal(0, 0.3), rng.normal(0, 0.02)
            for d in (0, 3, 7, 10, 14, 17, 21):
                y = start + u0 + (rate + u1) * d + rng.normal(0, 0.2)
                obs.append(Observation(f"{arm}{j}", arm, float(d), 10.0**y))
    return Cohort.from_records(obs), 10.0**5.0, 0.10 - 0.15


def test_recovers_the_true_slope_difference_where_half_min_substitution_is_biased():
    # Simulation truth: slope difference -0.05 log10/day; ~47 % of days 0-10 censored.
    # (bench/bench_tobit_simulation.py: the same over 200 smaller studies.)
    cohort, limit, truth = _big_study(1)
    pts, _, _ = censored_points(cohort, arms=("Control", "Treated"), detection_limits=limit)
    assert 0.3 <= pts.loc[pts["day"] <= 10, "censored"].mean() <= 0.6
    res = fit_censored_growth_model(
        cohort, control="Control", detection_limits=limit, quadrature_points=5
    )
    tobit = res.growth_rates[1]
    assert abs(tobit.difference.estimate - truth) < 2 * tobit.difference_se
    assert tobit.difference.ci_low < truth < tobit.difference.ci_high
    sub = substitute_censored(cohort, detection_limits=limit, method="half_min")
    naive = fit_censored_growth_model(
        sub.cohort, control="Control", detection_limits=None, quadrature_points=1
    )
    half_min = naive.growth_rates[1]
    assert abs(half_min.difference.estimate - truth) > 4 * half_min.difference_se
    assert not half_min.difference.ci_low < truth < half_min.difference.ci_high


def test_substitutions_are_labelled_and_counted_per_arm():
    cohort = make_cohort(
        {
            "a1": ("C", {0: 50.0, 3: 400.0, 7: 900.0}),
            "a2": ("C", {0: -20.0, 3: 300.0, 7: 800.0}),
            "b1": ("T", {0: 10.0, 3: 60.0, 7: 500.0}),
            "b2": ("T", {0: 30.0, 3: 250.0, 7: 600.0}),
        }
    )
    limits = {(a, float(d)): 100.0 for a in ("a1", "a2", "b1", "b2") for d in (0, 3, 7)}
    half = substitute_censored(cohort, detection_limits=limits, method="half_min")
    assert [(c.arm, c.n_points, c.n_censored) for c in half.n_censored] == [
        ("C", 6, 2),
        ("T", 6, 3),
    ]
    values = {(o.animal, o.day): o.value for o in half.cohort.observations}
    assert values[("a2", 0.0)] == 125.0  # half of the smallest detected value, 250
    assert values[("b1", 3.0)] == 125.0 and values[("a1", 3.0)] == 400.0
    assert all("(half_min)" in a.detail for a in half.adjustments)
    assert "min/2" in half.description
    floor = substitute_censored(cohort, detection_limits=100.0, method="limit")
    assert {o.value for o in floor.cohort.observations if o.day == 0} == {100.0}
    dropped = substitute_censored(cohort, detection_limits=100.0, method="drop")
    assert len(dropped.cohort.observations) == 12 - 5
    assert len(dropped.exclusions) == 5
    assert [o.value for o in cohort.observations][:2] == [50.0, 400.0]  # input unchanged


def test_bad_input_is_refused_with_a_reason():
    cohort = make_cohort(
        {
            "a1": ("C", {0: -5.0, 3: 400.0, 7: 900.0}),
            "a2": ("C", {0: 80.0, 3: 300.0, 7: 800.0}),
            "b1": ("T", {0: 10.0, 3: 60.0, 7: 500.0}),
            "b2": ("T", {0: 30.0, 3: 250.0, 7: 600.0}),
        }
    )
    with pytest.raises(InvalidInputError, match="no detection limit"):
        fit_censored_growth_model(cohort, control="C", detection_limits={("b1", 0.0): 50.0})
    with pytest.raises(InvalidInputError, match="positive finite"):
        fit_censored_growth_model(cohort, control="C", detection_limits=-1.0)
    with pytest.raises(InvalidInputError, match="random_effects"):
        fit_censored_growth_model(
            cohort, control="C", detection_limits=100.0, random_effects="slope"
        )
    with pytest.raises(InvalidInputError, match="method"):
        substitute_censored(cohort, detection_limits=100.0, method="zero")
    with pytest.raises(InsufficientDataError, match="too few"):
        fit_censored_growth_model(cohort, control="C", detection_limits=700.0)


def test_a_singular_fit_is_refitted_with_a_random_intercept_only():
    # no slope varies between animals: the correlated model reaches the boundary (slope
    # variance 0, correlation -1) where the information is singular
    rng = np.random.default_rng(5)
    obs = []
    for arm, start, rate in (("C", 4.8, 0.15), ("T", 4.2, 0.10)):
        for j in range(8):
            u0 = rng.normal(0, 0.3)
            for d in (0, 3, 7, 10, 14, 17, 21):
                y = start + u0 + rate * d + rng.normal(0, 0.2)
                obs.append(Observation(f"{arm}{j}", arm, float(d), 10.0**y))
    res = fit_censored_growth_model(Cohort.from_records(obs), control="C", detection_limits=1e5)
    assert res.random_effects_requested == "intercept_slope"
    assert res.random_effects == "intercept" and len(res.reductions) == 1
    assert res.converged and res.hessian_ok and res.re_slope_variance is None
    assert res.warnings == res.reductions
    assert res.growth_rates[1].difference.ci_low < -0.05 < res.growth_rates[1].difference.ci_high
