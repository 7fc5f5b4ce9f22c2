"""Interval-censored onset and several-sites routes, on SQLite and PostgreSQL.

The onset study holds exactly the intervals of tests/cohorts/test_cohorts_interval.py, so
the API's Turnbull and AFT figures are checked against the R values recorded there; the
sites study is the hand-worked case of tests/cohorts/test_cohorts_sites.py.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem
from tests.cohorts.test_cohorts_interval import LEFT, R_SURV, R_SURVREG, R_TIMES, RIGHT
from tests.cohorts.test_cohorts_sites import SITES, VALUES

NEG, POS, THRESHOLD = 1e4, 1e7, 1e6
PNG = b"\x89PNG\r\n\x1a\n"


def _import(client: TestClient, study_id: str, rows: list[str]) -> None:
    response = client.post(
        f"/studies/{study_id}/measurements/import",
        files={"file": ("flux.csv", "\n".join(["animal,day,site,total_flux_ps", *rows]).encode())},
    )
    assert response.status_code == 201, response.text


def _arms(client: TestClient) -> dict[str, Any]:
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    return study | {"control": control, "treatment": treatment}


@pytest.fixture
def onset_study(client: TestClient) -> dict[str, Any]:
    """18 mice; spine negative on day `left` (unless 0) and positive on `right` (+7)."""
    study = _arms(client)
    rows = []
    for i, (lo, hi) in enumerate(zip(LEFT, RIGHT, strict=True)):
        arm = study["control"] if i < 9 else study["treatment"]
        animal = f"m{i:02d}"
        make_animal(client, study["id"], arm["id"], animal)
        if hi is None:
            rows += [f"{animal},3,spine,{NEG}", f"{animal},{lo},spine,{NEG}"]
            continue
        if lo > 0:
            rows.append(f"{animal},{lo},spine,{NEG}")
        rows += [f"{animal},{hi},spine,{POS}", f"{animal},{hi + 7},spine,{POS}"]
    _import(client, study["id"], rows)
    return study


@pytest.fixture
def sites_study(client: TestClient) -> dict[str, Any]:
    study = _arms(client)
    arm_ids = {"Vehicle": study["control"]["id"], "Drug": study["treatment"]["id"]}
    rows = []
    for (animal, arm), days in VALUES.items():
        make_animal(client, study["id"], arm_ids[arm], animal)
        for day, values in zip((7, 14), days, strict=True):
            rows += [f"{animal},{day},{s},{v!r}" for s, v in zip(SITES, values, strict=True)]
            rows.append(f"{animal},{day},whole_body,1e9")
    _import(client, study["id"], rows)
    return study


def _onset(client: TestClient, study: dict[str, Any], **params: Any):  # type: ignore[no-untyped-def]
    query = {
        "treatment_arm_id": study["treatment"]["id"],
        "site": "spine",
        "threshold": THRESHOLD,
    } | params
    return client.get(f"/studies/{study['id']}/onset/interval-censored", params=query)


def _after(intervals: list[dict[str, Any]], time: float) -> float:
    s = 1.0
    for iv in intervals:
        if iv["left"] < time or (iv["closed_left"] and iv["left"] == time):
            s = iv["survival"]
    return s


def test_interval_censored_survival_matches_r(client: TestClient, onset_study: dict) -> None:
    response = _onset(client, onset_study)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    names = {onset_study["control"]["name"]: "Vehicle", onset_study["treatment"]["name"]: "Treated"}
    assert [c["arm"] for c in result["turnbull"]] == list(names)  # control first
    for curve in result["turnbull"]:
        r_arm = names[curve["arm"]]
        got = [_after(curve["intervals"], t) for t in R_TIMES[r_arm]]
        assert_allclose(got, R_SURV[r_arm], rtol=0, atol=1e-4)
    for dist in ("weibull", "lognormal"):
        fit, ref = result[dist], R_SURVREG[dist]
        assert_allclose([fit["intercept"], fit["arm_coefficient"]], ref["coef"], atol=1e-4)
        assert_allclose(fit["scale"], ref["scale"], atol=1e-4, rtol=0)
        assert_allclose(
            [fit["log_likelihood_null"], fit["log_likelihood"]], ref["loglik"], atol=1e-4
        )
    conventional = result["conventional"]
    assert conventional["logrank"]["test"] == "log-rank"
    assert "semi-parametric" in result["semi_parametric"]
    by_animal = {a["animal"]: a for a in result["animals"]}
    assert (by_animal["m03"]["left"], by_animal["m03"]["right"]) == (10, 24)
    assert by_animal["m06"]["right"] is None and not by_animal["m06"]["event"]


def test_interval_csv_tables_and_plots(client: TestClient, onset_study: dict) -> None:
    animals = _onset(client, onset_study, format="csv")
    assert animals.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(animals.text)))
    assert len(rows) == 18 and rows[0]["left [day]"] == "0.0" and rows[0]["right [day]"] == "7.0"
    turnbull = _onset(client, onset_study, format="csv", table="turnbull")
    rows = list(csv.DictReader(io.StringIO(turnbull.text)))
    assert {r["arm"] for r in rows} == {
        onset_study["control"]["name"],
        onset_study["treatment"]["name"],
    }
    url = f"/studies/{onset_study['id']}/onset/interval-censored/plot"
    params = {"treatment_arm_id": onset_study["treatment"]["id"], "site": "spine"}
    png = client.get(url, params=params | {"threshold": THRESHOLD})
    assert png.status_code == 200 and png.content.startswith(PNG)
    svg = client.get(url, params=params | {"threshold": THRESHOLD, "format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag.endswith("svg")


def test_interval_bad_requests_are_problems(client: TestClient, onset_study: dict) -> None:
    assert_problem(_onset(client, onset_study, site="femur"), 422)
    assert_problem(_onset(client, onset_study, threshold=0), 422)
    assert_problem(_onset(client, onset_study, threshold=-1e6), 422)
    assert_problem(_onset(client, onset_study, site="background"), 422, "no tumour signal")
    assert_problem(_onset(client, onset_study, threshold=1e14), 422, "became positive")
    assert_problem(
        _onset(client, onset_study, control_arm_id=onset_study["treatment"]["id"]),
        422,
        "same arm",
    )
    missing = client.get(
        f"/studies/{onset_study['id']}/onset/interval-censored",
        params={"treatment_arm_id": onset_study["treatment"]["id"], "site": "spine"},
    )
    assert_problem(missing, 422)


def test_other_labs_do_not_see_the_study(other_lab: TestClient, onset_study: dict) -> None:
    assert_problem(_onset(other_lab, onset_study), 404)


def test_skeletal_burden_sums_sites_and_compares(client: TestClient, sites_study: dict) -> None:
    url = f"/studies/{sites_study['id']}/sites/burden"
    body = client.get(url).json()
    assert body["site"] == "skeletal_total" and body["unit"] == "p/s"
    assert body["sites"] == ["skull_mandible", "spine", "left_hindlimb"]
    totals = {(p["animal"], p["day"]): p["total"] for p in body["points"]}
    assert_allclose(totals[("a1", 7)], 2.4e6, rtol=1e-12)  # 2e6 + 1e5 + 3e5
    assert_allclose(totals[("a2", 14)], 3.7e6, rtol=1e-12)  # 5e5 + 3e6 + 2e5
    assert body["comparison"] is None
    compared = client.get(
        url,
        params={
            "treatment_arm_id": sites_study["treatment"]["id"],
            "sites": ["spine", "left_hindlimb"],
        },
    ).json()
    day14 = next(r for r in compared["comparison"]["rows"] if r["day"] == 14)
    # log10 burdens, Vehicle 9e6, 7e5; Drug 7e5, 1e6: difference of the mean log10 values
    import numpy as np

    expected = np.log10([7e5, 1e6]).mean() - np.log10([9e6, 7e5]).mean()
    assert_allclose(day14["mean_difference"]["estimate"], expected, rtol=1e-12)
    table = client.get(url, params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 8 and rows[0]["total [p/s]"]
    png = client.get(f"{url}/plot")
    assert png.status_code == 200 and png.content.startswith(PNG)
    svg = client.get(f"{url}/plot", params={"format": "svg"})
    assert ET.fromstring(svg.content).tag.endswith("svg")


def test_site_involvement_tables_and_plots(client: TestClient, sites_study: dict) -> None:
    url = f"/studies/{sites_study['id']}/sites/involvement"
    body = client.get(url, params={"threshold": THRESHOLD}).json()
    inc = {
        (r["site"], r["arm"], r["day"]): (r["positive"], r["n_imaged"]) for r in body["incidence"]
    }
    control = sites_study["control"]["name"]
    assert inc[("skull_mandible", control, 14)] == (2, 2)
    assert inc[("left_hindlimb", control, 14)] == (1, 2)
    per_mouse = {(m["animal"], m["day"]): m["n_involved"] for m in body["per_mouse"]}
    assert per_mouse[("a1", 14)] == 3 and per_mouse[("b1", 14)] == 0
    for table, columns in (
        ("incidence", "site"),
        ("per_mouse", "animal"),
        ("per_arm", "animals_with_3_sites"),
    ):
        text = client.get(
            url, params={"threshold": THRESHOLD, "format": "csv", "table": table}
        ).text
        assert columns in text.splitlines()[0]
    for kind in ("incidence", "per_mouse"):
        for fmt, start in (("png", PNG), ("svg", b"<?xml")):
            r = client.get(
                f"{url}/plot", params={"threshold": THRESHOLD, "kind": kind, "format": fmt}
            )
            assert r.status_code == 200 and r.content.startswith(start), r.text


def test_sites_bad_requests_are_problems(client: TestClient, sites_study: dict) -> None:
    base = f"/studies/{sites_study['id']}/sites"
    assert_problem(client.get(f"{base}/burden", params={"sites": "femur"}), 422)
    assert_problem(
        client.get(f"{base}/burden", params={"sites": "whole_body"}), 422, "not a bone site"
    )
    assert_problem(client.get(f"{base}/burden", params={"sites": "thorax"}), 422, "thorax")
    assert_problem(client.get(f"{base}/involvement"), 422)
    assert_problem(client.get(f"{base}/involvement", params={"threshold": "lots"}), 422)
    assert_problem(
        client.get(f"{base}/involvement/plot", params={"threshold": 1e6, "kind": "pie"}), 422
    )


def test_response_models_mirror_the_cohorts_results() -> None:
    import dataclasses

    import cohorts
    from app.onset import schemas

    pairs = [
        (cohorts.OnsetInterval, schemas.OnsetInterval),
        (cohorts.TurnbullInterval, schemas.TurnbullInterval),
        (cohorts.TurnbullCurve, schemas.TurnbullCurve),
        (cohorts.AFTFit, schemas.AFTFit),
        (cohorts.IntervalSurvivalResult, schemas.IntervalSurvival),
        (cohorts.BurdenPoint, schemas.BurdenPoint),
        (cohorts.SiteIncidence, schemas.SiteIncidence),
        (cohorts.SitesPerMouse, schemas.SitesPerMouse),
        (cohorts.ArmSitesDay, schemas.ArmSitesDay),
    ]
    for dc, model in pairs:
        assert {f.name for f in dataclasses.fields(dc)} == set(model.model_fields), dc.__name__
    burden = {f.name for f in dataclasses.fields(cohorts.SkeletalBurden)} - {"cohort"}
    assert burden <= set(schemas.SkeletalBurdenRead.model_fields)
    involvement = {f.name for f in dataclasses.fields(cohorts.SiteInvolvement)}
    assert involvement <= set(schemas.SiteInvolvementRead.model_fields)
