"""Review of power by simulation: an imaging interval the schema accepts (any > 0) but that
asks for billions of imaging days is refused with a 422 naming it, never a 500 from an
array too large to allocate (growth power, onset power from growth or from a distribution,
and the onset power job, which would otherwise be queued and fail in the worker)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
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
