"""Random studies for the REML optimiser vs lme4 (needs R; not a test):

    python tests/cohorts/r/stress.py DIR && Rscript tests/cohorts/r/stress.R DIR > DIR/r.txt

then compare DIR/ours.json with DIR/r.txt (seed, structure, lme4 default criterion, lme4 run
to its optimum, isSingular of each). 40 studies x 3 structures: criterion within 2e-10 of
lme4's optimum, never above lme4's default fit, isSingular agreeing on all 120 (19 singular).

    Rscript tests/cohorts/r/stress_df.R DIR > DIR/df.txt && python tests/cohorts/r/stress.py DIR df

compares the Kenward-Roger and Satterthwaite df, SE and p of the arm:day contrast on the
non-singular studies (29: KR df within 1e-8, SE 9e-7, p 5e-6; Satterthwaite df 3e-6).
"""

import json
import sys

import numpy as np
import pandas as pd

from cohorts._lmm import fit_lmm

DIR = sys.argv[1]


def compare_df() -> None:
    worst = np.zeros(6)
    n = 0
    with open(f"{DIR}/df.txt") as fh:
        for line in fh:
            seed, *vals = line.split()
            ref = np.array(vals, dtype=float)
            f = pd.read_csv(f"{DIR}/s{seed}.csv")
            t = f.day.to_numpy(float)
            ind = (f.arm == "d").to_numpy(float)
            x = np.column_stack([np.ones_like(t), t, ind, ind * t])
            fit = fit_lmm(f.y.to_numpy(), x, t, f.animal.to_numpy(), structure="intercept_slope")
            kr = fit.contrast([0, 0, 0, 1], df_method="kenward-roger")
            sa = fit.contrast([0, 0, 0, 1], df_method="satterthwaite")
            ours = np.array([kr.df, kr.se, kr.p_value, sa.df, sa.se, sa.p_value])
            worst = np.maximum(worst, np.abs(ours - ref) / np.abs(ref))
            n += 1
    print(n, "fits; worst relative difference KR df/SE/p", worst[:3], "Satterthwaite", worst[3:])


if sys.argv[2:] == ["df"]:
    compare_df()
    sys.exit()
out = {}
for seed in range(40):
    rng = np.random.default_rng(1000 + seed)
    n_per = int(rng.integers(3, 9))
    days = sorted(
        set([0, *list(rng.choice(np.arange(1, 30), size=int(rng.integers(3, 8)), replace=False))])
    )
    sd0, sd1, rho, noise = (
        rng.uniform(0, 0.5),
        rng.uniform(0, 0.04),
        rng.uniform(-1, 1),
        rng.uniform(0.05, 0.4),
    )
    rows = []
    for i in range(2 * n_per):
        arm = "v" if i < n_per else "d"
        u0, u1 = rng.multivariate_normal(
            [0, 0], [[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]]
        )
        for d in days:
            if rng.uniform() < 0.1 and d > 0:
                continue
            rows.append(
                (
                    f"{arm}{i}",
                    arm,
                    d,
                    round(
                        5 + u0 + ((0.1 if arm == "v" else 0.06) + u1) * d + rng.normal(0, noise), 6
                    ),
                )
            )
    f = pd.DataFrame(rows, columns=["animal", "arm", "day", "y"])
    f.to_csv(f"{DIR}/s{seed}.csv", index=False)
    t = f.day.to_numpy(float)
    ind = (f.arm == "d").to_numpy(float)
    X = np.column_stack([np.ones_like(t), t, ind, ind * t])
    res = {}
    for st in ("intercept_slope", "intercept_slope_uncorrelated", "intercept"):
        fit = fit_lmm(f.y.to_numpy(), X, t, f.animal.to_numpy(), structure=st)
        res[st] = (fit.deviance, fit.singular)
    out[seed] = res
with open(f"{DIR}/ours.json", "w") as fh:
    json.dump(out, fh)
