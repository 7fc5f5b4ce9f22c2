"""Refusals that say how to fix the request: ids vs ear tags, a pasted 'Bearer ' prefix."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.app.factories import make_animal, make_control, make_study
from tests.app.problems import assert_problem


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
