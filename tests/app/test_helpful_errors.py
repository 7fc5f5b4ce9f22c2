"""Refusals that say how to fix the request: ids vs ear tags, a pasted 'Bearer ' prefix."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.app.factories import make_animal, make_control, make_study
from tests.app.problems import assert_problem, row_counts


def test_a_pasted_bearer_prefix_in_x_api_key_is_recognised(
    anonymous: TestClient, admin_key: str
) -> None:
    for value in (f"Bearer {admin_key}", f"bearer  {admin_key} ", f" {admin_key}"):
        response = anonymous.get("/me", headers={"X-API-Key": value})
        assert response.status_code == 200, (value, response.text)
    assert_problem(anonymous.get("/me", headers={"X-API-Key": "Bearer nope"}), 401)


def test_an_ear_tag_where_an_animal_id_is_expected_points_to_the_lookup(
    client: TestClient,
) -> None:
    study = make_study(client)
    control = make_control(client, study["id"])
    animal = make_animal(client, study["id"], control["id"], "3466")
    body = assert_problem(
        client.get(f"/studies/{study['id']}/animals/3466"),
        422,
        "animal_id: must be an id (a UUID",
        "'3466' looks like an ear tag",
        "GET /studies/{study_id}/animals?identifier=3466",
    )
    assert body["errors"][0]["field"] == "path.animal_id"
    found = client.get(f"/studies/{study['id']}/animals", params={"identifier": "3466"}).json()
    assert [a["id"] for a in found["items"]] == [animal["id"]]
    # Other ids say that names are not ids.
    assert_problem(
        client.get(f"/studies/{study['id']}/arms/Vehicle"),
        422,
        "arm_id: must be an id",
        "'Vehicle' is not one (names and labels are not ids)",
    )


def test_roi_geometry_errors_name_the_fields_not_python_internals(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    from tests.app.clicks import post_zip, url

    acquisition = post_zip(client, imaging_session, synthetic_zip).json()
    target = f"{url(imaging_session)}/{acquisition['id']}/rois"
    circle = {"type": "circle", "center_row": 400, "center_col": 300}
    for geometry, fragment in (
        (circle | {"radius": 50, "diameter": 100}, "'diameter' is not one of its fields"),
        (circle, "a circle takes center_row, center_col, radius; radius missing"),
        ({"type": "hexagon"}, "unknown ROI type 'hexagon'"),
    ):
        body = assert_problem(
            client.post(target, json={"site": "spine", "geometry": geometry}), 422, fragment
        )
        assert "__init__" not in body["detail"] and "argument" not in body["detail"]


def test_nul_characters_are_refused_on_both_databases(
    client: TestClient, db_session: Session
) -> None:
    from app.models import Study

    body = {
        "name": "BM\x00-2026",
        "cell_line": "MDA-MB-231",
        "injection_model": "intracardiac",
        "day0": "2026-07-01",
    }
    assert_problem(client.post("/studies", json=body), 422, "NUL character")
    nested = body | {"name": "BM-2026", "description": "ok", "iacuc_number": "A\x00"}
    assert_problem(client.post("/studies", json=nested), 422, "NUL character")
    assert_problem(client.get("/studies", params={"name_contains": "BM\x00"}), 422, "NUL")
    assert row_counts(db_session, Study) == (0,)


def test_dates_outside_any_study_are_refused_with_the_range(client: TestClient) -> None:
    for day0 in ("9999-12-31", "0015-01-01"):
        assert_problem(
            client.post(
                "/studies",
                json={
                    "name": f"S {day0}",
                    "cell_line": "4T1",
                    "injection_model": "intratibial",
                    "day0": day0,
                },
            ),
            422,
            "must lie between 1990-01-01 and 2100-12-31",
        )
    study = make_study(client)
    assert_problem(
        client.post(
            f"/studies/{study['id']}/sessions", json={"acquired_at": "9999-12-31T10:00:00+00:00"}
        ),
        422,
        "acquired_at: Value error, must lie between 1990-01-01 and 2100-12-31",
    )


def test_405_lists_every_allowed_method(client: TestClient) -> None:
    body = assert_problem(client.delete("/studies"), 405, "use GET, POST")
    response = client.delete("/studies")
    assert response.headers["allow"] == "GET, POST"
    assert body["title"] == "Method not allowed"


def test_security_headers_on_the_api_and_its_documentation(
    anonymous: TestClient, client: TestClient
) -> None:
    docs = anonymous.get("/docs")
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    created = client.post("/keys", json={"name": "PC", "role": "viewer"})
    assert created.status_code == 201, created.text
    for response in (docs, created, anonymous.get("/health")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert created.headers["cache-control"] == "no-store"  # it carries the new key


def test_a_floor_or_threshold_beyond_any_signal_is_refused_with_the_bound(
    client: TestClient,
) -> None:
    study = make_study(client)
    huge = 1.7976931348623157e308  # overflowed into a 500 before
    assert_problem(
        client.get(f"/studies/{study['id']}/summary", params={"floor": huge}),
        422,
        "floor: Input should be less than or equal to 1000000000000000",
    )
    control = make_control(client, study["id"])
    for body in ({"floor": huge}, {"threshold": {"value": huge}}):
        assert_problem(
            client.post(
                f"/studies/{study['id']}/comparisons",
                json={"treatment_arm_id": control["id"]} | body,
            ),
            422,
            "less than or equal to 1000000000000000",
        )
