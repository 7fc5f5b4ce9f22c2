"""Values below the detection limit in comparisons: the Tobit mixed model by default,
substitution on request, each labelled in the result and the table."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.models import Comparison, Measurement
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts
from tests.app.test_plot_api import svg_text

DAYS = (0, 3, 7, 10, 14)
LIMIT = 10**5.0


def log10_flux(i: int, day: int) -> float:
    """Animals 0-5 control (from 4.9, 0.12 log10/day), 6-11 treated (from 4.4, 0.07)."""
    treated = i >= 6
    start, rate = (4.4, 0.07) if treated else (4.9, 0.12)
    animal = 0.3 * math.cos(2.3 * i) + 0.01 * day * math.sin(1.1 * i)
    return start + rate * day + animal + 0.15 * math.sin(1.7 * i + 0.9 * day)


def name(i: int) -> str:
    return f"t{i}" if i >= 6 else f"c{i}"


@pytest.fixture
def study(client: TestClient) -> dict:
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    for i in range(12):
        make_animal(client, study["id"], (treatment if i >= 6 else control)["id"], name(i))
    lines = ["animal,day,site,total_flux_ps"] + [
        f"{name(i)},{d},whole_body,{10 ** log10_flux(i, d)!r}" for i in range(12) for d in DAYS
    ]
    response = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    return study | {"control": control, "treatment": treatment}


def _cohort(study: dict) -> cohorts.Cohort:
    arms = {False: study["control"]["name"], True: study["treatment"]["name"]}
    return cohorts.Cohort.from_records(
        cohorts.Observation(name(i), arms[i >= 6], float(d), 10 ** log10_flux(i, d))
        for i in range(12)
        for d in DAYS
    )


def _compare(client: TestClient, study: dict, **body: object) -> dict:
    response = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["mixed_model"]} | body,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_tobit_is_the_default_when_a_value_is_below_its_limit(
    client: TestClient, study: dict
) -> None:
    body = _compare(client, study, detection_limit=LIMIT)
    censoring = body["results"]["censoring"]
    expected = {
        arm: sum(log10_flux(i, d) < 5.0 for i in idx for d in DAYS)
        for arm, idx in (
            (study["control"]["name"], range(6)),
            (study["treatment"]["name"], range(6, 12)),
        )
    }
    assert censoring["method"] == "tobit"
    assert {c["arm"]: c["n_censored"] for c in censoring["n_censored"]} == expected
    assert all(n > 0 for n in expected.values())
    assert "detection_limit" in censoring["limits"]
    model = body["results"]["mixed_model"]["result"]
    assert model["method"] == "tobit" and "P(y < limit)" in model["censoring"]
    # the API runs exactly the censored model of cohorts on the stored values
    direct = cohorts.fit_censored_growth_model(
        _cohort(study), control=study["control"]["name"], detection_limits=LIMIT
    )
    diff = model["growth_rates"][1]["difference"]
    assert_allclose(diff["estimate"], direct.growth_rates[1].difference.estimate, rtol=1e-6)
    assert_allclose(diff["ci_high"], direct.growth_rates[1].difference.ci_high, rtol=1e-5)
    assert model["growth_rates"][1]["df"] == 10  # animals - arms
    table = client.get(body["links"]["tables.mixed_model"]).text
    assert "below detection limit: tobit" in table and "Wald t" in table
    assert f"censored values {study['treatment']['name']}" in table


def test_substitution_on_request_is_labelled_and_listed(client: TestClient, study: dict) -> None:
    body = _compare(client, study, detection_limit=LIMIT, censored="half_min")
    censoring = body["results"]["censoring"]
    assert censoring["method"] == "half_min"
    assert "min/2" in censoring["description"] and "every analysis" in censoring["description"]
    n = sum(c["n_censored"] for c in censoring["n_censored"])
    assert len(censoring["substituted"]) == n > 0
    smallest = min(10 ** log10_flux(i, d) for i in range(12) for d in DAYS if log10_flux(i, d) >= 5)
    assert all(
        f"set to {smallest / 2:g} (half_min)" in a["detail"] for a in censoring["substituted"]
    )
    model = body["results"]["mixed_model"]["result"]
    assert model["method"] == "reml"  # the ordinary model, on substituted values
    table = client.get(body["links"]["tables.mixed_model"]).text
    assert "below detection limit: half_min" in table
    # the comparison's plots say it in their title
    title = svg_text(client, f"/studies/{study['id']}/comparisons/{body['id']}/plots/growth")
    assert "below detection limit: min/2 substitution" in title


def test_without_limits_nothing_is_censored(client: TestClient, study: dict) -> None:
    body = _compare(client, study)
    assert body["results"]["censoring"]["method"] == "none"
    assert body["results"]["mixed_model"]["result"]["method"] == "reml"


def test_limits_recorded_with_the_measurements_are_used(
    client: TestClient, study: dict, db_session: Session
) -> None:
    # as imaging.quantify records them for an ROI measured with a background ROI
    for m in db_session.scalars(select(Measurement)):
        m.parameters = {**(m.parameters or {}), "detection": {"limit_total_flux_ps": LIMIT}}
    db_session.flush()
    body = _compare(client, study)
    censoring = body["results"]["censoring"]
    assert (
        censoring["method"] == "tobit" and "recorded with each measurement" in censoring["limits"]
    )
    assert sum(c["n_censored"] for c in censoring["n_censored"]) == sum(
        log10_flux(i, d) < 5.0 for i in range(12) for d in DAYS
    )


@pytest.mark.parametrize(
    "body",
    [{"censored": "zero"}, {"detection_limit": 0}, {"detection_limit": -1e5}],
)
def test_bad_censoring_parameters_are_refused_and_nothing_is_kept(
    client: TestClient, study: dict, db_session: Session, body: dict
) -> None:
    before = row_counts(db_session, Comparison)
    response = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"]} | body,
    )
    assert_problem(response, 422)
    assert row_counts(db_session, Comparison) == before


def test_plot_titles_name_the_censoring(client: TestClient, study: dict) -> None:
    from app.analysis.plots import censoring_title

    tobit = _compare(client, study, detection_limit=LIMIT)["results"]["censoring"]
    assert censoring_title(tobit).startswith("\nbelow detection limit: Tobit model")
    assert f"{study['treatment']['name']} 19/30" in censoring_title(tobit)
    half = _compare(client, study, detection_limit=LIMIT, censored="half_min")
    assert "min/2 substitution" in censoring_title(half["results"]["censoring"])
    assert censoring_title(None) == censoring_title({"method": "none"}) == ""


def test_a_missing_table_names_the_analyses_run_not_the_censoring(
    client: TestClient, study: dict
) -> None:
    body = _compare(client, study, detection_limit=LIMIT)
    response = client.get(body["links"]["tables.per_day"])
    problem = assert_problem(response, 422)
    assert "analyses run: mixed_model;" in problem["detail"]
