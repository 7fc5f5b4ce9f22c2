"""Validation figures and timing of power for the onset endpoint (log-rank by simulation).

Run: ``.venv/bin/python bench/bench_survival_power.py`` (about a minute on one core).

1. Continuous observation, exponential onset (control median 20 days, follow-up 40 days):
   simulated power (20 000 studies per design) vs Schoenfeld's (1981) formula at the
   closed-form expected number of events, and vs lifelines ``power_under_cph`` (Freedman's
   1982 formula); z = (simulated - Schoenfeld) / MC SE, over a grid of HR x n per arm.
2. Type I error at HR = 1 (40 000 studies each): continuous, weekly imaging, weekly with
   dropout, Weibull (shape 2), and onset from growth with no effect on growth.
3. What imaging costs: power with onset seen continuously vs every 3.5, 7 and 14 days.
4. The vectorised log-rank vs lifelines ``logrank_test``: largest relative difference of the
   chi-square on 2000 random studies with ties, and the time ratio.
5. Time: one request at its bound (3e7 simulated values) for a given distribution and for
   onset from growth.
"""

from __future__ import annotations

import math
import time

import numpy as np
from lifelines.statistics import logrank_test, power_under_cph
from scipy import stats

import cohorts
from app.design.schemas import MAX_SIMULATED_VALUES
from cohorts._power_survival import logrank_rows

MEDIAN, FOLLOW_UP = 20.0, 40.0
GROWTH = cohorts.GrowthParameters(
    intercept=4.5, growth_rate=0.12, sd_intercept=0.4, sd_slope=0.03, sd_residual=0.25
)


def schoenfeld(hr: float, events: float) -> float:
    return float(stats.norm.cdf(abs(math.log(hr)) * math.sqrt(events / 4) - stats.norm.ppf(0.975)))


def vs_schoenfeld() -> None:
    n_sim = 20_000
    print(f"1. continuous exponential onset: simulated ({n_sim} studies) vs Schoenfeld, Freedman")
    print(f"   {'HR':>4} {'n':>4} {'events':>7} {'sim':>7} {'Schoen.':>7} {'z':>6} {'Freedman':>8}")
    rate = math.log(2) / MEDIAN
    zs = []
    for hr in (0.3, 0.5, 0.7):
        for n in (10, 20, 40, 80):
            row = cohorts.simulate_onset_power(
                cohorts.OnsetDistribution(MEDIAN),
                [cohorts.OnsetDesign(n, FOLLOW_UP)],
                hazard_ratio=hr,
                n_sim=n_sim,
                seed=2026,
            ).rows[0]
            p_c, p_t = 1 - math.exp(-rate * FOLLOW_UP), 1 - math.exp(-rate * hr * FOLLOW_UP)
            events = n * (p_c + p_t)
            expected = schoenfeld(hr, events)
            z = (row.power - expected) / math.sqrt(expected * (1 - expected) / n_sim)
            zs.append((n, z))
            freedman = power_under_cph(n, n, p_t, p_c, hr)
            print(
                f"   {hr:>4g} {n:>4} {events:>7.1f} {row.power:>7.4f} {expected:>7.4f} "
                f"{z:>6.2f} {freedman:>8.4f}"
            )
    large = [abs(z) for n, z in zs if n >= 40]
    print(
        f"   max |z| {max(abs(z) for _, z in zs):.2f} over {len(zs)} designs; "
        f"{max(large):.2f} with n >= 40 per arm (Schoenfeld is asymptotic)"
    )


def type_one_error() -> None:
    n_sim = 40_000
    se = math.sqrt(0.05 * 0.95 / n_sim)
    print(f"2. type I error at HR = 1, 20 per arm, {n_sim} studies (MC SE {se:.4f})")
    weekly = cohorts.OnsetDesign(20, 42.0, 7.0)
    cases = [
        ("continuous", cohorts.OnsetDistribution(MEDIAN), cohorts.OnsetDesign(20, 42.0)),
        ("weekly imaging", cohorts.OnsetDistribution(MEDIAN), weekly),
        (
            "weekly, dropout 0.02/day",
            cohorts.OnsetDistribution(MEDIAN, dropout_per_day=0.02),
            weekly,
        ),
        ("Weibull shape 2, weekly", cohorts.OnsetDistribution(MEDIAN, shape=2.0), weekly),
    ]
    for name, model, design in cases:
        row = cohorts.simulate_onset_power(
            model, [design], hazard_ratio=1.0, n_sim=n_sim, seed=7
        ).rows[0]
        print(f"   {name:<26} {row.power:.4f}  (z {(row.power - 0.05) / se:+.2f})")
    growth = cohorts.GrowthOnset(GROWTH, threshold=1e6)
    row = cohorts.simulate_onset_power(
        growth, [cohorts.OnsetDesign(20, 35.0, 3.5)], slope_ratio=1.0, n_sim=n_sim, seed=7
    ).rows[0]
    print(f"   {'growth, every 3.5 days':<26} {row.power:.4f}  (z {(row.power - 0.05) / se:+.2f})")


def imaging_cost() -> None:
    designs = [cohorts.OnsetDesign(20, 42.0, iv) for iv in (None, 3.5, 7.0, 14.0)]
    rows = cohorts.simulate_onset_power(
        cohorts.OnsetDistribution(MEDIAN), designs, hazard_ratio=0.5, n_sim=20_000, seed=3
    ).rows
    print(
        "3. HR 0.5, 20 per arm, follow-up 42 d: power "
        + ", ".join(
            f"{'continuous' if r.interval_days is None else f'every {r.interval_days:g} d'} "
            f"{r.power:.3f}"
            for r in rows
        )
    )


def logrank_agreement() -> None:
    rng = np.random.default_rng(4)
    m, n = 2000, 15
    t = np.ceil(rng.exponential(20.0, (m, 2 * n)) / 3.5) * 3.5
    e = rng.random((m, 2 * n)) < 0.75
    group = np.repeat([False, True], n)
    t0 = time.perf_counter()
    chi2, _ = logrank_rows(t, e, group)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = np.array(
        [logrank_test(t[i, :n], t[i, n:], e[i, :n], e[i, n:]).test_statistic for i in range(m)]
    )
    theirs = time.perf_counter() - t0
    ok = ref > 0
    print(
        f"4. log-rank on {m} studies with ties: max relative difference from lifelines "
        f"{np.max(np.abs(chi2[ok] - ref[ok]) / ref[ok]):.1e}; time ratio lifelines / "
        f"vectorised {theirs / ours:.0f}x"
    )


def timing() -> None:
    designs = [cohorts.OnsetDesign(n, 42.0, iv) for n in (8, 12, 16, 20, 30) for iv in (3.5, 7.0)]
    n_sim = MAX_SIMULATED_VALUES // sum(2 * d.n_per_arm for d in designs)
    t0 = time.perf_counter()
    cohorts.simulate_onset_power(
        cohorts.OnsetDistribution(MEDIAN, dropout_per_day=0.01),
        designs,
        hazard_ratio=0.5,
        n_sim=n_sim,
    )
    took = time.perf_counter() - t0
    print(
        f"5. the per-request bound: given distribution, {len(designs)} designs x {n_sim} "
        f"studies = {MAX_SIMULATED_VALUES:.0e} values in {took:.1f} s"
    )
    per = sum(2 * d.n_per_arm * (1 + d.days.size) for d in designs if d.days is not None)
    n_sim = MAX_SIMULATED_VALUES // per
    t0 = time.perf_counter()
    cohorts.simulate_onset_power(
        cohorts.GrowthOnset(GROWTH, threshold=1e6), designs, slope_ratio=0.5, n_sim=n_sim
    )
    took = time.perf_counter() - t0
    print(
        f"   onset from growth, {len(designs)} designs x {n_sim} studies = "
        f"{MAX_SIMULATED_VALUES:.0e} values in {took:.1f} s"
    )


if __name__ == "__main__":
    vs_schoenfeld()
    type_one_error()
    imaging_cost()
    logrank_agreement()
    timing()
