"""Generate the synthetic mixed-model studies (run once; the CSVs are committed and
tests/cohorts/r/lmm_reference.R fits them in R). log10 flux = 5.5 + u0 + (rate + u1) day
+ e, written as flux (p/s) to 6 significant digits."""

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent


def write(name, rows):
    with open(OUT / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["animal", "arm", "day", "flux_ps"])
        for r in rows:
            w.writerow(r)


def _two_arms(seed, sd0, sd1, rho, days, noise, n_per=5):
    """Two arms (vehicle 0.12, drug 0.07 log10 per day) with correlated random effects."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(2 * n_per):
        arm = "vehicle" if i < n_per else "drug"
        cov = [[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]]
        u0, u1 = rng.multivariate_normal([0, 0], cov)
        slope = 0.12 if arm == "vehicle" else 0.07
        for d in days:
            y = 5.5 + u0 + (slope + u1) * d + rng.normal(0, noise)
            rows.append((f"{arm[0]}{i}", arm, d, f"{10**y:.6g}"))
    return rows


# S1: lme4 finds correlation -1; without the correlation the slope variance is 0
write(
    "lmm_singular_correlation.csv",
    _two_arms(120, 0.3, 0.02, -0.9, days=(0, 4, 7, 11, 14, 18), noise=0.3),
)
# S2: no slope variance in truth; correlated and uncorrelated fits both singular, and the
# intercept variance is 0 as well
write(
    "lmm_no_slope_variance.csv",
    _two_arms(103, 0.15, 0.0, 0.0, days=(0, 4, 7, 11, 14, 18), noise=0.3),
)

# S3: small BLI study, 5 + 5 mice, deaths shorten some series
rng = np.random.default_rng(303)
rows = []
for i in range(10):
    arm = "vehicle" if i < 5 else "inhibitor"
    u0, u1 = rng.multivariate_normal([0, 0], [[0.09, 0.002], [0.002, 0.0004]])
    slope = 0.15 if arm == "vehicle" else 0.09
    last = 28 if i % 4 else 17
    for d in (0, 3, 7, 10, 14, 17, 21, 24, 28):
        if d > last:
            break
        y = 5.2 + u0 + (slope + u1) * d + rng.normal(0, 0.2)
        rows.append((f"{arm[0]}{i}", arm, d, f"{10**y:.6g}"))
write("lmm_small_bli.csv", rows)

# S4: three arms of 8, unequal imaging days, wide slope spread
rng = np.random.default_rng(404)
rows = []
for i in range(24):
    arm = ("isotype", "antibody", "combination")[i // 8]
    u0, u1 = rng.multivariate_normal([0, 0], [[0.16, -0.004], [-0.004, 0.0009]])
    slope = {"isotype": 0.11, "antibody": 0.08, "combination": 0.05}[arm]
    days = [d for d in (0, 2, 5, 7, 9, 12, 14, 16, 19, 21, 23, 26) if rng.uniform() < 0.8 or d == 0]
    for d in days:
        y = 4.8 + u0 + (slope + u1) * d + rng.normal(0, 0.22)
        rows.append((f"{arm[:3]}{i}", arm, d, f"{10**y:.6g}"))
write("lmm_three_arms.csv", rows)
