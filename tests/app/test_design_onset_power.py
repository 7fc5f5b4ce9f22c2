"""Power for time to onset through the API (SQLite and PostgreSQL): from a given onset
distribution (against Schoenfeld's formula and the library), from a pilot arm's growth, as a
job (the table of one request), the CSV, and refusals naming the field to fix."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scipy import stats
from sqlalchemy.orm import Session

import cohorts
from app.guard import kind_of
from app.models import Animal, AuditEvent, Job
from tests.app.jobs import succeeded
from tests.app.problems import assert_problem, row_counts
from tests.app.test_design import PARAMETERS, pilot  # noqa: F401 (a fixture)

URL = "/design/power/onset"
GIVEN = {"distribution": {"median_days": 20.0}, "hazard_ratio": 0.5}


def test_onset_power_from_a_distribution(client: TestClient) -> None:
    body = GIVEN | {
        "n_per_arm": [40],
        "interval_days": [7, None],
        "follow_up_days": [40],
        "n_sim": 1500,
        "seed": 4,
    }
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["endpoint"] == "onset" and result["seed"] == 4
    assert result["distribution"] == {
        "median_days": 20.0,
        "weibull_shape": 1.0,
        "dropout_per_day": 0.0,
    }
    assert result["parameters"] is None and result["hazard_ratio"] == 0.5
    continuous, weekly = result["rows"]  # continuous observation first
    assert continuous["interval_days"] is None and continuous["n_images"] is None
    assert weekly["interval_days"] == 7 and weekly["n_images"] == 6  # days 0, 7, ..., 35
    # Schoenfeld (1981) with the exponential's expected events: 40 (P_c + P_t), P = 1 - e^(-l 40)
    rate = math.log(2) / 20
    events = 40 * (2 - math.exp(-rate * 40) - math.exp(-rate * 0.5 * 40))
    expected = stats.norm.cdf(abs(math.log(0.5)) * math.sqrt(events / 4) - stats.norm.ppf(0.975))
    se = math.sqrt(expected * (1 - expected) / 1500)
    assert abs(continuous["power"] - expected) < 3.5 * se, (continuous["power"], expected)
    assert result["simulated_values"] == 1500 * 2 * 80
    # the library's table for the same seed, passed through unchanged
    table = cohorts.simulate_onset_power(
        cohorts.OnsetDistribution(20.0),
        [cohorts.OnsetDesign(40, 40.0), cohorts.OnsetDesign(40, 40.0, 7.0)],
        hazard_ratio=0.5,
        n_sim=1500,
        seed=4,
    )
    assert result["rows"] == [r.to_dict() for r in table.rows]
    # CSV: the same rows
    text = client.post(URL, params={"format": "csv"}, json=body)
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [float(r["power"]) for r in rows] == [r["power"] for r in result["rows"]]
    assert rows[0]["interval_days"] == ""
    # the power curves
    png = client.post(URL, params={"format": "png"}, json=body)
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.post(URL, params={"format": "svg"}, json=body)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert b"continuously" in svg.content and b"median onset 20 d" in svg.content


def test_onset_power_from_a_pilot_arm(
    client: TestClient,
    pilot: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    before = row_counts(db_session, Animal, AuditEvent, Job)
    body = {
        "pilot": {"arm_id": pilot["control"]["id"]},
        "threshold": 1e7,
        "slope_ratio": 0.5,
        "n_per_arm": [6, 10],
        "interval_days": [7],
        "follow_up_days": [28],
        "n_sim": 200,
        "seed": 2,
    }
    response = client.post(f"/studies/{pilot['id']}/power/onset", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["pilot"]["n_animals"] == 8 and result["distribution"] is None
    assert abs(result["parameters"]["growth_rate"] - 0.15) < 0.03  # the pilot's truth
    assert "1e+07 p/s" in result["parameters_source"] and result["hazard_ratio"] is None
    assert [r["n_per_arm"] for r in result["rows"]] == [6, 10]
    for row in result["rows"]:
        assert row["schoenfeld_power"] is None
        # 5.5 + 0.15 t crosses 7 by day 10: nearly every control animal by day 28
        assert row["expected_events_control"] > 0.8 * row["n_per_arm"]
        assert row["expected_events_treated"] < row["expected_events_control"]
    # the same growth given directly: the same table
    given = {k: v for k, v in body.items() if k != "pilot"} | {"parameters": result["parameters"]}
    assert client.post(URL, json=given).json()["rows"] == result["rows"]
    assert row_counts(db_session, Animal, AuditEvent, Job) == before


def test_onset_power_job_gives_the_table_of_one_request(
    client: TestClient,
    pilot: dict[str, Any],  # noqa: F811
) -> None:
    body = GIVEN | {"n_per_arm": [8, 12], "interval_days": [None, 7], "n_sim": 300, "seed": 6}
    response = client.post(f"/studies/{pilot['id']}/power/onset/jobs", json=body)
    job = client.get(response.headers["Location"]).json()
    assert job["kind"] == "power" and job["inputs"]["endpoint"] == "onset"
    result = succeeded(client, response)
    direct = client.post(f"/studies/{pilot['id']}/power/onset", json=body).json()
    assert result["rows"] == direct["rows"]
    assert result["distribution"] == direct["distribution"] and result["seed"] == 6
    done = client.get(response.headers["Location"]).json()
    assert done["progress"] == {"done": 5, "total": 5}  # the model, then 4 designs
    # from the pilot's growth, fitted in the job's first step
    growth = {
        "pilot": {"arm_id": pilot["control"]["id"]},
        "threshold": 1e7,
        "fold": 10.0,
        "fold_day": 28.0,
        "n_per_arm": [6],
        "n_sim": 100,
        "seed": 1,
    }
    fitted = succeeded(client, client.post(f"/studies/{pilot['id']}/power/onset/jobs", json=growth))
    assert fitted["pilot"]["n_animals"] == 8
    same = client.post(f"/studies/{pilot['id']}/power/onset", json=growth).json()
    assert fitted["rows"] == same["rows"] and fitted["parameters"] == same["parameters"]


def _field(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def test_onset_power_bad_requests_are_422(
    client: TestClient,
    pilot: dict[str, Any],  # noqa: F811
) -> None:
    growth = {"parameters": PARAMETERS, "threshold": 1e6, "slope_ratio": 0.5, "n_sim": 100}
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"hazard_ratio": 0.5}, ("exactly one of distribution",)),
        (GIVEN | {"parameters": PARAMETERS}, ("exactly one of distribution",)),
        ({"distribution": {"median_days": 20}}, ("distribution needs hazard_ratio",)),
        (GIVEN | {"threshold": 1e6}, ("with distribution give hazard_ratio only",)),
        (growth | {"hazard_ratio": 0.5}, ("not hazard_ratio",)),
        ({k: v for k, v in growth.items() if k != "threshold"}, ("needs threshold",)),
        (growth | {"interval_days": [None]}, ("continuous observation", "needs distribution")),
        (growth | {"slope_ratio": None}, ("slope_ratio",)),
        (GIVEN | {"follow_up_days": [5], "first_day": 7}, ("follow_up_days must be after",)),
        (GIVEN | {"n_sim": 5000, "n_per_arm": list(range(100, 130))}, ("background job",)),
        (growth | {"pilot": {"arm_id": pilot["control"]["id"]}, "parameters": None}, ("study",)),
    ]
    for body, fragments in cases:
        assert_problem(client.post(URL, json=body), 422, *fragments)
    # field errors name the field
    bad = client.post(URL, json=GIVEN | {"hazard_ratio": -1})
    assert_problem(bad, 422, "hazard_ratio")
    assert _field(bad) == ["hazard_ratio"]
    bad = client.post(URL, json=GIVEN | {"distribution": {"median_days": 0}})
    assert _field(bad) == ["distribution.median_days"]
    assert _field(client.post(URL, json=GIVEN | {"n_sim": 10**6})) == ["n_sim"]
    # the study route: an arm of another study
    assert_problem(
        client.post(
            f"/studies/{pilot['id']}/power/onset",
            json=growth | {"parameters": None, "pilot": {"arm_id": pilot["id"]}},
        ),
        422,
        "not an arm of this study",
    )
    jobs_url = f"/studies/{pilot['id']}/power/onset/jobs"
    huge = GIVEN | {"n_sim": 100_000, "n_per_arm": list(range(150, 180)), "interval_days": [1, 2]}
    assert_problem(client.post(jobs_url, json=huge), 422, "1e+09")


def test_other_lab_cannot_use_the_study(
    other_lab: TestClient,
    pilot: dict[str, Any],  # noqa: F811
) -> None:
    assert_problem(other_lab.post(f"/studies/{pilot['id']}/power/onset", json=GIVEN), 404)
    assert_problem(other_lab.post(f"/studies/{pilot['id']}/power/onset/jobs", json=GIVEN), 404)


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/design/power/onset", "analysis"), ("/studies/x/power/onset/jobs", "request")],
)
def test_onset_power_counts_as_an_analysis(path: str, kind: str) -> None:
    assert kind_of("POST", path) == kind
