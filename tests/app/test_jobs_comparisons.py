"""``POST …/comparisons`` with ``Prefer: respond-async`` (RFC 7240): 202 with a job whose
result is the stored comparison; without the header the answer stays synchronous (201)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from scipy import stats
from sqlalchemy.orm import Session

from app.jobs.comparisons import prefers_async
from app.models import Comparison, Job
from tests.app.jobs import finished
from tests.app.problems import assert_problem, row_counts
from tests.app.test_analysis_api import CONTROL, TREATED, arm_values, study  # noqa: F401

ASYNC = {"Prefer": "respond-async, wait=0"}


def test_prefer_respond_async_runs_the_comparison_as_a_job(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
) -> None:
    body = {"treatment_arm_id": study["treatment"]["id"], "analyses": ["per_day"]}
    url = f"/studies/{study['id']}/comparisons"
    response = client.post(url, json=body, headers=ASYNC)
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "respond-async"
    assert response.json()["kind"] == "comparison"
    assert client.get(url).json() == []  # nothing computed yet
    job = finished(client, response)
    assert (job["state"], job["progress"]) == ("succeeded", {"done": 1, "total": 1})
    stored = client.get(job["result_url"])
    assert stored.status_code == 200, stored.text
    comparison = stored.json()
    assert job["result"] == {"comparison_id": comparison["id"]}
    assert comparison["n_animals"] == {"Isotype IgG1": 6, "1D11 10 mg/kg": 6}
    # the same statistics as scipy on the simulated values (tests/app/test_analysis_api.py)
    for row in comparison["results"]["per_day"]["result"]["rows"]:
        day = int(row["day"])
        mw = stats.mannwhitneyu(
            arm_values(day, TREATED),
            arm_values(day, CONTROL),
            alternative="two-sided",
            method="exact",
        )
        assert_allclose(row["mann_whitney"]["p_value"], mw.pvalue, rtol=1e-9)
    # without the preference the answer is the comparison itself, as before
    assert client.post(url, json=body).status_code == 201


def test_a_wrong_arm_is_refused_at_once_and_queues_nothing(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    before = row_counts(db_session, Job, Comparison)
    response = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["control"]["id"], "control_arm_id": study["control"]["id"]},
        headers=ASYNC,
    )
    assert response.status_code in {404, 422}
    assert_problem(response, response.status_code)
    assert row_counts(db_session, Job, Comparison) == before


def test_prefer_header_parsing() -> None:
    assert prefers_async("respond-async")
    assert prefers_async("return=minimal, Respond-Async; wait=10")
    assert not prefers_async("return=representation")
    assert not prefers_async(None)
    assert not prefers_async("respond-asynchronously")
