"""Randomisation and power through the API (SQLite and PostgreSQL): preview, apply with its
audit trail, the 409 a lab expects before moving animals twice, power tables and plots."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from scipy import stats
from sqlalchemy.orm import Session

from app.models import Animal, AuditEvent
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.jobs import succeeded
from tests.app.problems import assert_problem, row_counts

TAGS = [f"M{i:02d}" for i in range(12)]


def baseline_flux() -> dict[str, float]:
    rng = np.random.default_rng(20261201)
    return {tag: float(10 ** rng.normal(6.0, 0.4)) for tag in TAGS}


def import_flux(client: TestClient, study_id: str, rows: list[tuple[str, int, float]]) -> None:
    lines = ["animal,day,site,total_flux_ps"] + [f"{a},{d},whole_body,{v!r}" for a, d, v in rows]
    response = client.post(
        f"/studies/{study_id}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def study(client: TestClient) -> dict[str, Any]:
    """Twelve mice registered in the control arm (6 female, 6 male), imaged on day 0 only."""
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    animals = {
        tag: make_animal(client, study["id"], control["id"], tag, sex="female" if i % 2 else "male")
        for i, tag in enumerate(TAGS)
    }
    import_flux(client, study["id"], [(a, 0, v) for a, v in baseline_flux().items()])
    return study | {"control": control, "treatment": treatment, "animals": animals}


def url(study: dict[str, Any]) -> str:
    return f"/studies/{study['id']}/randomisation"


def arms_now(client: TestClient, study: dict[str, Any]) -> dict[str, str]:
    page = client.get(f"/studies/{study['id']}/animals", params={"limit": 100}).json()
    return {a["identifier"]: a["arm_id"] for a in page["items"]}


def test_preview_balances_and_changes_nothing(
    client: TestClient, study: dict[str, Any], db_session: Session
) -> None:
    before = arms_now(client, study)
    events = row_counts(db_session, AuditEvent)
    body = {"stratify_by": "sex", "seed": 7}
    response = client.post(url(study), json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["applied"] is False and result["seed"] == 7
    assert result["baseline_day"] == 0 and result["covariates"] == ["log10_baseline_flux"]
    assert arms_now(client, study) == before
    assert row_counts(db_session, AuditEvent) == events
    # 6 per arm, 3 of each sex in each
    assert [a["n"] for a in result["arms"]] == [6, 6]
    assert {s["n"] for s in result["strata"]} == {3}
    # the balance reported is that of the assignments, on log10 of the imported flux
    flux = baseline_flux()
    groups = []
    for arm in result["balance"]:
        logs = np.log10(
            [flux[x["animal"]] for x in result["assignments"] if x["arm"] == arm["arm"]]
        )
        groups.append(logs)
        assert_allclose(
            [arm["log10_baseline_mean"], arm["log10_baseline_sd"]],
            [logs.mean(), logs.std(ddof=1)],
            rtol=1e-9,
        )
    anova = next(t for t in result["tests"] if t["test"] == "one-way ANOVA F")
    assert_allclose(anova["p_value"], stats.f_oneway(*groups).pvalue, rtol=1e-9)
    kw = next(t for t in result["tests"] if t["test"] == "Kruskal-Wallis H")
    assert_allclose(kw["p_value"], stats.kruskal(*groups).pvalue, rtol=1e-9)
    assert result["imbalance_m"] <= result["acceptance_threshold_m"]
    assert result["conflicts"] == []
    # the same request gives the same allocation
    again = client.post(url(study), json=body).json()
    assert again["assignments"] == result["assignments"]


def test_apply_moves_animals_and_audits_seed_method_balance(
    client: TestClient, study: dict[str, Any], db_session: Session
) -> None:
    response = client.post(
        url(study), json={"seed": 11, "apply": True}, headers={"X-Change-Reason": "day-0 BLI"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["applied"] is True
    now = arms_now(client, study)
    assert now == {x["animal"]: x["arm_id"] for x in result["assignments"]}
    audit = client.get(f"/studies/{study['id']}/audit", params={"action": "randomise"}).json()
    (event,) = audit["items"]
    assert event["object_type"] == "study" and event["reason"] == "day-0 BLI"
    changes = event["changes"]
    assert changes["seed"] == 11 and changes["method"] == "rerandomisation"
    assert changes["assignments"] == {x["animal"]: x["arm"] for x in result["assignments"]}
    assert (
        changes["balance"][0]["log10_baseline_mean"] == result["balance"][0]["log10_baseline_mean"]
    )
    moved = sum(x["moved"] for x in result["assignments"])
    assert moved == 6  # all started in the control arm
    updates = client.get(
        f"/studies/{study['id']}/audit",
        params={"action": "update", "object_type": "animal", "limit": 100},
    ).json()
    assert len(updates["items"]) == moved

    # a second randomisation would move animals again: 409, nothing changes
    events = row_counts(db_session, AuditEvent)
    second = client.post(url(study), json={"seed": 12, "apply": True})
    assert_problem(second, 409, "randomised on", "force=true")
    assert arms_now(client, study) == now
    assert row_counts(db_session, AuditEvent) == events
    # the preview says why
    preview = client.post(url(study), json={"seed": 12}).json()
    assert any("randomised on" in c for c in preview["conflicts"])
    # forcing needs a reason, then works
    assert_problem(
        client.post(url(study), json={"seed": 12, "apply": True, "force": True}), 422, "reason"
    )
    forced = client.post(
        url(study),
        json={"seed": 12, "apply": True, "force": True, "reason": "cage flooded, re-done"},
    )
    assert forced.status_code == 200, forced.text
    audit = client.get(f"/studies/{study['id']}/audit", params={"action": "randomise"}).json()
    assert [e["changes"]["forced"] for e in audit["items"]] == [False, True]
    # the record, readable by the lab as a resource of the study
    first, again = client.get(url(study)).json()
    assert (first["seed"], first["forced"], first["reason"]) == (11, False, "day-0 BLI")
    assert (again["seed"], again["forced"]) == (12, True)
    assert again["conflicts"] and again["reason"] == "cage flooded, re-done"
    assert again["balance"] == forced.json()["balance"]
    assert again["assignments"] == {x["animal"]: x["arm"] for x in forced.json()["assignments"]}


def test_imaging_after_baseline_needs_force(client: TestClient, study: dict[str, Any]) -> None:
    import_flux(client, study["id"], [("M03", 7, 3.0e6)])
    response = client.post(url(study), json={"seed": 1, "apply": True})
    assert_problem(response, 409, "imaged after the baseline day 0", "M03")


def test_body_weight_is_balanced_too(client: TestClient, study: dict[str, Any]) -> None:
    weights = {tag: 18.0 + 0.5 * i for i, tag in enumerate(TAGS)}
    result = client.post(url(study), json={"seed": 3, "body_weight_g": weights}).json()
    assert result["covariates"] == ["log10_baseline_flux", "body_weight_g"]
    for arm in result["balance"]:
        grams = [weights[x["animal"]] for x in result["assignments"] if x["arm"] == arm["arm"]]
        assert_allclose(arm["body_weight_mean_g"], np.mean(grams), rtol=1e-12)
    assert_problem(
        client.post(url(study), json={"seed": 3, "body_weight_g": {"M00": 20.0}}),
        422,
        "lacks animal(s)",
    )


def test_missing_baseline_and_bad_references_are_422(
    client: TestClient, study: dict[str, Any]
) -> None:
    make_animal(client, study["id"], study["control"]["id"], "M99")
    assert_problem(client.post(url(study), json={"seed": 1}), 422, "M99", "no usable baseline")
    ids = [a["id"] for a in study["animals"].values()]
    ok = client.post(url(study), json={"seed": 1, "animal_ids": ids})
    assert ok.status_code == 200, ok.text
    assert_problem(
        client.post(url(study), json={"arm_ids": [study["control"]["id"], study["id"]]}),
        422,
        "not an arm of this study",
    )
    assert_problem(
        client.post(url(study), json={"stratify_by": "sex", "strata": {"M00": "a"}}),
        422,
        "not both",
    )
    assert_problem(
        client.post(url(study), json={"animal_ids": ids, "baseline_day": 5}), 422, "day 5"
    )


def test_viewer_may_preview_but_not_apply(
    client: TestClient, app: Any, study: dict[str, Any]
) -> None:
    secret = client.post("/keys", json={"name": "viewer key", "role": "viewer"}).json()["key"]
    before = arms_now(client, study)
    with TestClient(app, headers={"X-API-Key": secret}) as viewer:
        assert viewer.post(url(study), json={"seed": 1}).status_code == 200
        assert_problem(viewer.post(url(study), json={"seed": 1, "apply": True}), 403)
    assert arms_now(client, study) == before


def test_other_lab_cannot_see_the_study(other_lab: TestClient, study: dict[str, Any]) -> None:
    assert_problem(other_lab.post(url(study), json={}), 404)


# --------------------------------------------------------------------------- power

PARAMETERS = {
    "growth_rate": 0.12,
    "sd_intercept": 0.4,
    "sd_slope": 0.03,
    "sd_residual": 0.25,
}


@pytest.fixture
def pilot(client: TestClient) -> dict[str, Any]:
    """A vehicle arm of 8 mice imaged weekly to day 21: 0.15 log10/day with known noise."""
    study = make_study(client)
    control = make_control(client, study["id"])
    rng = np.random.default_rng(5)
    rows = []
    for i in range(8):
        tag = f"P{i}"
        make_animal(client, study["id"], control["id"], tag)
        start, rate = rng.normal(5.5, 0.3), rng.normal(0.15, 0.02)
        rows += [
            (tag, d, float(10 ** (start + rate * d + rng.normal(0, 0.15)))) for d in (0, 7, 14, 21)
        ]
    import_flux(client, study["id"], rows)
    return study | {"control": control}


def test_power_from_a_pilot_arm(client: TestClient, pilot: dict[str, Any]) -> None:
    body = {
        "pilot": {"arm_id": pilot["control"]["id"]},
        "n_per_arm": [4, 8],
        "interval_days": [7],
        "length_days": [21, 28],
        "slope_ratio": 0.5,
        "n_sim": 400,
        "seed": 9,
    }
    response = client.post(f"/studies/{pilot['id']}/power", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["pilot"]["n_animals"] == 8 and result["pilot"]["days"] == [0, 7, 14, 21]
    assert abs(result["parameters"]["growth_rate"] - 0.15) < 0.03  # simulated truth
    assert len(result["rows"]) == 4 and result["n_sim"] == 400
    for row in result["rows"]:
        assert abs(row["power"] - row["analytic_power"]) < 4 * max(row["mc_se"], 0.01)
    # the same parameters given directly, same seed: the same table
    given = {k: v for k, v in body.items() if k != "pilot"} | {
        "parameters": {k: v for k, v in result["parameters"].items() if k != "dropout_per_day"}
        | {"dropout_per_day": result["parameters"]["dropout_per_day"]}
    }
    direct = client.post("/design/power", json=given).json()
    assert direct["rows"] == result["rows"]
    # PNG of the study's table; CSV and SVG of the same table given directly
    png = client.post(f"/studies/{pilot['id']}/power", params={"format": "png"}, json=body)
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    table = client.post("/design/power", params={"format": "csv"}, json=given)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [float(r["power"]) for r in rows] == [r["power"] for r in result["rows"]]
    assert [int(r["n_per_arm"]) for r in rows] == [4, 8, 4, 8]
    svg = client.post("/design/power", params={"format": "svg"}, json=given)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_power_bad_requests_are_422(client: TestClient, pilot: dict[str, Any]) -> None:
    base = {"parameters": PARAMETERS, "slope_ratio": 0.5, "n_sim": 100}
    assert_problem(client.post("/design/power", json={**base, "slope_ratio": None}), 422)
    assert_problem(
        client.post("/design/power", json={**base, "pilot": {"arm_id": pilot["control"]["id"]}}),
        422,
        "exactly one",
    )
    assert_problem(
        client.post("/design/power", json={**base, "length_days": [3]}),
        422,
        "fewer than 2 imaging days",
    )
    big = {**base, "n_sim": 5000, "n_per_arm": list(range(20, 50)), "interval_days": [1, 2]}
    assert_problem(client.post("/design/power", json={**base, **big}), 422, "background job")
    assert_problem(client.post("/design/power", json={**base, "n_sim": 10**6}), 422)
    assert_problem(
        client.post(
            f"/studies/{pilot['id']}/power",
            json={**base, "parameters": None, "pilot": {"arm_id": pilot["id"]}},
        ),
        422,
        "not an arm of this study",
    )


def test_power_seed_is_returned_when_drawn(client: TestClient) -> None:
    body = {"parameters": PARAMETERS, "slope_ratio": 0.5, "n_sim": 50, "n_per_arm": [6]}
    first = client.post("/design/power", json=body).json()
    again = client.post("/design/power", json=body | {"seed": first["seed"]}).json()
    assert again["rows"] == first["rows"]
    assert math.isclose(first["treated_slope"], 0.06)


def test_animals_unchanged_by_power(
    client: TestClient, pilot: dict[str, Any], db_session: Session
) -> None:
    before = row_counts(db_session, Animal, AuditEvent)
    client.post("/design/power", json={"parameters": PARAMETERS, "slope_ratio": 0.5, "n_sim": 50})
    assert row_counts(db_session, Animal, AuditEvent) == before


def test_power_job_gives_the_table_of_one_request(
    client: TestClient, pilot: dict[str, Any]
) -> None:
    body = {
        "pilot": {"arm_id": pilot["control"]["id"]},
        "n_per_arm": [4, 8],
        "length_days": [21, 28],
        "slope_ratio": 0.5,
        "n_sim": 200,
        "seed": 3,
    }
    response = client.post(f"/studies/{pilot['id']}/power/jobs", json=body)
    job = client.get(response.headers["Location"]).json()
    assert job["kind"] == "power" and job["state"] == "queued"
    result = succeeded(client, response)
    direct = client.post(f"/studies/{pilot['id']}/power", json=body).json()
    assert result["rows"] == direct["rows"]
    assert result["parameters"] == direct["parameters"] and result["seed"] == 3
    assert result["pilot"]["n_animals"] == 8
    done = client.get(response.headers["Location"]).json()
    assert done["progress"] == {"done": 5, "total": 5}  # the fit, then 4 designs


def test_power_job_refusals(client: TestClient, pilot: dict[str, Any]) -> None:
    body = {"parameters": PARAMETERS, "slope_ratio": 0.5, "n_sim": 100}
    jobs_url = f"/studies/{pilot['id']}/power/jobs"
    huge = body | {"n_sim": 100_000, "n_per_arm": list(range(50, 80)), "interval_days": [1, 2]}
    assert_problem(client.post(jobs_url, json=huge), 422, "1e+09")
    assert_problem(
        client.post(jobs_url, json=body | {"parameters": None, "pilot": {"arm_id": pilot["id"]}}),
        422,
        "not an arm of this study",
    )
