"""Drawing, correcting and retiring ROIs, and requantifying: every change is measured at once
and the previous version stays as history."""

from __future__ import annotations

import math
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Acquisition, Measurement, Roi
from tests.app.clicks import post_zip, url
from tests.app.jobs import succeeded
from tests.app.problems import assert_problem, row_counts


def test_edit_add_and_retire_rois_keep_history(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, db_session: Session
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}/rois"
    spine = next(
        m for m in created["measurements"] if m["animal"] == "3467" and m["site"] == "spine"
    )
    # Halve the radius of 3467's spine ROI: the source (σ ≈ 0.2 cm) is then only partly inside.
    roi = db_session.get(Roi, uuid.UUID(spine["roi_id"]))
    smaller = dict(roi.geometry) | {"radius": roi.geometry["radius"] / 4}
    edited = client.patch(
        f"{base}/{spine['roi_id']}", json={"geometry": smaller, "reason": "tighter ROI"}
    )
    assert edited.status_code == 200, edited.text
    now = next(
        m for m in edited.json()["measurements"] if m["animal"] == "3467" and m["site"] == "spine"
    )
    assert now["roi_id"] != spine["roi_id"]
    assert now["total_flux_ps"] < 0.9 * spine["total_flux_ps"]
    # The old ROI and measurement are history, not gone.
    history = client.get(
        f"/studies/{imaging_session['study_id']}/measurements",
        params={"site": "spine", "include_history": True},
    ).json()["items"]
    assert {m["measurement_id"] for m in history} >= {
        spine["measurement_id"],
        now["measurement_id"],
    }
    assert (
        next(m for m in history if m["measurement_id"] == spine["measurement_id"])["is_current"]
        is False
    )
    new_roi = db_session.get(Roi, uuid.UUID(now["roi_id"]))
    assert (
        new_roi.supersedes_id == uuid.UUID(spine["roi_id"])
        and new_roi.change_reason == "tighter ROI"
    )
    assert_problem(
        client.patch(f"{base}/{spine['roi_id']}", json={"reason": "again"}), 422, "superseded"
    )
    # A new ROI on a leg, measured at once.
    added = client.post(
        base,
        json={
            "animal": "3466",
            "site": "left_hindlimb",
            "reason": "femur",
            "geometry": {"type": "circle", "center_row": 1500, "center_col": 200, "radius": 60},
        },
    )
    assert added.status_code == 201, added.text
    assert any(
        m["site"] == "left_hindlimb" and m["animal"] == "3466" for m in added.json()["measurements"]
    )
    assert_problem(
        client.post(
            base,
            json={
                "animal": "9999",
                "site": "spine",
                "geometry": {"type": "circle", "center_row": 1, "center_col": 1, "radius": 5},
            },
        ),
        422,
        "not in this image",
    )
    assert_problem(
        client.post(base, json={"site": "spine", "geometry": {"type": "blob"}}), 422, "geometry"
    )
    retired = client.post(f"{base}/{now['roi_id']}/retire", json={"reason": "wrong mouse"})
    assert not any(m["roi_id"] == now["roi_id"] for m in retired.json()["measurements"])
    spine_series = client.get(
        f"/studies/{imaging_session['study_id']}/series", params={"site": "spine"}
    ).json()
    assert "3467" not in {p["animal"] for p in spine_series["points"]}


def test_requantify_keeps_history(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    result = succeeded(
        client,
        client.post(
            f"/studies/{imaging_session['study_id']}/requantify",
            headers={"X-Change-Reason": "imaging 0.1.1"},
        ),
    )
    assert result == {
        "acquisitions": 1,
        "measurements": len(created["measurements"]),
        "changed": 0,
    }
    after = client.get(f"{url(imaging_session)}/{created['id']}").json()["measurements"]
    assert [m["total_flux_ps"] for m in after] == [
        m["total_flux_ps"] for m in created["measurements"]
    ]
    assert {m["measurement_id"] for m in after}.isdisjoint(
        {m["measurement_id"] for m in created["measurements"]}
    )


@pytest.mark.parametrize(
    ("geometry", "fragment"),
    [
        ({"type": "circle", "center_row": 10, "center_col": 10, "radius": -5}, "radius"),
        ({"type": "circle", "center_row": "NaN", "center_col": 10, "radius": 5}, "finite"),
        ({"type": "polygon", "vertices": [[0, 0], [10, 0]]}, "3 to 1000 vertices"),
        ({"type": "polygon", "vertices": [[0, 0, 1], [10, 0, 1], [0, 10, 1]]}, "[row, col]"),
        ({"type": "polygon", "vertices": [[0, 0], [400000, 0], [0, 400000]]}, "between"),
        ({"type": "union", "parts": []}, "1 to 20 parts"),
        ({"type": "union", "parts": "ab"}, "1 to 20 parts"),
        ({"type": "union", "parts": [{"type": "union", "parts": []}]}, "cannot be unions"),
        (
            {"type": "circle", "center_row": 1, "center_col": 1, "radius": 5, "angle_deg": 1e308},
            "angle",
        ),
        ({"type": "circle", "center_row": 1, "center_col": 1}, "missing"),
    ],
)
def test_hostile_roi_geometry_is_422(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    db_session: Session,
    geometry: dict,
    fragment: str,
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    before = row_counts(db_session, Roi, Measurement)
    response = client.post(
        f"{url(imaging_session)}/{created['id']}/rois", json={"site": "spine", "geometry": geometry}
    )
    body = assert_problem(response, 422, "geometry")
    assert fragment in body["detail"]
    assert row_counts(db_session, Roi, Measurement) == before


def test_an_roi_reaching_far_past_the_image_is_measured_on_the_image(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}/rois"
    # The largest shapes the API accepts: weights are computed for image pixels only.
    everywhere = {
        "type": "polygon",
        "vertices": [[-4096, -4096], [-4096, 8192], [8192, 8192], [8192, -4096]],
    }
    leg = {"type": "circle", "center_row": 1500, "center_col": 200, "radius": 60}
    tilted = {
        "type": "rectangle",
        "center_row": 0,
        "center_col": 0,
        "width": 4096,
        "height": 4096,
        "angle_deg": 45,
    }
    areas = {}
    for site, geometry in [
        ("whole_body", everywhere),
        ("left_hindlimb", leg),
        ("thorax", tilted),
        ("spine", {"type": "union", "parts": [leg, everywhere]}),
    ]:
        added = client.post(base, json={"site": site, "geometry": geometry, "reason": "test"})
        assert added.status_code == 201, added.text
        (measured,) = [
            m for m in added.json()["measurements"] if m["site"] == site and m["animal"] is None
        ]
        areas[site] = measured["area_cm2"]
        assert ("partly_off_image" in measured["flags"]) == (site != "left_hindlimb"), site
    # Independent of the geometry code: the polygon and the union cover the whole field of view
    # (the synthetic camera's 22.4 cm square, 1920 sensor pixels across), the circle π r² of
    # it (up to counting whole pixels at binning 8).
    assert areas["whole_body"] == pytest.approx(22.4**2, rel=1e-9)
    assert areas["spine"] == pytest.approx(areas["whole_body"], rel=1e-12)
    assert areas["left_hindlimb"] == pytest.approx(math.pi * (60 * 22.4 / 1920) ** 2, rel=0.03)


def test_one_current_roi_per_animal_and_site(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    circle = {"type": "circle", "center_row": 800, "center_col": 200, "radius": 50}
    response = client.post(
        f"{url(imaging_session)}/{created['id']}/rois",
        json={"animal": "3466", "site": "spine", "geometry": circle},
    )
    assert_problem(response, 409, "already has a current spine ROI")
    extra = client.post(
        f"{url(imaging_session)}/{created['id']}/rois",
        json={"animal": "3466", "site": "custom", "geometry": circle},
    )
    assert extra.status_code == 201


def test_imported_rois_cannot_be_remeasured_and_bad_queries_are_422(
    client: TestClient, imaging_session: dict, db_session: Session
) -> None:
    study_id = imaging_session["study_id"]
    client.post(
        f"/studies/{study_id}/measurements/import",
        files={"file": ("f.csv", b"animal,day,site,total_flux_ps\n3466,0,spine,1e5\n", "text/csv")},
    )
    roi = db_session.scalar(select(Roi).where(Roi.source == "imported"))
    acquisition = db_session.get(Acquisition, roi.acquisition_id)
    session_url = f"/studies/{study_id}/sessions/{acquisition.session_id}"
    target = f"{session_url}/acquisitions/{acquisition.id}/rois/{roi.id}"
    assert_problem(
        client.patch(target, json={"site": "skull_mandible", "reason": "wrong site"}),
        422,
        "imported",
    )
    for path, params in (
        (f"/studies/{study_id}/measurements", {"day_from": 10**9}),
        (f"/studies/{study_id}/sessions", {"day_to": -(10**7)}),
        (f"/studies/{study_id}/measurements", {"offset": 10**20}),
    ):
        assert_problem(client.get(path, params=params), 422)
