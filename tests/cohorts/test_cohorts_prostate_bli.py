"""Real bioluminescence series (tumr prostate: 49 mice, 3 genotypes, photons).

No published numbers exist for it (tumr README): these tests check the pipeline end to
end against R and scipy on the same data (the mixed model: test_cohorts_lmm_r.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from cohorts import Cohort, EmptyWindowError, compare_by_day, summarize


@pytest.fixture(scope="module")
def prostate_frame(longitudinal_data: Path) -> pd.DataFrame:
    return pd.read_csv(longitudinal_data / "tumr" / "prostate.csv")


@pytest.fixture(scope="module")
def prostate(prostate_frame: pd.DataFrame) -> Cohort:
    cols = {"ID": "animal", "Genotype": "arm", "Age": "day", "BLI": "value"}
    return Cohort.from_frame(prostate_frame, columns=cols)


# R 4.2.2, per day: wilcox.test(log10(BLI[HET]), log10(BLI[WT])) -> W, p (exact without
# ties, n < 50; "with continuity correction" where BLI values tie)
WILCOX_HET_VS_WT = {
    5: (186, 0.0270433296368228, "exact"),
    7: (181, 0.0167699230228788, "normal"),
    9: (149.5, 0.416764158266392, "normal"),
    11: (128.5, 0.315295058590808, "normal"),
    13: (120.5, 0.806084526007078, "normal"),
    15: (93.5, 0.871878509113272, "normal"),
    17: (62, 0.765545002657172, "normal"),
    19: (90, 0.371180484276695, "normal"),
    21: (157, 0.27324433340158, "normal"),
    23: (127, 0.190240695232764, "normal"),
    25: (142.5, 0.0403460528293939, "normal"),
    27: (114.5, 0.015247178176858, "normal"),
    29: (62, 0.0140789169279728, "normal"),
    31: (36, 0.034965034965035, "exact"),
    33: (40, 0.189277389277389, "exact"),
    35: (38, 0.0812520812520813, "exact"),
    37: (46, 0.00407925407925408, "exact"),
    39: (21, 0.0952380952380952, "exact"),
    41: (40, 0.0426240426240426, "exact"),
    43: (17, 0.183333333333333, "exact"),
    45: (9, 0.19047619047619, "exact"),
}


def test_per_day_on_bli_matches_r(prostate, prostate_frame):
    res = compare_by_day(prostate, control="WT", treated="HET", correction="bh")
    assert {r.day for r in res.rows} == set(WILCOX_HET_VS_WT)
    for row in res.rows:
        w_stat, p, method = WILCOX_HET_VS_WT[int(row.day)]
        assert row.mann_whitney.statistic == w_stat
        assert_allclose(row.mann_whitney.p_value, p, rtol=1e-12)
        assert row.mann_whitney.method.startswith(method)
        day = prostate_frame[prostate_frame["Age"] == row.day]
        wt = np.log10(day.loc[day["Genotype"] == "WT", "BLI"])
        het = np.log10(day.loc[day["Genotype"] == "HET", "BLI"])
        assert (row.n_control, row.n_treated) == (wt.size, het.size)
        w = stats.ttest_ind(het, wt, equal_var=False)
        assert_allclose(row.welch.p_value, w.pvalue, rtol=1e-10)
    tested = {r.day for r in res.rows}
    skipped = {s.day for s in res.skipped_days}
    assert tested.isdisjoint(skipped)
    assert tested | skipped == set(prostate_frame["Age"].astype(float))


def test_summary_geometric_means(prostate, prostate_frame):
    s = summarize(prostate, arms=["DOKO"])
    for row in s.rows:
        v = prostate_frame.loc[
            (prostate_frame["Genotype"] == "DOKO") & (prostate_frame["Age"] == row.day), "BLI"
        ]
        assert_allclose(row.geometric_mean, stats.gmean(v), rtol=1e-10)
        assert row.n == v.size


def test_days_not_imaged_are_named(prostate):
    with pytest.raises(EmptyWindowError, match="on day"):
        compare_by_day(prostate, control="WT", treated="HET", days=[6.5])
