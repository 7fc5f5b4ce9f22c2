"""Total skeletal burden, per-site incidence and sites per mouse against hand-worked cases."""

from __future__ import annotations

import pytest
from numpy.testing import assert_allclose

from cohorts import (
    SKELETAL_TOTAL,
    AnimalEnd,
    Cohort,
    InvalidInputError,
    NoDataError,
    Observation,
    compare_by_day,
    site_involvement,
    skeletal_burden,
)

T = 1e6  # positivity threshold, p/s


def _obs(animal: str, arm: str, day: float, site: str, value: float, **kw) -> Observation:
    return Observation(animal, arm, day, value, site, **kw)


# Two arms, three bone sites plus whole body (never summed), days 7 and 14.
#            day 7: spine, skull, left_hindlimb      day 14: spine, skull, left_hindlimb
VALUES = {
    ("a1", "Vehicle"): ((2e6, 1e5, 3e5), (8e6, 2e6, 1e6)),
    ("a2", "Vehicle"): ((1e5, 1e5, 1e5), (5e5, 3e6, 2e5)),
    ("b1", "Drug"): ((1e5, 2e5, 1e5), (4e5, 2e5, 3e5)),
    ("b2", "Drug"): ((3e6, 1e5, 1e5), (9e5, 1e5, 1e5)),
}
SITES = ("spine", "skull_mandible", "left_hindlimb")


def _cohort(**extra) -> Cohort:
    obs = []
    for (animal, arm), days in VALUES.items():
        for day, vals in zip((7.0, 14.0), days, strict=True):
            obs += [_obs(animal, arm, day, s, v) for s, v in zip(SITES, vals, strict=True)]
            obs.append(_obs(animal, arm, day, "whole_body", 1e9))
    return Cohort.from_records(obs, **extra)


def test_burden_sums_the_bone_sites_only() -> None:
    burden = skeletal_burden(_cohort())
    assert burden.sites == ("skull_mandible", "spine", "left_hindlimb")  # BONE_SITES order
    got = {(p.animal, p.day): p.total for p in burden.points}
    # a1 day 7: 2e6 + 1e5 + 3e5; a1 day 14: 8e6 + 2e6 + 1e6; ...
    assert_allclose(got[("a1", 7.0)], 2.4e6, rtol=1e-12)
    assert_allclose(got[("a1", 14.0)], 1.1e7, rtol=1e-12)
    assert_allclose(got[("a2", 14.0)], 3.7e6, rtol=1e-12)
    assert_allclose(got[("b2", 7.0)], 3.2e6, rtol=1e-12)
    assert len(got) == 8 and all(p.n_sites == 3 for p in burden.points)


def test_burden_is_an_endpoint_for_the_comparisons() -> None:
    burden = skeletal_burden(_cohort(), sites=["spine", "left_hindlimb"])
    table = compare_by_day(
        burden.cohort, control="Vehicle", treated="Drug", site=SKELETAL_TOTAL, scale="linear"
    )
    day14 = next(r for r in table.rows if r.day == 14.0)
    # Vehicle: 9e6, 7e5; Drug: 7e5, 1e6 -> difference of means (8.5e5 - 4.85e6) = -4e6
    assert_allclose(day14.mean_difference.estimate, -4.0e6, rtol=1e-12)


def test_a_missing_or_flagged_site_drops_the_animal_day_with_a_reason() -> None:
    extra = [
        _obs("c1", "Drug", 7.0, "spine", 1e5),
        _obs("c1", "Drug", 7.0, "skull_mandible", 1e5),
        _obs("c1", "Drug", 7.0, "left_hindlimb", 5e9, flags=frozenset({"saturated"})),
        _obs("c1", "Drug", 14.0, "spine", 1e5),  # no skull, no hindlimb on day 14
    ]
    base = _cohort()
    cohort = Cohort.from_records(base.observations + tuple(extra))
    burden = skeletal_burden(cohort, sites=SITES)
    assert not any(p.animal == "c1" for p in burden.points)
    reasons = [e.reason for e in burden.exclusions if e.animal == "c1" and e.site == SKELETAL_TOTAL]
    assert len(reasons) == 2
    assert "left_hindlimb" in reasons[0]
    assert "skull_mandible, left_hindlimb" in reasons[1]
    assert any("saturated" in e.reason for e in burden.exclusions)


def test_burden_keeps_end_records_and_refuses_unknown_sites() -> None:
    burden = skeletal_burden(_cohort(ends=[AnimalEnd("a2", 14.0, "death")]))
    assert burden.cohort.end_of("a2") == AnimalEnd("a2", 14.0, "death")
    with pytest.raises(NoDataError, match="thorax"):
        skeletal_burden(_cohort(), sites=["thorax"])
    only_body = Cohort.from_records([_obs("a", "A", 1.0, "whole_body", 1.0)])
    with pytest.raises(NoDataError, match="no bone site"):
        skeletal_burden(only_body)


def test_incidence_per_site_and_sites_per_mouse() -> None:
    res = site_involvement(_cohort(), threshold=T, sites=SITES)
    inc = {(r.site, r.arm, r.day): (r.positive, r.n_imaged) for r in res.incidence}
    # spine >= 1e6: a1 from day 7; b2 day 7 (stays involved on day 14 at 9e5)
    assert inc[("spine", "Vehicle", 7.0)] == (1, 2)
    assert inc[("spine", "Drug", 7.0)] == (1, 2)
    assert inc[("spine", "Drug", 14.0)] == (1, 2)
    # skull: a1 and a2 on day 14; left hindlimb: a1 on day 14 (1e6 is at the threshold)
    assert inc[("skull_mandible", "Vehicle", 14.0)] == (2, 2)
    assert inc[("left_hindlimb", "Vehicle", 14.0)] == (1, 2)
    assert inc[("left_hindlimb", "Drug", 14.0)] == (0, 2)
    per_mouse = {(m.animal, m.day): m.n_involved for m in res.per_mouse}
    assert per_mouse == {
        ("a1", 7.0): 1,
        ("a1", 14.0): 3,
        ("a2", 7.0): 0,
        ("a2", 14.0): 1,
        ("b1", 7.0): 0,
        ("b1", 14.0): 0,
        ("b2", 7.0): 1,
        ("b2", 14.0): 1,
    }
    arm14 = next(r for r in res.per_arm if r.arm == "Vehicle" and r.day == 14.0)
    assert (arm14.n, arm14.mean, arm14.median) == (2, 2.0, 2.0)
    assert arm14.distribution == (0, 1, 0, 1)


def test_per_site_thresholds_and_consecutive_images() -> None:
    # spine threshold 1e7: nobody; skull 2.5e6: a2 on 14; hindlimb 2e5 with k = 2: a1 (3e5, 1e6)
    res = site_involvement(
        _cohort(),
        threshold={"spine": 1e7, "skull_mandible": 2.5e6, "left_hindlimb": 2e5},
        sites=SITES,
        consecutive=2,
    )
    involved = {(m.animal, m.day): m.involved for m in res.per_mouse if m.n_involved}
    # with k = 2 the skull (one positive image) does not count; a1's hindlimb from day 7
    assert involved == {("a1", 7.0): ("left_hindlimb",), ("a1", 14.0): ("left_hindlimb",)}


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="no threshold given for site"):
        site_involvement(_cohort(), threshold={"spine": 1e6}, sites=SITES)
    with pytest.raises(InvalidInputError, match="must be > 0"):
        site_involvement(_cohort(), threshold=0.0, sites=SITES)
