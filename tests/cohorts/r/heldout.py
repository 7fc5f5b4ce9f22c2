"""Held-out agreement with R: a study no test uses, every statistic a comparison reports.

    python tests/cohorts/r/heldout.py write DIR   # study CSVs + cohorts' numbers (JSON)
    Rscript tests/cohorts/r/heldout.R DIR         # R's numbers (JSON-like CSV)
    python tests/cohorts/r/heldout.py compare DIR # worst relative difference per statistic

Not a test (it needs R); the figures it prints are quoted in the commit that added it.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

import cohorts

DAYS = (0, 3, 7, 10, 14, 17, 21, 24, 28)
THRESHOLD = 3e7


def make_study(seed: int, out: Path) -> cohorts.Cohort:
    rng = np.random.default_rng(seed)
    obs, ends, rows, end_rows = [], [], [], []
    for i in range(18):
        arm = "Vehicle" if i < 9 else "Drug"
        u0, u1 = rng.multivariate_normal([0, 0], [[0.1, -0.002], [-0.002, 0.0006]])
        rate = 0.11 if arm == "Vehicle" else 0.075
        end = 28.0
        reason = "study_end"
        if i in (2, 11, 14):
            end, reason = (17.0, "humane_endpoint") if i != 14 else (21.0, "death")
        for d in DAYS:
            if d > end:
                break
            value = float(f"{10 ** (5.3 + u0 + (rate + u1) * d + rng.normal(0, 0.2)):.6g}")
            obs.append(cohorts.Observation(f"m{i:02d}", arm, d, value))
            rows.append((f"m{i:02d}", arm, d, value))
        ends.append(cohorts.AnimalEnd(f"m{i:02d}", end, reason))
        end_rows.append((f"m{i:02d}", end, reason))
    with open(out / "study.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["animal", "arm", "day", "flux_ps"])
        w.writerows(rows)
    with open(out / "ends.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["animal", "day", "reason"])
        w.writerows(end_rows)
    return cohorts.Cohort.from_records(obs, ends=ends)


def ours(cohort: cohorts.Cohort) -> dict[str, float]:
    kw = {"control": "Vehicle", "treated": "Drug"}
    out: dict[str, float] = {}
    for r in cohorts.compare_by_day(cohort, **kw).rows:
        d = int(r.day)
        out |= {
            f"day{d}.welch_t": r.welch.statistic,
            f"day{d}.welch_df": r.welch.df,
            f"day{d}.welch_p": r.welch.p_value,
            f"day{d}.welch_p_holm": r.welch.p_adjusted,
            f"day{d}.diff_ci_low": r.mean_difference.ci_low,
            f"day{d}.diff_ci_high": r.mean_difference.ci_high,
            f"day{d}.mw_w": r.mann_whitney.statistic,
            f"day{d}.mw_p": r.mann_whitney.p_value,
            f"day{d}.mw_p_holm": r.mann_whitney.p_adjusted,
            f"day{d}.hl": r.shift.estimate,
            f"day{d}.hl_ci_low": r.shift.ci_low,
            f"day{d}.hl_ci_high": r.shift.ci_high,
        }
    g = cohorts.compare_growth_rates(cohort, **kw)
    for a in g.animals:
        out[f"slope.{a.animal}"] = a.value
    out |= {"slopes.welch_p": g.welch.p_value, "slopes.mw_p": g.mann_whitney.p_value}
    auc = cohorts.compare_auc(cohort, **kw, window=(0, 17))
    for a in auc.animals:
        out[f"auc.{a.animal}"] = a.value
    out |= {"auc.welch_p": auc.welch.p_value, "auc.mw_p": auc.mann_whitney.p_value}
    for r in cohorts.summarize(cohort).rows:
        key = f"summary.{r.arm}.{int(r.day)}"
        out |= {
            f"{key}.mean": r.mean,
            f"{key}.sd": r.sd,
            f"{key}.median": r.median,
            f"{key}.q1": r.q1,
            f"{key}.q3": r.q3,
            f"{key}.gm_ci_low": r.geometric_ci_low,
        }
    for r in cohorts.tc_ratio(cohort, **kw).rows:
        out[f"tc.{int(r.day)}"] = r.tc_percent.estimate
        out[f"tc.{int(r.day)}.ci_low"] = r.tc_percent.ci_low
    m = cohorts.fit_growth_model(cohort, control="Vehicle")
    c = m.growth_rates[1]
    out |= {
        "lmm.reml": m.reml_criterion,
        "lmm.contrast": c.difference.estimate,
        "lmm.contrast_se": c.difference_se,
        "lmm.contrast_df": c.df,
        "lmm.contrast_p": c.p_value,
    }
    s = cohorts.metastasis_free_survival(cohort, **kw, site="whole_body", threshold=THRESHOLD)
    out |= {
        "surv.logrank_chisq": s.logrank.statistic,
        "surv.logrank_p": s.logrank.p_value,
        "surv.hr": s.hazard_ratio.estimate,
        "surv.hr_ci_low": s.hazard_ratio.ci_low,
        "surv.cox_p": s.cox.p_value,
    }
    for curve in s.curves:
        out[f"surv.median.{curve.arm}"] = curve.median_time
        for p in curve.points:
            out[f"surv.S.{curve.arm}.{p.time:g}"] = p.survival
    inc = cohorts.incidence_by_day(cohort, **kw, site="whole_body", threshold=THRESHOLD)
    for r in inc.rows:
        out[f"inc.{int(r.day)}.p"] = r.fisher.p_value
        if r.odds_ratio.estimate is not None:
            out[f"inc.{int(r.day)}.or"] = r.odds_ratio.estimate
    return {k: float(v) for k, v in out.items() if v is not None}


def compare(ours_: dict[str, float], r: dict[str, float]) -> None:
    worst: dict[str, tuple[float, str]] = {}
    for key, value in ours_.items():
        if key not in r:
            continue
        group = key.split(".")[0] if not key.startswith("day") else key.split(".")[1]
        rel = abs(value - r[key]) / max(abs(r[key]), 1e-300)
        if rel > worst.get(group, (-1.0, ""))[0]:
            worst[group] = (rel, key)
    missing = sorted(set(ours_) - set(r))
    for group, (rel, key) in sorted(worst.items()):
        print(f"{group:20s} worst relative difference {rel:.1e}  ({key})")
    print(f"{len(set(ours_) & set(r))} statistics compared; not in R's output: {missing[:8]}")


if __name__ == "__main__":
    what, where = sys.argv[1], Path(sys.argv[2])
    if what == "write":
        where.mkdir(parents=True, exist_ok=True)
        cohort = make_study(20261201, where)
        (where / "ours.json").write_text(json.dumps(ours(cohort), indent=1))
    else:
        r = {}
        with open(where / "r.csv") as f:
            for key, value in csv.reader(f):
                r[key] = float(value)
        compare(json.loads((where / "ours.json").read_text()), r)
