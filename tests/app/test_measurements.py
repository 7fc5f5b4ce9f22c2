"""The one shape of a measurement: the same keys, in the same order, wherever the API shows
one (an acquisition's measurements, the study's measurement list), and the CSV export's
column order."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from imaging import read_living_image_measurements
from tests.app.clicks import ANIMALS, FLUXES, post_zip

# Pinned on purpose: a client reads these names. Change them only with a note to API users.
MEASUREMENT_KEYS = [
    "measurement_id",
    "roi_id",
    "acquisition_id",
    "click_number",
    "view",
    "day",
    "animal",
    "arm",
    "site",
    "label",
    "roi_source",
    "total_flux_ps",
    "radiance_mean",
    "radiance_std",
    "radiance_min",
    "radiance_max",
    "area_cm2",
    "saturated_pixels",
    "units",
    "flags",
    "method",
    "imaging_version",
    "is_current",
    "created_at",
    # issue 13: where the number comes from and what it can be trusted to
    "calibration_source",
    "raw_total_flux_ps",
    "detection_limit_ps",
    "minutes_since_injection",
]
# Living Image's ROI-measurement export names first (its users' tools read them), then ours.
CSV_COLUMNS = [
    "Image Number",
    "ROI",
    "Total Flux [p/s]",
    "Avg Radiance [p/s/cm²/sr]",
    "Stdev Radiance",
    "Min Radiance",
    "Max Radiance",
    "Animal Number",
    "Arm",
    "Site",
    "Day",
    "View",
    "Flags",
    "Method",
    "Measurement ID",
]


def test_one_measurement_shape_in_acquisitions_and_the_list(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    acquisition = post_zip(client, imaging_session, synthetic_zip).json()
    listed = client.get(
        f"/studies/{imaging_session['study_id']}/measurements", params={"limit": 500}
    ).json()["items"]
    assert acquisition["measurements"], "the synthetic click has ROIs"
    for shown in (acquisition["measurements"], listed):
        assert [list(m) for m in shown] == [MEASUREMENT_KEYS] * len(shown)
    by_id = {m["measurement_id"]: m for m in listed}
    for m in acquisition["measurements"]:
        assert by_id[m["measurement_id"]] == m
    spine = next(m for m in listed if m["site"] == "spine" and m["animal"] == "3466")
    assert (spine["day"], spine["arm"], spine["view"], spine["is_current"]) == (
        14,
        "Isotype IgG1",
        "dorsal",
        True,
    )


def test_measurement_csv_columns_in_order(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    acquisition = post_zip(client, imaging_session, synthetic_zip).json()
    exported = client.get(
        f"/studies/{imaging_session['study_id']}/measurements", params={"format": "csv"}
    )
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == CSV_COLUMNS
    first = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert first["Image Number"] == acquisition["click_number"]
    assert first["Measurement ID"] in {m["measurement_id"] for m in acquisition["measurements"]}


def test_csv_convention_crlf_and_numbers_that_read_back_exactly(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    # RFC 4180 line ends, and every number the shortest text that parses to the same float
    # as the JSON value (no rounding to 6 digits on the way to a spreadsheet).
    post_zip(client, imaging_session, synthetic_zip)
    study = imaging_session["study_id"]
    listed = client.get(f"/studies/{study}/measurements", params={"limit": 500}).json()["items"]
    flux = {m["measurement_id"]: m["total_flux_ps"] for m in listed}
    measurements = client.get(f"/studies/{study}/measurements", params={"format": "csv"})
    series = client.get(f"/studies/{study}/series", params={"site": "spine", "format": "csv"})
    for response in (measurements, series):
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.text.endswith("\r\n") and "\n" not in response.text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(measurements.text)))
    assert {r["Measurement ID"]: float(r["Total Flux [p/s]"]) for r in rows} == flux
    points = list(csv.DictReader(io.StringIO(series.text)))
    assert len(points) == 5
    for point in points:
        assert float(point["total_flux_ps [p/s]"]) == flux[point["measurement_id"]]


def test_csv_routes_are_documented_as_text_csv(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/studies/{study_id}/measurements", "/studies/{study_id}/series"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}, path
        assert content["text/csv"]["schema"] == {"type": "string"}, path
        assert content["application/json"]["schema"]["$ref"], path


def test_measurement_list_and_living_image_csv(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    post_zip(client, imaging_session, synthetic_zip)
    base = f"/studies/{imaging_session['study_id']}/measurements"
    page = client.get(base, params={"site": "spine", "limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert page["items"][0]["click_number"] == "SYN20260715101500"
    assert page["items"][0]["day"] == 14
    animals = client.get(f"/studies/{imaging_session['study_id']}/animals").json()["items"]
    first = next(a for a in animals if a["identifier"] == "3466")
    mine = client.get(base, params={"animal_id": first["id"]}).json()
    assert {m["animal"] for m in mine["items"]} == {"3466"}
    assert client.get(base, params={"day_from": 20}).json()["total"] == 0
    assert client.get(base, params={"flag": "saturated"}).json()["total"] == 0
    exported = client.get(base, params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    # Living Image's own column names first, so its users' tools read the file.
    rows = read_living_image_measurements(exported.content, name="export.csv")
    # five spines and (issue 13) the background square that gives their detection limits
    assert sorted(r.labels["Site"] for r in rows) == ["background"] + ["spine"] * 5
    spine = {
        r.labels["Animal Number"]: r.total_flux_ps for r in rows if r.labels["Site"] == "spine"
    }
    for animal, flux in zip(ANIMALS, FLUXES, strict=True):
        assert_allclose(spine[animal], flux, rtol=0.02)
