"""Review of error rendering: a JSON body with a number that is not finite (NaN, Infinity,
or 1e400, which parses as infinity; Python's json.dumps writes the first two) is refused
with a 422 problem naming the field, as the input models promise (it was a 500: the
refusal echoed the input back, and JSON has no infinity)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.app.problems import assert_problem

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (
            "/design/power/onset",
            '{"distribution": {"median_days": %s}, "hazard_ratio": 0.5}',
            "distribution.median_days",
        ),
        (
            "/design/power",
            '{"parameters": {"growth_rate": 0.1, "sd_slope": 0.01, "sd_residual": %s}, '
            '"slope_ratio": 0.5}',
            "parameters.sd_residual",
        ),
        ("/studies", '{"name": "BM-01", "day0": %s}', "day0"),
    ],
    ids=["onset-power", "power", "study"],
)
def test_a_number_that_is_not_finite_is_a_422(
    client: TestClient, url: str, body: str, field: str, number: str
) -> None:
    response = client.post(url, content=body % number, headers=JSON)
    problem = assert_problem(response, 422)
    assert field in [e["field"] for e in problem["errors"]], problem
