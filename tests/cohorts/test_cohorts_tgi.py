"""T/C % and %TGI on geometric means: hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from cohorts import EmptyWindowError, InsufficientDataError, tc_ratio, tumor_growth_inhibition

from .conftest import make_cohort

TABLE = {
    "c1": ("vehicle", {0: 1e5, 14: 1e7}),
    "c2": ("vehicle", {0: 1e5, 14: 4e7}),
    "t1": ("drug", {0: 1e5, 14: 1e6}),
    "t2": ("drug", {0: 1e5, 14: 4e6}),
    "t3": ("drug", {0: 4e5}),  # lost before day 14
}


def test_tc_percent_on_geometric_means_with_welch_ci():
    res = tc_ratio(make_cohort(TABLE), control="vehicle", treated="drug")
    d14 = next(r for r in res.rows if r.day == 14)
    # GM control = sqrt(1e7 * 4e7) = 2e7, GM drug = sqrt(1e6 * 4e6) = 2e6 -> T/C = 10 %
    assert_allclose(d14.geometric_mean_control, 2e7, rtol=1e-12)
    assert_allclose(d14.geometric_mean_treated, 2e6, rtol=1e-12)
    assert_allclose(d14.tc_percent.estimate, 10.0, rtol=1e-12)
    t = np.log10([1e6, 4e6])
    c = np.log10([1e7, 4e7])
    ci = stats.ttest_ind(t, c, equal_var=False).confidence_interval(0.95)
    assert_allclose(
        [d14.tc_percent.ci_low, d14.tc_percent.ci_high],
        [100 * 10**ci.low, 100 * 10**ci.high],
        rtol=1e-12,
    )
    d0 = next(r for r in res.rows if r.day == 0)
    # drug day 0: GM of 1e5, 1e5, 4e5 = 1e5 * 4^(1/3); control 1e5
    assert_allclose(d0.tc_percent.estimate, 100 * 4 ** (1 / 3), rtol=1e-12)
    assert (d0.n_treated, d14.n_treated) == (3, 2)
    json.dumps(res.to_dict())


def test_tgi_by_hand():
    res = tumor_growth_inhibition(make_cohort(TABLE), control="vehicle", treated="drug", end_day=14)
    # only animals imaged on both days: t3 excluded
    assert [(e.animal, e.reason) for e in res.exclusions] == [
        ("t3", "no usable image on day 14 for TGI")
    ]
    # TGI = 100 (1 - (2e6 - 1e5) / (2e7 - 1e5))
    assert_allclose(res.tgi_percent, 100 * (1 - 1.9e6 / 1.99e7), rtol=1e-12)
    assert res.start_day == 0 and (res.n_control, res.n_treated) == (2, 2)
    assert res.warning is None


def test_tgi_undefined_when_control_does_not_grow():
    table = {
        "c1": ("vehicle", {0: 1e6, 14: 1e6}),
        "c2": ("vehicle", {0: 1e6, 14: 5e5}),
        "t1": ("drug", {0: 1e6, 14: 1e5}),
        "t2": ("drug", {0: 1e6, 14: 2e5}),
    }
    res = tumor_growth_inhibition(make_cohort(table), control="vehicle", treated="drug", end_day=14)
    assert res.tgi_percent is None
    assert "did not grow" in res.warning
    assert math.isclose(res.geometric_mean_control_end, math.sqrt(5e11))


def test_tgi_bad_windows():
    with pytest.raises(EmptyWindowError, match="must precede"):
        tumor_growth_inhibition(
            make_cohort(TABLE), control="vehicle", treated="drug", start_day=14, end_day=14
        )
    small = {k: v for k, v in TABLE.items() if k != "t2"}
    with pytest.raises(InsufficientDataError, match=r"arm 'drug' has 1 animal"):
        tumor_growth_inhibition(make_cohort(small), control="vehicle", treated="drug", end_day=14)
