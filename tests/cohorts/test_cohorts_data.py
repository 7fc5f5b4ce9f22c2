"""Input validation, transforms (floor, duplicates, baseline) and per-day summaries."""

from __future__ import annotations

import ast
import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import cohorts
from cohorts import (
    AnimalEnd,
    Cohort,
    CohortsError,
    InvalidInputError,
    MixedStudiesError,
    NoDataError,
    Observation,
    compare_by_day,
    summarize,
)

from .conftest import make_cohort


def test_package_never_imports_the_service_or_web_stack():
    forbidden = {"app", "imaging", "fastapi", "sqlalchemy", "pydantic"}
    pkg = Path(cohorts.__file__).parent
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for n in names:
                assert n.split(".")[0] not in forbidden, f"{path.name} imports {n}"


def test_error_hierarchy():
    for err in (
        cohorts.InvalidInputError,
        cohorts.MixedStudiesError,
        cohorts.NoDataError,
        cohorts.EmptyWindowError,
        cohorts.InsufficientDataError,
    ):
        assert issubclass(err, CohortsError)
    assert issubclass(cohorts.EmptyWindowError, cohorts.NoDataError)
    assert issubclass(cohorts.InvalidInputError, ValueError)


def test_animal_in_two_arms_is_refused():
    obs = [Observation("m1", "vehicle", 0, 1e5), Observation("m1", "drug", 7, 1e6)]
    with pytest.raises(InvalidInputError, match=r"animal 'm1' is listed in two arms"):
        Cohort.from_records(obs)


def test_end_records_are_validated():
    obs = [Observation("m1", "vehicle", 0, 1e5)]
    with pytest.raises(InvalidInputError, match="reason 'died'"):
        Cohort.from_records(obs, ends=[AnimalEnd("m1", 5, "died")])
    with pytest.raises(InvalidInputError, match="more than one end record"):
        Cohort.from_records(
            obs, ends=[AnimalEnd("m1", 5, "death"), AnimalEnd("m1", 6, "study_end")]
        )
    with pytest.raises(InvalidInputError, match="animal 'm9', which has no data"):
        Cohort.from_records(obs, ends=[AnimalEnd("m9", 5, "death")])
    with pytest.raises(NoDataError):
        Cohort.from_records([])


def test_arms_of_different_studies_are_not_compared():
    obs = [Observation(f"a{i}", "vehicle", 0, 1e5 * (i + 1), study="S1") for i in range(3)] + [
        Observation(f"b{i}", "drug", 0, 1e5 * (i + 1), study="S2") for i in range(3)
    ]
    with pytest.raises(MixedStudiesError, match=r"arm 'vehicle': S1; arm 'drug': S2"):
        compare_by_day(Cohort.from_records(obs), control="vehicle", treated="drug")


def test_unknown_arm_and_missing_site_name_what_exists():
    c = make_cohort({"a": ("vehicle", {0: 1.0}), "b": ("drug", {0: 2.0})})
    with pytest.raises(InvalidInputError, match=r"arm 'placebo' is not in the cohort; arms are"):
        summarize(c, arms=["placebo"])
    with pytest.raises(NoDataError, match=r"site 'spine' has no data .* sites are whole_body"):
        summarize(c, site="spine")


def test_from_frame_with_flags_and_missing_columns():
    frame = pd.DataFrame(
        {
            "mouse": ["a", "a", "b"],
            "group": ["v", "v", "v"],
            "day": [0, 7, 0],
            "flux": [1e5, 1e6, 2e5],
            "flags": ["", "saturated;low_signal", None],
        }
    )
    before = frame.copy()
    c = Cohort.from_frame(frame, columns={"mouse": "animal", "group": "arm", "flux": "value"})
    pd.testing.assert_frame_equal(frame, before)  # input unchanged
    assert c.observations[1].flags == frozenset({"saturated", "low_signal"})
    assert c.observations[2].flags == frozenset()
    with pytest.raises(InvalidInputError, match="lacks column"):
        Cohort.from_frame(frame)


def test_log_scale_needs_an_explicit_floor_for_nonpositive_values():
    c = make_cohort({"a": ("vehicle", {0: 0.0, 7: 1e6}), "b": ("vehicle", {0: 5e4, 7: 1e6})})
    with pytest.raises(InvalidInputError, match=r"animal 'a' .* day 0 has value 0 <= 0.*floor="):
        summarize(c)
    s = summarize(c, floor=1e5)
    assert [(a.animal, a.day, a.kind) for a in s.adjustments] == [
        ("a", 0.0, "floored"),
        ("b", 0.0, "floored"),
    ]
    assert "set to 100000" in s.adjustments[0].detail
    day0 = s.rows[0]
    assert day0.mean == pytest.approx(5.0) and s.floor == 1e5


def test_duplicates_averaged_flags_and_post_end_values_excluded():
    obs = [
        Observation("a", "vehicle", 0, 1e5),
        Observation("a", "vehicle", 0, 3e5),  # dorsal + ventral image the same day
        Observation("a", "vehicle", 7, 1e6),
        Observation("a", "vehicle", 9, 1e9),  # after humane endpoint
        Observation("b", "vehicle", 0, 1e5),
        Observation("b", "vehicle", 7, 5e9, flags=frozenset({"saturated"})),
        Observation("b", "vehicle", 7, math.nan),
    ]
    original = copy.deepcopy(obs)
    c = Cohort.from_records(obs, ends=[AnimalEnd("a", 8, "humane_endpoint")])
    s = summarize(c)
    assert obs == original  # inputs unchanged
    assert [(x.animal, x.day, x.kind) for x in s.adjustments] == [("a", 0.0, "averaged")]
    assert "arithmetic mean" in s.adjustments[0].detail
    assert sorted((e.animal, e.day, e.reason) for e in s.exclusions) == [
        ("a", 9.0, "after end record (humane_endpoint on day 8)"),
        ("b", 7.0, "QC flag saturated"),
        ("b", 7.0, "missing value"),
    ]
    day0 = next(r for r in s.rows if r.day == 0)
    assert_allclose(day0.mean, (np.log10(2e5) + 5.0) / 2, rtol=1e-12)
    # the saturated value is kept when the caller says saturation does not exclude
    s2 = summarize(c, exclude_flags=())
    assert next(r for r in s2.rows if r.day == 7).n == 2


def test_summary_by_hand():
    flux = [1e5, 1e6, 1e7, 1e8]
    c = make_cohort({f"m{i}": ("vehicle", {0: v}) for i, v in enumerate(flux)})
    r = summarize(c).rows[0]
    y = np.array([5.0, 6.0, 7.0, 8.0])
    assert r.n == 4
    assert_allclose(r.mean, 6.5, rtol=1e-12)
    assert_allclose(r.sd, np.std(y, ddof=1), rtol=1e-12)
    assert_allclose(r.sem, np.std(y, ddof=1) / 2, rtol=1e-12)
    assert_allclose(r.geometric_mean, 10**6.5, rtol=1e-12)
    half = stats.t.ppf(0.975, 3) * np.std(y, ddof=1) / 2
    assert_allclose(r.geometric_ci_low, 10 ** (6.5 - half), rtol=1e-12)
    assert_allclose(r.geometric_ci_high, 10 ** (6.5 + half), rtol=1e-12)
    # R: quantile(c(5, 6, 7, 8)) -> 25% 5.75, 50% 6.5, 75% 7.25
    assert (r.q1, r.median, r.q3) == pytest.approx((5.75, 6.5, 7.25))
    lin = summarize(c, scale="linear").rows[0]
    assert_allclose(lin.mean, np.mean(flux), rtol=1e-12)
    assert_allclose(lin.geometric_mean, 10**6.5, rtol=1e-12)
    one = summarize(make_cohort({"m": ("vehicle", {0: 1e5})})).rows[0]
    assert one.sd is None and one.sem is None and one.geometric_ci_low is None


def test_baseline_fold_change():
    c = make_cohort(
        {
            "a": ("vehicle", {0: 1e5, 7: 1e6, 14: 1e7}),
            "b": ("vehicle", {7: 2e5, 14: 8e5}),
        }
    )
    first = summarize(c, baseline="first")
    d14 = next(r for r in first.rows if r.day == 14)
    # a: log10(1e7/1e5) = 2; b: log10(8e5/2e5) = log10(4)
    assert_allclose(d14.mean, (2 + math.log10(4)) / 2, rtol=1e-12)
    assert_allclose(d14.geometric_mean, math.sqrt(100 * 4), rtol=1e-12)
    on7 = summarize(c, baseline=7, scale="linear")
    d14 = next(r for r in on7.rows if r.day == 14)
    assert_allclose(d14.mean, (10 + 4) / 2, rtol=1e-12)
    on0 = summarize(c, baseline=0)
    assert [(e.animal, e.reason) for e in on0.exclusions] == [
        ("b", "no usable baseline image on day 0")
    ]


def test_results_serialise_to_json():
    c = make_cohort({"a": ("vehicle", {0: 1e5}), "b": ("vehicle", {0: 3e5})})
    d = summarize(c).to_dict()
    text = json.dumps(d)
    assert json.loads(text)["rows"][0]["n"] == 2
