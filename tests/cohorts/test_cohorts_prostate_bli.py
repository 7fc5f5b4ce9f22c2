"""Real bioluminescence series (tumr prostate: 49 mice, 3 genotypes, photons).

No published numbers exist for it (tumr README), so these tests check the pipeline end to
end against statsmodels and scipy called directly on the same data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM

from cohorts import Cohort, EmptyWindowError, compare_by_day, fit_growth_model, summarize


@pytest.fixture(scope="module")
def prostate_frame(longitudinal_data: Path) -> pd.DataFrame:
    return pd.read_csv(longitudinal_data / "tumr" / "prostate.csv")


@pytest.fixture(scope="module")
def prostate(prostate_frame: pd.DataFrame) -> Cohort:
    cols = {"ID": "animal", "Genotype": "arm", "Age": "day", "BLI": "value"}
    return Cohort.from_frame(prostate_frame, columns=cols)


def test_mixed_model_on_bli_matches_direct_statsmodels(prostate, prostate_frame):
    res = fit_growth_model(prostate, control="WT", treated=["DOKO"])
    assert res.converged and not res.fallback_used
    df = prostate_frame[prostate_frame["Genotype"].isin(["WT", "DOKO"])]
    y = np.log10(df["BLI"].to_numpy())
    day = df["Age"].to_numpy(dtype=float)
    doko = (df["Genotype"] == "DOKO").to_numpy(dtype=float)
    x = np.column_stack([np.ones_like(day), day, doko, doko * day])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = MixedLM(y, x, groups=df["ID"].to_numpy(), exog_re=x[:, :2]).fit(
            reml=True, method=["powell"]
        )
    assert_allclose(res.log_likelihood, direct.llf, atol=1e-3)
    assert_allclose(
        [fe.estimate for fe in res.fixed_effects], direct.fe_params, rtol=1e-3, atol=1e-5
    )
    doko_rate = res.growth_rates[1]
    assert doko_rate.arm == "DOKO" and doko_rate.n_animals == 17
    assert doko_rate.difference.ci_low > 0  # double knockout grows faster


def test_per_day_on_bli_matches_scipy(prostate, prostate_frame):
    res = compare_by_day(prostate, control="WT", treated="HET", correction="bh")
    assert res.rows
    for row in res.rows:
        day = prostate_frame[prostate_frame["Age"] == row.day]
        wt = np.log10(day.loc[day["Genotype"] == "WT", "BLI"])
        het = np.log10(day.loc[day["Genotype"] == "HET", "BLI"])
        assert (row.n_control, row.n_treated) == (wt.size, het.size)
        w = stats.ttest_ind(het, wt, equal_var=False)
        assert_allclose(row.welch.p_value, w.pvalue, rtol=1e-10)
        assert_allclose(row.mann_whitney.p_value, stats.mannwhitneyu(het, wt).pvalue, rtol=1e-10)
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
