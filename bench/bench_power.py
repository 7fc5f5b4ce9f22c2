"""Validation figures and timing of the design tools (issue 15 §4); prints ratios.

Run: ``.venv/bin/python bench/bench_power.py`` (about a minute on one core).

1. Power by simulation vs the exact power of the pooled two-sample t test on per-animal
   slopes (statsmodels ``TTestIndPower``; without dropout the simulated analysis *is* that
   test): for 12 designs, the simulated power with 20 000 studies each, its difference from
   the exact value in Monte Carlo standard errors (z), and the largest |z|.
2. Welch (the default) vs pooled t: how much power Welch gives up at equal variances.
3. Randomisation balance: over 500 rosters (24 mice, 3 arms, sex strata, log10 baseline
   flux ~ N(6, 0.5), weight ~ N(20, 2)), the Mahalanobis imbalance M and the spread of the
   arm means of log10 baseline after rerandomisation vs a plain stratified permutation;
   M of the permutation against its chi^2 (d (k - 1) = 4 df) mean.
4. Time: the per-request bound (3e7 simulated values) in seconds; randomise() with 2000
   candidates.
"""

from __future__ import annotations

import math
import time

import numpy as np
from statsmodels.stats.power import TTestIndPower

import cohorts
from app.design.schemas import MAX_SIMULATED_VALUES

PILOT = cohorts.GrowthParameters(
    intercept=5.0, growth_rate=0.12, sd_intercept=0.4, sd_slope=0.03, sd_residual=0.25
)


def power_vs_analytic() -> None:
    print("1. simulated (pooled t, 20 000 studies) vs exact power (statsmodels TTestIndPower)")
    print(f"   {'n':>3} {'every':>6} {'to day':>6} {'sim':>7} {'exact':>7} {'z':>6}")
    designs = [
        cohorts.StudyDesign(n, iv, length)
        for n in (4, 8, 12)
        for iv, length in ((3.5, 21), (7, 21), (7, 35), (3.5, 35))
    ]
    table = cohorts.simulate_power(
        PILOT, designs, slope_ratio=0.6, test="student", n_sim=20_000, seed=2026
    )
    zs = []
    for d, row in zip(designs, table.rows, strict=True):
        t = d.days
        sd = math.sqrt(PILOT.sd_slope**2 + PILOT.sd_residual**2 / ((t - t.mean()) ** 2).sum())
        exact = TTestIndPower().power(effect_size=0.4 * 0.12 / sd, nobs1=d.n_per_arm, alpha=0.05)
        z = (row.power - exact) / math.sqrt(exact * (1 - exact) / 20_000)
        zs.append(z)
        print(
            f"   {d.n_per_arm:>3} {d.interval_days:>6g} {d.length_days:>6g} "
            f"{row.power:>7.4f} {exact:>7.4f} {z:>6.2f}"
        )
    print(
        f"   max |z| = {max(map(abs, zs)):.2f} over {len(zs)} designs; mean z = {np.mean(zs):.2f}"
    )


def welch_vs_pooled() -> None:
    designs = [cohorts.StudyDesign(n, 7, 28) for n in (4, 8, 12)]
    kw = {"slope_ratio": 0.6, "n_sim": 20_000, "seed": 7}
    welch = cohorts.simulate_power(PILOT, designs, **kw).rows
    pooled = cohorts.simulate_power(PILOT, designs, test="student", **kw).rows
    print(
        "2. Welch / pooled power at equal variances: "
        + ", ".join(
            f"n={d.n_per_arm} {w.power:.3f}/{p.power:.3f}"
            for d, w, p in zip(designs, welch, pooled, strict=True)
        )
    )


def balance() -> None:
    arms = ("Vehicle", "1D11", "LY2109761")
    m_r, m_p, s_r, s_p = [], [], [], []
    t0 = time.perf_counter()
    for seed in range(500):
        rng = np.random.default_rng(seed)
        units = [
            cohorts.RandomisationUnit(
                f"m{i:02d}",
                float(10 ** rng.normal(6, 0.5)),
                body_weight_g=float(rng.normal(20, 2)),
                stratum="female" if i % 3 else "male",
            )
            for i in range(24)
        ]
        good = cohorts.randomise(units, arms, seed=seed)
        plain = cohorts.randomise(units, arms, seed=seed, method="permutation")
        m_r.append(good.imbalance_m)
        m_p.append(plain.imbalance_m)
        s_r.append(np.ptp([b.log10_baseline_mean for b in good.balance]))
        s_p.append(np.ptp([b.log10_baseline_mean for b in plain.balance]))
    per_call = (time.perf_counter() - t0) / 1000
    print(
        f"3. balance over 500 rosters: mean M {np.mean(m_r):.3f} (rerandomisation) vs "
        f"{np.mean(m_p):.2f} (plain permutation; chi2(4) mean 4) = ratio "
        f"{np.mean(m_r) / np.mean(m_p):.3f}; spread of arm means of log10 baseline "
        f"{np.mean(s_r):.3f} vs {np.mean(s_p):.3f} = ratio {np.mean(s_r) / np.mean(s_p):.2f}"
    )
    print(f"   randomise() ~{per_call * 1e3:.0f} ms per call (2000 candidates / 1)")


def timing() -> None:
    designs = [
        cohorts.StudyDesign(n, iv, length)
        for n in (6, 8, 10, 12, 15)
        for iv in (3.5, 7)
        for length in (21, 28, 35)
    ]
    per_sim = sum(2 * d.n_per_arm * d.days.size for d in designs)
    n_sim = MAX_SIMULATED_VALUES // per_sim
    t0 = time.perf_counter()
    cohorts.simulate_power(
        PILOT.__class__(**(PILOT.to_dict() | {"dropout_per_day": 0.01})),
        designs,
        slope_ratio=0.5,
        n_sim=n_sim,
    )
    took = time.perf_counter() - t0
    print(
        f"4. the per-request bound: {len(designs)} designs x {n_sim} studies = "
        f"{n_sim * per_sim:.3g} simulated values in {took:.1f} s "
        f"({n_sim * per_sim / took / 1e6:.1f} M values/s)"
    )


if __name__ == "__main__":
    power_vs_analytic()
    welch_vs_pooled()
    balance()
    timing()
