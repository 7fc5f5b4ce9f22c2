"""Review of power by simulation: an imaging interval the schema accepts (any > 0) but that
asks for billions of imaging days is refused with a 422 naming it, never a 500 from an
array too large to allocate (growth power, onset power from growth or from a distribution,
and the onset power job, which would otherwise be queued and fail in the worker); the
analytic power of the slope t test is a number for every effect (scipy's noncentral t gave
NaN, a 500), checked by numerical integration."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from scipy import integrate, stats
from sqlalchemy.orm import Session

from app.models import Job
from tests.app.factories import make_study
from tests.app.problems import assert_problem, row_counts
from tests.app.test_design import PARAMETERS

# imaging every 1e-9 day to day 3650: 3.65e12 imaging days (26 TiB as float64)
TINY = {"n_per_arm": [2], "n_sim": 10}
DISTRIBUTION = {"distribution": {"median_days": 21.0}, "hazard_ratio": 0.5}
GROWTH = {"parameters": PARAMETERS, "threshold": 1e7, "slope_ratio": 0.5}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/design/power", {"parameters": PARAMETERS, "slope_ratio": 0.5, "length_days": [3650]}),
        ("/design/power/onset", DISTRIBUTION | {"follow_up_days": [3650]}),
        ("/design/power/onset", GROWTH | {"follow_up_days": [3650]}),
    ],
    ids=["growth", "onset-distribution", "onset-growth"],
)
def test_an_interval_asking_for_too_many_images_is_a_422(
    client: TestClient, url: str, body: dict[str, Any]
) -> None:
    response = client.post(url, json=TINY | body | {"interval_days": [1e-9]})
    assert_problem(response, 422)


def test_an_onset_power_job_with_too_many_images_is_refused_before_it_is_queued(
    client: TestClient, db_session: Session
) -> None:
    study = make_study(client)
    jobs = row_counts(db_session, Job)
    body = TINY | DISTRIBUTION | {"follow_up_days": [3650], "interval_days": [1e-9]}
    response = client.post(f"/studies/{study['id']}/power/onset/jobs", json=body)
    assert_problem(response, 422, "interval")
    assert row_counts(db_session, Job) == jobs


def _pooled_t_power(n: int, days: np.ndarray, difference: float, alpha: float = 0.05) -> float:
    """Power of the two-sided pooled t test on per-animal slopes, by numerical integration
    over the chi-square of the variance estimate: T = (Z + nc) / sqrt(V / df), so
    P(|T| > c) = E_V[sf(c sqrt(V/df) - nc) + cdf(-c sqrt(V/df) - nc)] (no noncentral t)."""
    sxx = float(((days - days.mean()) ** 2).sum())
    v = PARAMETERS["sd_slope"] ** 2 + PARAMETERS["sd_residual"] ** 2 / sxx
    nc, df = difference / math.sqrt(2 * v / n), 2 * n - 2
    c = stats.t.ppf(1 - alpha / 2, df)

    def given(w: float) -> float:
        s = c * math.sqrt(w / df)
        return stats.chi2.pdf(w, df) * (stats.norm.sf(s - nc) + stats.norm.cdf(-s - nc))

    return integrate.quad(given, 0, np.inf, limit=200)[0]


@pytest.mark.parametrize("slope_ratio", [5.0, 3.0, 0.2])
def test_analytic_power_of_an_effect_that_speeds_growth(
    client: TestClient, slope_ratio: float
) -> None:
    """A treatment that makes the tumours grow faster (slope_ratio > 1) has a positive
    noncentrality, where scipy's noncentral t cdf gives NaN (a 500 before)."""
    params = PARAMETERS | {"growth_rate": 0.125}
    body = {
        "parameters": params,
        "slope_ratio": slope_ratio,
        "n_per_arm": [10],
        "interval_days": [3.5],
        "length_days": [28],
        "n_sim": 10,
    }
    response = client.post("/design/power", json=body)
    assert response.status_code == 200, response.text
    (row,) = response.json()["rows"]
    days = np.arange(0, 28.01, 3.5)
    expected = _pooled_t_power(10, days, 0.125 * (slope_ratio - 1))
    assert_allclose(row["analytic_power"], expected, rtol=1e-7)


def test_an_effect_beyond_any_noncentral_t_is_power_one(client: TestClient) -> None:
    body = {"parameters": PARAMETERS, "fold": 1e12, "fold_day": 1e-9, "n_sim": 10}
    response = client.post("/design/power", json=TINY | body)
    assert response.status_code == 200, response.text
    assert [r["analytic_power"] for r in response.json()["rows"]] == [1.0]
