"""Importing measurement CSVs into a study and reading the per-animal series back."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Acquisition, Blob, ImagingSession, Measurement, Roi
from app.storage import LocalBlobStore
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts

TIDY = (
    "animal,day,site,total_flux_ps\n"
    "m1,0,whole_body,1.0e5\n"
    "m1,7,whole_body,1.0e6\n"
    "m1,7,spine,2.5e5\n"
    "m2,0,whole_body,2.0e5\n"
    "m2,7,whole_body,4.0e6\n"
    "t1,0,whole_body,1.5e5\n"
    "t1,7,whole_body,3.0e5\n"
)


@pytest.fixture
def study(client: TestClient) -> dict:
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    for animal in ("m1", "m2"):
        make_animal(client, study["id"], control["id"], animal)
    make_animal(client, study["id"], treatment["id"], "t1")
    return study


def upload(
    client: TestClient, study: dict, content: str | bytes, name: str = "flux.csv", **form: str
):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": (name, data, "text/csv")},
        data=form,
    )


def test_import_then_series(client: TestClient, study: dict, app, db_session: Session) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, study, TIDY)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["rows"] == 7 and result["animals"] == 3 and result["days"] == [0, 7]
    assert result["sha256"] == hashlib.sha256(TIDY.encode()).hexdigest()
    # The file is kept unchanged, content-addressed, read-only.
    store: LocalBlobStore = app.state.blob_store
    assert store.path_for(result["sha256"]).read_bytes() == TIDY.encode()
    assert db_session.get(Blob, result["sha256"]).size_bytes == len(TIDY)

    series = client.get(f"/studies/{study['id']}/series", params={"site": "whole_body"}).json()
    assert series["unit"] == "p/s"
    got = {(p["animal"], p["day"]): p["value"] for p in series["points"]}
    assert got == {
        ("m1", 0): 1.0e5,
        ("m1", 7): 1.0e6,
        ("m2", 0): 2.0e5,
        ("m2", 7): 4.0e6,
        ("t1", 0): 1.5e5,
        ("t1", 7): 3.0e5,
    }
    assert {p["arm"] for p in series["points"]} == {"Isotype IgG1", "1D11 10 mg/kg"}
    spine = client.get(f"/studies/{study['id']}/series", params={"site": "spine"}).json()
    assert [(p["animal"], p["value"]) for p in spine["points"]] == [("m1", 2.5e5)]


def test_series_as_csv(client: TestClient, study: dict) -> None:
    upload(client, study, TIDY)
    response = client.get(f"/studies/{study['id']}/series", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].startswith("animal,arm,day,site,total_flux_ps [p/s]")
    assert len(lines) == 1 + 6


def test_same_file_twice_changes_nothing(
    client: TestClient, study: dict, db_session: Session
) -> None:
    assert upload(client, study, TIDY).status_code == 201
    before = row_counts(db_session, Measurement, Roi, ImagingSession, Acquisition, Blob)
    again = upload(client, study, TIDY, name="renamed.csv")
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert row_counts(db_session, Measurement, Roi, ImagingSession, Acquisition, Blob) == before


def test_dates_semicolons_and_decimal_commas(client: TestClient, study: dict) -> None:
    content = "Mouse;Date;Site;Total Flux [p/s]\nm1;2026-07-04;Whole body;2,5E+05\n"
    response = upload(client, study, content.encode("cp1252"))
    assert response.status_code == 201, response.text
    point = client.get(f"/studies/{study['id']}/series").json()["points"][0]
    assert (point["day"], point["value"]) == (3, 2.5e5)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("animal,day,site,total_flux_ps\nm9,0,whole_body,1e5\n", ["not in this study", "m9"]),
        ("animal,day,site,total_flux_ps\nm1,0,femur,1e5\n", ["line 2", "femur", "left_hindlimb"]),
        ("animal,day,site,total_flux_ps\nm1,0,spine,lots\n", ["line 2", "not a number"]),
        ("animal,day,site,total_flux_ps\nm1,-3,spine,1e5\n", ["before the study's day 0"]),
        ("animal,day,site,total_flux_ps\nm1,2.5,spine,1e5\n", ["whole number"]),
        ("animal,date,day,site,total_flux_ps\nm1,2026-07-05,3,spine,1e5\n", ["day 4", "says 3"]),
        ("mouse,when,flux\nm1,0,1e5\n", ["missing column", "site", "day or date"]),
        ("animal,day,site,total_flux_ps\n", ["no data rows"]),
        ("", ["empty"]),
        # A spreadsheet (zip) sent as CSV: the one text decoder (imaging.clickinfo) refuses it.
        (b"PK\x03\x04\x14\x00\x00\x00 xl/workbook.xml", ["NUL bytes", "not a text file"]),
    ],
)
def test_bad_files_leave_nothing(
    client: TestClient,
    study: dict,
    db_session: Session,
    app,
    content: str | bytes,
    fragments: list[str],
) -> None:  # type: ignore[no-untyped-def]
    tables = (Measurement, Roi, ImagingSession, Acquisition, Blob)
    before = row_counts(db_session, *tables)
    assert_problem(upload(client, study, content), 422, *fragments)
    assert row_counts(db_session, *tables) == before
    store: LocalBlobStore = app.state.blob_store
    stored = [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []
    assert stored == []


def test_values_after_an_animals_end_are_rejected(client: TestClient, study: dict) -> None:
    animals = client.get(f"/studies/{study['id']}/animals").json()["items"]
    m1 = next(a for a in animals if a["identifier"] == "m1")
    client.patch(
        f"/studies/{study['id']}/animals/{m1['id']}",
        json={"end": {"date": "2026-07-05", "reason": "humane_endpoint"}},
    )
    assert_problem(upload(client, study, TIDY), 422, "m1 ended on 2026-07-05")


def test_viewer_cannot_import_and_other_lab_cannot_see(
    client: TestClient, other_lab: TestClient, anonymous: TestClient, study: dict
) -> None:
    key = client.post("/keys", json={"name": "PI", "role": "viewer"}).json()["key"]
    response = anonymous.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("f.csv", TIDY.encode(), "text/csv")},
        headers={"X-API-Key": key},
    )
    assert_problem(response, 403)
    upload(client, study, TIDY)
    assert_problem(other_lab.get(f"/studies/{study['id']}/series"), 404)
    assert_problem(upload(other_lab, study, TIDY), 404)


def test_flags_are_kept(client: TestClient, study: dict, db_session: Session) -> None:
    content = "animal,day,site,total_flux_ps,flags\nm1,0,whole_body,6e9,saturated;low_signal\n"
    upload(client, study, content)
    point = client.get(f"/studies/{study['id']}/series").json()["points"][0]
    assert point["flags"] == ["saturated", "low_signal"]
    roi = db_session.scalar(select(Roi))
    assert roi.source == "imported" and roi.geometry == {}


LIVING_IMAGE = (
    "Image Number,ROI,Total Flux [p/s],Avg Radiance [p/s/cm\xb2/sr],Stdev Radiance,"
    "Min Radiance,Max Radiance,Animal Number,View\r\n"
    "DG20260708101500,ROI 1,2.370e+05,3.5e+03,1.2e+03,-3.6e+03,4.1e+04,m1,Dorsal\r\n"
    "DG20260708101500,m1 spine,9.330e+06,1.4e+05,2.2e+05,1.0e+02,2.1e+06,m1,Dorsal\r\n"
    "DG20260715093000,m2 left femur,7.892e+06,1.1e+05,2.0e+05,1.0e+02,1.9e+06,"
    '"m1, m2, t1",Ventral\r\n'
)


def test_living_image_export(client: TestClient, study: dict) -> None:
    response = upload(
        client, study, LIVING_IMAGE.encode("cp1252"), name="li.csv", format="living_image"
    )
    assert response.status_code == 201, response.text
    assert response.json()["days"] == [7, 14]
    # "ROI 1" names no site: kept as unassigned (f178f6b), no longer counted as whole-body flux.
    assert response.json()["unassigned_sites"] == 1
    base = f"/studies/{study['id']}/series"
    assert client.get(base).json()["points"] == []
    unassigned = client.get(base, params={"site": "unassigned"}).json()["points"]
    assert [(p["animal"], p["day"], p["value"]) for p in unassigned] == [("m1", 7, 2.370e5)]
    spine = client.get(base, params={"site": "spine"}).json()["points"]
    assert [(p["animal"], p["day"], p["value"]) for p in spine] == [("m1", 7, 9.330e6)]
    femur = client.get(base, params={"site": "left_hindlimb"}).json()["points"]
    assert [(p["animal"], p["day"], p["value"]) for p in femur] == [("m2", 14, 7.892e6)]


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        ("IMG_0001,ROI 1,1e5,1,1,1,1,m1,Dorsal", ["imaging date", "IMG_0001"]),
        ('DG20260708101500,ROI 3,1e5,1,1,1,1,"m1, m2",Dorsal', ["which animal", "ROI 3"]),
    ],
)
def test_living_image_rows_that_cannot_be_placed(
    client: TestClient, study: dict, db_session: Session, row: str, fragments: list[str]
) -> None:
    before = row_counts(db_session, Measurement, Blob)
    content = LIVING_IMAGE.splitlines()[0] + "\r\n" + row + "\r\n"
    assert_problem(upload(client, study, content, format="living_image"), 422, *fragments)
    assert row_counts(db_session, Measurement, Blob) == before


def test_duplicate_rows_and_formula_cells(client: TestClient, study: dict) -> None:
    twice = "animal,day,site,total_flux_ps\nm1,0,spine,1e5\nm1,0,spine,2e5\n"
    assert_problem(upload(client, study, twice), 422, "lines 2 and 3")
    control = client.get(f"/studies/{study['id']}/arms").json()["items"][0]
    assert_problem(
        client.post(
            f"/studies/{study['id']}/animals", json={"identifier": "a,b", "arm_id": control["id"]}
        ),
        422,
        "commas",
    )
    client.post(
        f"/studies/{study['id']}/animals",
        json={"identifier": "=HYPERLINK(1)", "arm_id": control["id"]},
    )
    upload(client, study, 'animal,day,site,total_flux_ps\n"=HYPERLINK(1)",0,spine,1e5\n')
    exported = client.get(
        f"/studies/{study['id']}/series", params={"site": "spine", "format": "csv"}
    ).text
    assert "'=HYPERLINK(1)" in exported and "\n=HYPERLINK" not in exported
