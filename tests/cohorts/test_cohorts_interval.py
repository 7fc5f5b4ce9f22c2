"""Interval-censored metastasis-free survival (Turnbull NPMLE, Weibull / log-normal AFT)
against R 4.2 survival 3.5.3, and the onset intervals against hand-worked cases.

R values were computed once (R is not needed to run these tests) with::

    library(survival)
    d <- data.frame(
      left  = c(NA, 7, 14, 10, 21,  7, 28, 35,  3,   14, 21, 17, 28, 35, 35,  7, 28, 10),
      right = c( 7, 14, 21, 24, 28, 17, NA, NA, 12,  21, 28, 31, 35, NA, NA, 14, NA, 24),
      arm = factor(rep(c("Vehicle", "Treated"), each = 9), levels = c("Vehicle", "Treated")))
    f <- survfit(Surv(left, right, type = "interval2") ~ arm, data = d)
    print(f$time, digits = 12); print(f$surv, digits = 12)
    for (dist in c("weibull", "lognormal")) {
      m <- survreg(Surv(left, right, type = "interval2") ~ arm, data = d, dist = dist)
      print(coef(m), digits = 12); print(m$scale, digits = 12)
      print(m$loglik, digits = 12); print(sqrt(diag(vcov(m))), digits = 12)
    }

(NA left: onset before the first image, our left = 0; NA right: never positive.)
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cohorts import (
    AnimalEnd,
    Cohort,
    InsufficientDataError,
    InvalidInputError,
    Observation,
    interval_aft,
    interval_censored_survival,
    onset_intervals,
    turnbull,
)

LEFT = [0, 7, 14, 10, 21, 7, 28, 35, 3, 14, 21, 17, 28, 35, 35, 7, 28, 10]
RIGHT = [7, 14, 21, 24, 28, 17, None, None, 12, 21, 28, 31, 35, None, None, 14, None, 24]
TREATED = [False] * 9 + [True] * 9

# survfit: f$time and f$surv per stratum (R reports S at the midpoint of each Turnbull
# interval; its EM stops earlier than ours, hence differences up to 4e-5)
R_TIMES = {
    "Vehicle": [5.0, 11.0, 15.5, 22.5, 28.0, 35.0],
    "Treated": [12.0, 19.0, 22.5, 28.0, 29.5, 35.0],
}
R_SURV = {
    "Vehicle": [0.853257346773, 0.542303690313, 0.357079794045] + [0.222222222222] * 3,
    "Treated": [0.858535319889, 0.670346524257, 0.482157728624, 0.482157728624]
    + [0.288767386251] * 2,
}
# survreg: coef (Intercept, armTreated), scale, loglik (null, model), SE (b0, b1, log scale)
R_SURVREG = {
    "weibull": {
        "coef": [3.105544375491, 0.377926643957],
        "scale": 0.572117021839,
        "loglik": [-27.0822115734, -26.3983990871],
        "se": [0.219863677502, 0.326168295742, 0.254875671555],
    },
    "lognormal": {
        "coef": [2.75577671959, 0.54481730238],
        "scale": 0.676636395907,
        "loglik": [-26.7674207485, -25.5749065350],
        "se": [0.242139396752, 0.345363055441, 0.236815447015],
    },
}


def _after(curve, time: float) -> float:
    """S just after the Turnbull interval holding R's reporting time (its midpoint)."""
    s = 1.0
    for iv in curve.intervals:
        if iv.left < time or (iv.closed_left and iv.left == time):
            s = iv.survival
    return s


@pytest.mark.parametrize("arm", ["Vehicle", "Treated"])
def test_turnbull_matches_r_survfit(arm: str) -> None:
    rows = slice(0, 9) if arm == "Vehicle" else slice(9, 18)
    curve = turnbull(LEFT[rows], RIGHT[rows], arm=arm)
    assert curve.converged
    got = [_after(curve, t) for t in R_TIMES[arm]]
    assert_allclose(got, R_SURV[arm], rtol=0, atol=1e-4)
    # the NPMLE's own optimality condition (Gentleman & Geyer 1994) holds where R's stops short
    assert_allclose(curve.kkt_max, 1.0, rtol=0, atol=1e-9)
    assert_allclose(sum(iv.mass for iv in curve.intervals), 1.0, rtol=1e-12)


def test_turnbull_intervals_and_exact_times_match_r() -> None:
    # R: d <- data.frame(left = c(NA, 7, 14, 14, 10, 21, 7, 28),
    #                    right = c(7, 14, 14, 21, 21, NA, 14, 28))
    #    f <- survfit(Surv(left, right, type = "interval2") ~ 1, data = d)
    #    f$time: 7.0 14.0 17.5 21.0 28.0; f$surv: 0.8750000 0.4062512 0.25 0.25 0
    curve = turnbull([0, 7, 14, 14, 10, 21, 7, 28], [7, 14, 14, 21, 21, None, 14, 28])
    spans = [(iv.left, iv.right, iv.closed_left) for iv in curve.intervals]
    assert spans == [(0, 7, False), (14, 14, True), (14, 21, False), (28, 28, True)]
    assert_allclose(
        [iv.survival for iv in curve.intervals], [0.875, 0.4062512, 0.25, 0.0], atol=1e-4, rtol=0
    )
    assert curve.survival_at(3.0) is None  # inside (0, 7]: the NPMLE is not unique there
    assert curve.survival_at(24.0) == pytest.approx(0.25, abs=1e-9)


def test_turnbull_without_censoring_is_the_empirical_survival() -> None:
    # exact times 2, 4, 4, 8: S = 3/4 after 2, 1/4 after 4, 0 after 8 (the ECDF complement)
    curve = turnbull([2, 4, 4, 8], [2, 4, 4, 8])
    assert_allclose([iv.survival for iv in curve.intervals], [0.75, 0.25, 0.0], rtol=1e-9)


def test_turnbull_rejects_reversed_intervals() -> None:
    with pytest.raises(InvalidInputError, match="left <= right"):
        turnbull([10, 3], [7, 9])


@pytest.mark.parametrize("dist", ["weibull", "lognormal"])
def test_aft_matches_r_survreg(dist: str) -> None:
    fit = interval_aft(LEFT, RIGHT, TREATED, distribution=dist)
    ref = R_SURVREG[dist]
    assert_allclose([fit.intercept, fit.arm_coefficient], ref["coef"], rtol=0, atol=1e-4)
    assert_allclose(fit.scale, ref["scale"], rtol=0, atol=1e-4)
    assert_allclose([fit.log_likelihood_null, fit.log_likelihood], ref["loglik"], atol=1e-4)
    assert_allclose([fit.se_intercept, fit.se_arm, fit.se_log_scale], ref["se"], atol=1e-4)
    # R: Chisq = 2 (loglik[2] - loglik[1]); summary(m) z = coef / se
    chi2 = 2 * (ref["loglik"][1] - ref["loglik"][0])
    assert_allclose(fit.likelihood_ratio.statistic, chi2, rtol=1e-4)
    assert_allclose(fit.wald.statistic, ref["coef"][1] / ref["se"][1], rtol=1e-4)
    assert_allclose(fit.time_ratio.estimate, np.exp(ref["coef"][1]), rtol=1e-4)


def test_aft_weibull_median_is_the_model_quantile() -> None:
    fit = interval_aft(LEFT, RIGHT, TREATED, distribution="weibull")
    # S(t) = exp(-(t / exp(b0))^(1/sigma)) = 1/2 at t = exp(b0) (ln 2)^sigma (R coefs above)
    b0, b1 = R_SURVREG["weibull"]["coef"]
    sigma = R_SURVREG["weibull"]["scale"]
    assert_allclose(fit.median_control, np.exp(b0) * np.log(2) ** sigma, rtol=1e-4)
    assert_allclose(fit.median_treated, np.exp(b0 + b1) * np.log(2) ** sigma, rtol=1e-4)


def test_aft_separated_arms_report_no_effect() -> None:
    # every treated animal stays negative: the time ratio runs off to infinity
    left = [0, 7, 7, 14, 28, 28, 28, 28]
    right = [7, 14, 14, 21, None, None, None, None]
    fit = interval_aft(left, right, [False] * 4 + [True] * 4, distribution="weibull")
    assert fit.arm_coefficient is None and fit.time_ratio.estimate is None
    assert any("every event is in one arm" in w for w in fit.warnings)


def test_aft_unknown_distribution() -> None:
    with pytest.raises(InvalidInputError, match="unknown distribution"):
        interval_aft(LEFT, RIGHT, TREATED, distribution="gamma")  # type: ignore[arg-type]


# ------------------------------------------------------------------- from a cohort

NEG, POS, THRESHOLD = 1e4, 1e7, 1e6


def _cohort(left, right, treated, *, ends=()) -> Cohort:
    """Animal i imaged negative on day left_i (unless 0) and positive on day right_i; a
    never-positive animal imaged negative on days 3 and left_i."""
    obs = []
    for i, (lo, hi, t) in enumerate(zip(left, right, treated, strict=True)):
        arm = "Treated" if t else "Vehicle"
        animal = f"m{i:02d}"
        if hi is None:
            obs += [
                Observation(animal, arm, 3.0, NEG, "spine"),
                Observation(animal, arm, lo, NEG, "spine"),
            ]
            continue
        if lo > 0:
            obs.append(Observation(animal, arm, float(lo), NEG, "spine"))
        obs.append(Observation(animal, arm, float(hi), POS, "spine"))
        obs.append(Observation(animal, arm, float(hi) + 7, POS, "spine"))
    return Cohort.from_records(obs, ends=ends)


def test_cohort_intervals_reproduce_r_end_to_end() -> None:
    cohort = _cohort(LEFT, RIGHT, TREATED)
    res = interval_censored_survival(
        cohort, control="Vehicle", treated="Treated", site="spine", threshold=THRESHOLD
    )
    by = {a.animal: a for a in res.animals}
    for i, (lo, hi) in enumerate(zip(LEFT, RIGHT, strict=True)):
        a = by[f"m{i:02d}"]
        assert (a.left, a.right, a.event) == (lo, hi, hi is not None)
    assert by["m00"].kind == "left" and by["m06"].kind == "right"
    for curve in res.turnbull:
        got = [_after(curve, t) for t in R_TIMES[curve.arm]]
        assert_allclose(got, R_SURV[curve.arm], rtol=0, atol=1e-4)
    for dist in ("weibull", "lognormal"):
        fit = getattr(res, dist)
        assert_allclose(fit.arm_coefficient, R_SURVREG[dist]["coef"][1], atol=1e-4, rtol=0)
        assert_allclose(fit.log_likelihood, R_SURVREG[dist]["loglik"][1], atol=1e-4, rtol=0)
    # the conventional analysis is there, taking the first positive day as the event time
    assert res.conventional is not None
    assert res.conventional.curves[0].n_events == sum(r is not None for r in RIGHT[:9])
    assert (res.events_control, res.events_treated) == (7, 6)
    assert "semi-parametric" in res.semi_parametric
    assert res.to_dict()["animals"][0]["right"] == 7


def test_deaths_censor_at_the_last_image_or_count_as_events() -> None:
    obs = [
        # d1: negative on 7, 14; died on day 17 (no image after 14)
        Observation("d1", "A", 7.0, NEG, "spine"),
        Observation("d1", "A", 14.0, NEG, "spine"),
        # d2: negative on 7 and 14, humane endpoint on day 14 (imaged that day)
        Observation("d2", "A", 7.0, NEG, "spine"),
        Observation("d2", "A", 14.0, NEG, "spine"),
        # d3: positive on 14 after a negative 7, then died on 20: onset counts
        Observation("d3", "A", 7.0, NEG, "spine"),
        Observation("d3", "A", 14.0, POS, "spine"),
        # w: withdrawn on day 10 after a negative image on 7
        Observation("w", "A", 7.0, NEG, "spine"),
    ]
    ends = [
        AnimalEnd("d1", 17.0, "death"),
        AnimalEnd("d2", 14.0, "humane_endpoint"),
        AnimalEnd("d3", 20.0, "death"),
        AnimalEnd("w", 10.0, "withdrawn"),
    ]
    cohort = Cohort.from_records(obs, ends=ends)
    censored = {
        a.animal: (a.left, a.right, a.kind, a.reason)
        for a in onset_intervals(cohort, site="spine", threshold=THRESHOLD).animals
    }
    assert censored == {
        "d1": (14.0, None, "right", "death"),
        "d2": (14.0, None, "right", "humane_endpoint"),
        "d3": (7.0, 14.0, "interval", "onset"),
        "w": (7.0, None, "right", "withdrawn"),
    }
    table = onset_intervals(cohort, site="spine", threshold=THRESHOLD, death_is_event=True)
    events = {a.animal: (a.left, a.right, a.kind, a.event) for a in table.animals}
    assert events == {
        "d1": (14.0, 17.0, "interval", True),
        "d2": (14.0, 14.0, "exact", True),
        "d3": (7.0, 14.0, "interval", True),
        "w": (7.0, None, "right", False),
    }
    assert "death or humane endpoint" in table.censoring


def test_consecutive_images_move_the_interval() -> None:
    # positive on 7, negative on 14, positive on 21 and 28: with k = 2 onset is (14, 21]
    obs = [
        Observation("a", "A", d, v, "spine")
        for d, v in ((0.0, NEG), (7.0, POS), (14.0, NEG), (21.0, POS), (28.0, POS))
    ]
    cohort = Cohort.from_records(obs)
    (k1,) = onset_intervals(cohort, site="spine", threshold=THRESHOLD).animals
    (k2,) = onset_intervals(cohort, site="spine", threshold=THRESHOLD, consecutive=2).animals
    assert (k1.left, k1.right) == (0.0, 7.0)
    assert (k2.left, k2.right) == (14.0, 21.0)


def test_positive_on_day_zero_is_excluded_with_a_reason() -> None:
    obs = [
        Observation("a", "A", 0.0, POS, "spine"),
        Observation("b", "A", 0.0, NEG, "spine"),
        Observation("b", "A", 7.0, POS, "spine"),
    ]
    table = onset_intervals(Cohort.from_records(obs), site="spine", threshold=THRESHOLD)
    assert [a.animal for a in table.animals] == ["b"]
    assert table.exclusions[-1].animal == "a" and "day 0" in table.exclusions[-1].reason


def test_no_event_is_insufficient() -> None:
    cohort = _cohort([7, 7, 14, 14], [None] * 4, [False, False, True, True])
    with pytest.raises(InsufficientDataError, match="no animal"):
        interval_censored_survival(
            cohort, control="Vehicle", treated="Treated", site="spine", threshold=THRESHOLD
        )
    with pytest.raises(InvalidInputError, match="same arm"):
        interval_censored_survival(
            cohort, control="Vehicle", treated="Vehicle", site="spine", threshold=THRESHOLD
        )


def test_aft_says_when_the_intervals_hardly_determine_the_effect() -> None:
    # every onset in (0, 7] or (7, 14] and in both arms alike: almost no shape information
    left = [0, 0, 0, 7, 0, 0, 7, 7]
    right = [7, 7, 7, 14, 7, 7, 14, 14]
    treated = [False] * 4 + [True] * 4
    lognormal = interval_aft(left, right, treated, distribution="lognormal")
    assert lognormal.se_arm > 3.0
    assert any("hardly determine" in w for w in lognormal.warnings)
    weibull = interval_aft(left, right, treated, distribution="weibull")  # SE > 50: withheld
    assert weibull.time_ratio.estimate is None
    assert any("do not determine" in w for w in weibull.warnings)


# Exact times (a death counted as the event on an imaging day) and left-censoring in both
# arms. R 4.2, survival 3.5.3:
#   d <- data.frame(left = c(NA, 7, 14, 14, 10, 21, 7, 28,  7, 14, 17, 21, 21, 28, NA, 24),
#                   right = c(7, 14, 14, 21, 21, NA, 14, 28, 14, 21, 17, 28, NA, NA, 14, 31),
#                   arm = factor(rep(c("C", "T"), each = 8), levels = c("C", "T")))
#   survreg(Surv(left, right, type = "interval2") ~ arm, data = d, dist = ...)
#   survfit(Surv(left, right, type = "interval2") ~ arm, data = d)
EXACT_LEFT = [0, 7, 14, 14, 10, 21, 7, 28, 7, 14, 17, 21, 21, 28, 0, 24]
EXACT_RIGHT = [7, 14, 14, 21, 21, None, 14, 28, 14, 21, 17, 28, None, None, 14, 31]
R_EXACT_SURVREG = {
    # coef (Intercept, armT), scale, loglik (null, model), SE (b0, b1, log scale)
    "weibull": (
        [2.900731144174, 0.262441518141],
        0.423833053525,
        [-28.2046016186, -27.6091555771],
        [0.166001141065, 0.241538457503, 0.251762637500],
    ),
    "lognormal": (
        [2.651511061705, 0.343837352677],
        0.505368403139,
        [-28.5704595314, -27.8017781418],
        [0.189538359342, 0.269830788496, 0.237147165367],
    ),
}
# f$time / f$surv: C 7, 14, 17.5, 21, 28 -> 0.875, 0.4062512, 0.25, 0.25, 0;
# T 10.5, 17, 19, 21, 26, 28, 29.5 -> 0.75, 0.500029564806, 0.5, 0.5, 0.25, 0.25, 0
R_EXACT_SURV = {
    "C": ([7.0, 14.0, 17.5, 21.0, 28.0], [0.875, 0.4062512, 0.25, 0.25, 0.0]),
    "T": (
        [10.5, 17.0, 19.0, 21.0, 26.0, 28.0, 29.5],
        [0.75, 0.500029564806, 0.5, 0.5, 0.25, 0.25, 0.0],
    ),
}


@pytest.mark.parametrize("dist", ["weibull", "lognormal"])
def test_exact_times_match_r_survreg_and_survfit(dist: str) -> None:
    treated = [False] * 8 + [True] * 8
    fit = interval_aft(EXACT_LEFT, EXACT_RIGHT, treated, distribution=dist)
    coef, scale, loglik, se = R_EXACT_SURVREG[dist]
    assert_allclose([fit.intercept, fit.arm_coefficient], coef, rtol=0, atol=1e-4)
    assert_allclose(fit.scale, scale, rtol=0, atol=1e-4)
    assert_allclose([fit.log_likelihood_null, fit.log_likelihood], loglik, rtol=0, atol=1e-4)
    assert_allclose([fit.se_intercept, fit.se_arm, fit.se_log_scale], se, rtol=0, atol=1e-4)
    for arm, rows in (("C", slice(0, 8)), ("T", slice(8, 16))):
        curve = turnbull(EXACT_LEFT[rows], EXACT_RIGHT[rows], arm=arm)
        times, surv = R_EXACT_SURV[arm]
        assert_allclose([_after(curve, t) for t in times], surv, rtol=0, atol=1e-4)


def test_images_before_injection_count_as_day_zero() -> None:
    # a pre-injection baseline on day -2 (negative), positive on day 7: onset in (0, 7]
    obs = [
        Observation("a", "A", -2.0, NEG, "spine"),
        Observation("a", "A", 7.0, POS, "spine"),
        Observation("b", "A", -2.0, NEG, "spine"),
    ]
    table = onset_intervals(Cohort.from_records(obs), site="spine", threshold=THRESHOLD)
    got = {a.animal: (a.left, a.right, a.kind) for a in table.animals}
    assert got == {"a": (0.0, 7.0, "left"), "b": (0.0, None, "right")}
