"""Simulation check of the left-censored (Tobit) mixed model against substitution.

Run: ``.venv/bin/python bench/bench_tobit_simulation.py [n_studies] [seed]`` (default 200
studies, seed 20261201; ~1-2 s per study on one core).

Each study: 2 arms × 8 mice imaged on days 0, 3, 7, 10, 14, 17, 21; log10 flux
y = b_arm + u0 + (rate_arm + u1) day + e with b = 4.8 (control) and 4.2 (treated: treatment
begun before the first image, so the arm starts lower), rates 0.15 and 0.10 log10 p/s per
day (true slope difference -0.05), u0 ~ N(0, 0.3²), u1 ~ N(0, 0.02²) independent,
e ~ N(0, 0.2²); detection limit 10^5.0 p/s, so ~47 % of the points of days 0-10 are below
it (printed: the treated arm's more often, which is what biases substitution). The slope
difference is estimated by

- ``tobit``: :func:`cohorts.fit_censored_growth_model` (censored points by the normal CDF at
  the limit; Wald t CI, df = animals - arms);
- ``half_min``: censored points set to half the smallest detected value, then the REML
  mixed model (:func:`cohorts.fit_growth_model`, Kenward-Roger CI);
- ``limit``: censored points raised to the limit (floor), same model;
- ``drop``: censored points dropped, same model.

Printed per method: mean estimate, bias (mean - truth) with its Monte-Carlo SE, RMSE and the
coverage of the 95 % CI (with its binomial SE).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

import cohorts

DAYS = (0, 3, 7, 10, 14, 17, 21)
RATES = {"Control": 0.15, "Treated": 0.10}
INTERCEPTS_LOG10 = {"Control": 4.8, "Treated": 4.2}
TRUE_DIFF = RATES["Treated"] - RATES["Control"]
LIMIT_LOG10 = 5.0
EARLY_DAY = 10
N_PER_ARM = 8


def simulate(rng: np.random.Generator) -> tuple[cohorts.Cohort, float]:
    """One study and its detection limit (p/s)."""
    obs = []
    for arm, rate in RATES.items():
        for j in range(N_PER_ARM):
            u0, u1 = rng.normal(0, 0.3), rng.normal(0, 0.02)
            for d in DAYS:
                y = INTERCEPTS_LOG10[arm] + u0 + (rate + u1) * d + rng.normal(0, 0.2)
                obs.append(cohorts.Observation(f"{arm[0]}{j}", arm, float(d), 10.0**y))
    return cohorts.Cohort.from_records(obs), 10.0**LIMIT_LOG10


def _lmm(cohort: cohorts.Cohort) -> tuple[float, float, float]:
    res = cohorts.fit_growth_model(cohort, control="Control")
    d = res.growth_rates[1].difference
    assert d is not None and d.ci_low is not None and d.ci_high is not None
    return float(d.estimate or math.nan), d.ci_low, d.ci_high


def one_study(rng: np.random.Generator) -> tuple[dict[str, tuple[float, float, float]], float]:
    cohort, limit = simulate(rng)
    out = {}
    res = cohorts.fit_censored_growth_model(cohort, control="Control", detection_limits=limit)
    d = res.growth_rates[1].difference
    assert d is not None and d.ci_low is not None and d.ci_high is not None
    out["tobit"] = (float(d.estimate or math.nan), d.ci_low, d.ci_high)
    for method in ("half_min", "limit", "drop"):
        sub = cohorts.substitute_censored(cohort, detection_limits=limit, method=method)
        out[method] = _lmm(sub.cohort)
    pts, _, _ = cohorts.censored_points(cohort, arms=("Control", "Treated"), detection_limits=limit)
    early_frac = float(pts.loc[pts["day"] <= EARLY_DAY, "censored"].mean())
    return out, early_frac


def main(n_studies: int = 200, seed: int = 20261201) -> None:
    rng = np.random.default_rng(seed)
    est: dict[str, list[tuple[float, float, float]]] = {}
    fracs = []
    t0 = time.perf_counter()
    for i in range(n_studies):
        if i and i % 25 == 0:
            print(f"  {i} studies, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        out, frac = one_study(rng)
        fracs.append(frac)
        for k, v in out.items():
            est.setdefault(k, []).append(v)
    elapsed = time.perf_counter() - t0
    print(
        f"{n_studies} simulated studies (2 arms x {N_PER_ARM} mice, days {DAYS}), true slope "
        f"difference {TRUE_DIFF:+.3f} log10/day; censored among days 0-{EARLY_DAY}: mean "
        f"{np.mean(fracs):.0%} (range {min(fracs):.0%}-{max(fracs):.0%}); {elapsed:.0f} s"
    )
    print(f"{'method':<10}{'mean':>9}{'bias':>9}{'MC SE':>8}{'RMSE':>8}{'coverage':>10}{'SE':>6}")
    for k, rows in est.items():
        a = np.array(rows)
        bias = a[:, 0].mean() - TRUE_DIFF
        mcse = a[:, 0].std(ddof=1) / math.sqrt(len(a))
        rmse = math.sqrt(np.mean((a[:, 0] - TRUE_DIFF) ** 2))
        cover = np.mean((a[:, 1] <= TRUE_DIFF) & (a[:, 2] >= TRUE_DIFF))
        cse = math.sqrt(cover * (1 - cover) / len(a))
        print(
            f"{k:<10}{a[:, 0].mean():>+9.4f}{bias:>+9.4f}{mcse:>8.4f}{rmse:>8.4f}"
            f"{cover:>10.3f}{cse:>6.3f}"
        )
    print(f"bias ratio |half_min| / |tobit|: {_ratio(est, 'half_min')}")


def _ratio(est: dict[str, list[tuple[float, float, float]]], k: str) -> str:
    b = abs(np.mean([r[0] for r in est[k]]) - TRUE_DIFF)
    t = abs(np.mean([r[0] for r in est["tobit"]]) - TRUE_DIFF)
    return f"{b / t:.1f}" if t > 0 else "inf"


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
