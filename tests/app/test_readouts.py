"""End-of-study readouts through the API: definitions, values, CSV import, comparisons against
R, correlation with final BLI flux, downloads and plots (both database backends)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy.orm import Session

from app.models import AuditEvent, Blob, ReadoutValue
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts

# Tumour area in bone sections (mm²); the R values in the tests come from these.
C0 = [2.31, 4.07, 1.52, 3.88, 5.14, 2.96, 0.47, 4.45]
TA = [0.84, 1.27, 0.12, 2.05, 0.61, 1.49, 0.33]
TB = [1.95, 3.12, 0.92, 2.64, 4.81, 1.18]
# Final whole-body flux (p/s) on day 28 of c1..c8, a1, a2.
FLUX = [3.1e6, 2.2e7, 8.4e5, 9.9e6, 4.1e7, 1.5e6, 2.6e5, 7.7e6, 1.1e6, 4.0e5]
RTOL = 1e-6


@pytest.fixture
def study(client: TestClient) -> dict[str, Any]:
    study = make_study(client)
    control = make_control(client, study["id"])
    a = make_treatment(client, study["id"], control["id"])
    b = make_treatment(client, study["id"], control["id"], name="1D11 30 mg/kg", dose=30)
    for prefix, arm, values in (("c", control, C0), ("a", a, TA), ("b", b, TB)):
        for i in range(len(values)):
            make_animal(client, study["id"], arm["id"], f"{prefix}{i + 1}")
    return study


def _readout(client: TestClient, study: dict[str, Any], **body: Any) -> dict[str, Any]:
    body = {"name": "tumour area in bone sections", "unit": "mm²", "kind": "numeric"} | body
    response = client.post(f"/studies/{study['id']}/readouts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _upload(client: TestClient, study: dict[str, Any], text: str, **form: str) -> Any:
    return client.post(
        f"/studies/{study['id']}/readouts/import",
        files={"file": ("pathology.csv", text.encode(), "text/csv")},
        data=form,
    )


def _area_csv() -> str:
    lines = ["ear tag,readout,value,date"]
    for prefix, values in (("c", C0), ("a", TA), ("b", TB)):
        lines += [
            f"{prefix}{i + 1},tumour area in bone sections,{v},2026-07-29"
            for i, v in enumerate(values)
        ]
    return "\n".join(lines) + "\n"


def test_define_record_correct_and_remove(
    client: TestClient, study: dict, db_session: Session
) -> None:
    readout = _readout(client, study, site="right_hindlimb")
    assert readout["site"] == "right_hindlimb" and readout["values"] == 0
    again = client.post(
        f"/studies/{study['id']}/readouts",
        json={"name": "tumour area in bone sections", "kind": "numeric", "site": "right_hindlimb"},
    )
    assert_problem(again, 409, "already has a readout")
    animals = client.get(f"/studies/{study['id']}/animals", params={"identifier": "c1"}).json()
    aid = animals["items"][0]["id"]
    url = f"/studies/{study['id']}/readouts/{readout['id']}/values"
    created = client.post(url, json={"animal_id": aid, "value": 2.31, "measured_on": "2026-07-29"})
    assert created.status_code == 201, created.text
    value = created.json()
    assert (value["animal"], value["arm"], value["unit"]) == ("c1", "Isotype IgG1", "mm²")
    assert value["created_by_key_id"] is not None
    assert_problem(client.post(url, json={"animal_id": aid, "value": 3.0}), 409, "already has 2.31")

    # A correction needs a reason; the audit trail keeps [old, new] with it.
    patch = client.patch(f"{url}/{value['id']}", json={"value": 2.13})
    assert_problem(patch, 422, "X-Change-Reason")
    patch = client.patch(
        f"{url}/{value['id']}", json={"value": 2.13}, headers={"X-Change-Reason": "typo"}
    )
    assert patch.status_code == 200 and patch.json()["value"] == 2.13
    assert patch.json()["updated_by_key_id"] == value["created_by_key_id"]
    events = client.get("/audit", params={"object_id": value["id"]}).json()["items"]
    update = next(e for e in events if e["action"] == "update")
    assert update["changes"] == {"value": [2.31, 2.13]} and update["reason"] == "typo"

    assert_problem(client.delete(f"{url}/{value['id']}"), 422, "X-Change-Reason")
    gone = client.delete(f"{url}/{value['id']}", headers={"X-Change-Reason": "wrong mouse"})
    assert gone.status_code == 204
    assert row_counts(db_session, ReadoutValue) == (0,)
    events = client.get("/audit", params={"object_id": readout["id"]}).json()["items"]
    delete = next(e for e in events if e["action"] == "delete_value")
    assert delete["changes"]["value_id"] == value["id"] and delete["changes"]["value"] == 2.13
    assert delete["changes"]["animal"] == "c1" and delete["reason"] == "wrong mouse"
    # The study's audit trail shows the readout's events with the study's other objects.
    trail = client.get(f"/studies/{study['id']}/audit", params={"limit": 500}).json()["items"]
    kinds = {(e["object_type"], e["action"]) for e in trail}
    assert {("readout", "create"), ("readout", "delete_value")} <= kinds


def test_values_must_fit_the_kind_and_the_study(
    client: TestClient, study: dict, other_lab: TestClient
) -> None:
    bones = _readout(client, study, name="metastatic bones at necropsy", unit=None, kind="count")
    animal = client.get(f"/studies/{study['id']}/animals", params={"identifier": "a1"}).json()
    url = f"/studies/{study['id']}/readouts/{bones['id']}/values"
    aid = animal["items"][0]["id"]
    assert_problem(client.post(url, json={"animal_id": aid, "value": 1.5}), 422, "not a count")
    assert_problem(
        client.post(url, json={"animal_id": aid, "value": 1, "measured_on": "2026-06-01"}),
        422,
        "before the study's day 0",
    )
    bad_site = client.post(
        f"/studies/{study['id']}/readouts",
        json={"name": "x", "kind": "numeric", "site": "background"},
    )
    assert_problem(bad_site, 422)
    assert_problem(other_lab.get(f"/studies/{study['id']}/readouts/{bones['id']}"), 404)
    viewer_secret = client.post("/keys", json={"name": "v", "role": "viewer"}).json()["key"]
    response = client.post(
        url,
        json={"animal_id": aid, "value": 1},
        headers={"Authorization": f"Bearer {viewer_secret}"},
    )
    assert_problem(response, 403)


def test_import_is_all_or_nothing(client: TestClient, study: dict, db_session: Session) -> None:
    _readout(client, study)
    _readout(client, study, name="metastatic bones at necropsy", unit=None, kind="count")
    before = row_counts(db_session, ReadoutValue, Blob, AuditEvent)
    unknown = _upload(
        client,
        study,
        "animal,readout,value\nc1,tumour area in bone sections,2.3\n"
        "zz9,tumour area in bone sections,1\n"
        "c2,metastatic bones at necropsy,2.5\nc3,lesion score,1\n",
    )
    body = assert_problem(
        unknown,
        422,
        "line 3: animal 'zz9' is not in this study",
        "line 4: 2.5 is not a count",
        "line 5: readout 'lesion score' is not defined",
        "nothing was imported",
    )
    assert "metastatic bones at necropsy" in body["detail"]
    wrong_unit = _upload(
        client, study, "animal,readout,value,unit\nc1,tumour area in bone sections,2.3,µm²\n"
    )
    assert_problem(wrong_unit, 422, "line 2: unit 'µm²'")
    assert row_counts(db_session, ReadoutValue, Blob, AuditEvent) == before

    first = _upload(client, study, _area_csv())
    assert first.status_code == 201, first.text
    assert first.json() | {"sha256": None} == {
        "filename": "pathology.csv",
        "sha256": None,
        "rows": 21,
        "created": 21,
        "replaced": 0,
        "unchanged": 0,
        "readouts": ["tumour area in bone sections"],
    }
    # The same values again change nothing; the file the API writes imports unchanged.
    exported = client.get(f"/studies/{study['id']}/readouts/values", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.startswith("animal,arm,readout,site,value,unit,measured_on,note,value_id")
    again = _upload(client, study, exported.text)
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 21)

    # A different value for a stored one: 409 naming the line, unless replace=true.
    changed = "animal,readout,value\nc1,tumour area in bone sections,9.9\n"
    counts = row_counts(db_session, ReadoutValue, AuditEvent)
    assert_problem(_upload(client, study, changed), 409, "line 2: c1 already has 2.31")
    assert row_counts(db_session, ReadoutValue, AuditEvent) == counts
    replaced = _upload(client, study, changed, replace="true")
    assert replaced.json()["replaced"] == 1
    values = client.get(f"/studies/{study['id']}/readouts/values").json()["items"]
    c1 = next(v for v in values if v["animal"] == "c1")
    assert c1["value"] == 9.9
    events = client.get("/audit", params={"object_id": c1["id"]}).json()["items"]
    assert next(e for e in events if e["action"] == "update")["changes"]["value"] == [2.31, 9.9]


def test_compare_arms_against_r(client: TestClient, study: dict) -> None:
    readout = _readout(client, study)
    assert _upload(client, study, _area_csv()).status_code == 201
    url = f"/studies/{study['id']}/readouts/{readout['id']}/comparison"
    result = client.get(url).json()
    assert [a["arm"] for a in result["arms"]] == ["Isotype IgG1", "1D11 10 mg/kg", "1D11 30 mg/kg"]
    a, b = sorted(result["comparisons"], key=lambda c: c["treated"])
    assert (a["treated"], a["n_control"], a["n_treated"]) == ("1D11 10 mg/kg", 8, 7)
    # R: t.test(ta, c0, var.equal=FALSE)$p.value = 0.00622762627690657;
    # p.adjust(c(0.00622762627690657, 0.429468154920183), "holm")[1] = 0.0124552525538131
    assert_allclose(a["welch"]["p_value"], 0.00622762627690657, rtol=RTOL)
    assert_allclose(a["welch"]["p_adjusted"], 0.0124552525538131, rtol=RTOL)
    # R: wilcox.test(ta, c0, exact=TRUE): W = 6, p = 0.00932400932400932
    assert a["mann_whitney"]["statistic"] == 6
    assert_allclose(a["mann_whitney"]["p_value"], 0.00932400932400932, rtol=RTOL)
    assert_allclose(b["welch"]["p_value"], 0.429468154920183, rtol=RTOL)
    # Every animal has area > 0: 8/8 vs 7/7 positive, fisher.test(...)$p.value = 1
    assert (a["positive_control"], a["positive_treated"], a["fisher"]["p_value"]) == (8, 7, 1.0)
    # threshold 2 mm²: control 6/8, treated A 1/7 -> R fisher.test(matrix(c(1, 6, 6, 2), 2))
    # p = 0.0405594405594406
    high = client.get(url, params={"threshold": 2}).json()
    a2 = next(c for c in high["comparisons"] if c["treated"] == "1D11 10 mg/kg")
    assert (a2["positive_control"], a2["positive_treated"]) == (6, 1)
    assert_allclose(a2["fisher"]["p_value"], 0.0405594405594406, rtol=RTOL)
    table = client.get(url, params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    lines = table.text.strip().split("\r\n")
    assert lines[0].startswith("readout,site,unit,control,treated") and len(lines) == 3

    # Every readout at once; one with a single animal is skipped with the reason.
    _readout(client, study, name="metastatic bones at necropsy", unit=None, kind="count")
    one = "animal,readout,value\nc1,metastatic bones at necropsy,3\n"
    assert _upload(client, study, one).status_code == 201
    every = client.get(f"/studies/{study['id']}/readouts/comparisons").json()
    assert [r["readout"] for r in every["readouts"]] == ["tumour area in bone sections"]
    assert every["readouts"][0]["comparisons"] == result["comparisons"]
    (skipped,) = every["skipped"]
    assert skipped["readout"] == "metastatic bones at necropsy"
    assert "at least 2 per arm" in skipped["reason"]
    csv_all = client.get(f"/studies/{study['id']}/readouts/comparisons", params={"format": "csv"})
    assert csv_all.text == table.text


def test_correlation_with_final_flux(client: TestClient, study: dict) -> None:
    readout = _readout(client, study, site="whole_body")
    assert _upload(client, study, _area_csv()).status_code == 201
    flux = ["animal,day,site,total_flux_ps"]
    animals = [f"c{i}" for i in range(1, 9)] + ["a1", "a2"]
    flux += [f"{animal},28,whole_body,{f}" for animal, f in zip(animals, FLUX, strict=True)]
    # Before the readout date (day 28), and after it: neither is c1's final flux.
    flux += ["c1,14,whole_body,1.0e3", "c1,35,whole_body,1.0e9"]
    imported = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", "\n".join(flux).encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    url = f"/studies/{study['id']}/readouts/{readout['id']}/correlation"
    result = client.get(url).json()
    (site,) = result["sites"]
    # R: cor.test(x, y, method="spearman") with x the areas of c1..c8, a1, a2 and y = FLUX:
    # rho = 0.915151515151515, p = 0.000466722165549449 (AS 89, n = 10, no ties)
    assert site["site"] == "whole_body" and site["n"] == 10
    assert_allclose(
        [site["rho"], site["p_value"]], [0.915151515151515, 0.000466722165549449], rtol=RTOL
    )
    c1 = next(p for p in site["points"] if p["animal"] == "c1")
    assert (c1["day"], c1["total_flux_ps"]) == (28, 3.1e6)
    assert sorted(site["without_flux"]) == [
        "a3",
        "a4",
        "a5",
        "a6",
        "a7",
        "b1",
        "b2",
        "b3",
        "b4",
        "b5",
        "b6",
    ]
    table = client.get(url, params={"format": "csv"}).text.split("\r\n")
    assert table[0] == "readout,unit,site,n,rho,p_value,animals_without_flux,reason,method"
    png = client.get(f"/studies/{study['id']}/readouts/{readout['id']}/plots/correlation")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    svg = client.get(
        f"/studies/{study['id']}/readouts/{readout['id']}/plots/correlation",
        params={"format": "svg"},
    )
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_import_finds_the_readout_by_site_and_reads_decimal_commas(
    client: TestClient, study: dict
) -> None:
    left = _readout(client, study, site="left_hindlimb")
    right = _readout(client, study, site="right_hindlimb")
    ambiguous = _upload(client, study, "animal;readout;value\nc1;tumour area in bone sections;1\n")
    assert_problem(ambiguous, 422, "line 2: readout 'tumour area in bone sections' is defined at")
    wrong_site = "animal;readout;site;value\nc1;tumour area in bone sections;spine;1\n"
    assert_problem(_upload(client, study, wrong_site), 422, "has no site 'spine'")
    text = (
        "Ear tag;Readout;Site;Value [mm²]\n"
        "c1;Tumour area in bone sections;left hindlimb;2,5\n"
        "c1;tumour area in bone sections;right_hindlimb;0,75\n"
    )
    assert _upload(client, study, text).json()["created"] == 2
    values = client.get(f"/studies/{study['id']}/readouts/values").json()["items"]
    got = {(v["readout_id"], v["animal"]): v["value"] for v in values}
    assert got == {(left["id"], "c1"): 2.5, (right["id"], "c1"): 0.75}
    # A kind the stored values do not fit is refused.
    to_count = client.patch(
        f"/studies/{study['id']}/readouts/{right['id']}", json={"kind": "count"}
    )
    assert_problem(to_count, 422, "not count")
