"""Arms: controls and treatments, each treatment compared with a control of its own study."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Arm, AuditEvent
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts


@pytest.fixture
def study(client: TestClient) -> dict:
    return make_study(client)


def test_control_and_treatment(client: TestClient, study: dict) -> None:
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    assert treatment["control_arm_id"] == control["id"]
    assert treatment["dose"] == 10 and treatment["dose_unit"] == "mg/kg"
    listing = client.get(f"/studies/{study['id']}/arms").json()
    assert [a["role"] for a in listing["items"]] == ["control", "treatment"]
    only_treatments = client.get(f"/studies/{study['id']}/arms", params={"role": "treatment"})
    assert [a["id"] for a in only_treatments.json()["items"]] == [treatment["id"]]
    antibodies = client.get(
        f"/studies/{study['id']}/arms", params={"agent_class": "neutralizing_antibody"}
    )
    assert antibodies.json()["total"] == 1


def test_treatment_needs_a_control(client: TestClient, study: dict, db_session: Session) -> None:
    before = row_counts(db_session, Arm, AuditEvent)
    body = {"name": "LY2109761", "role": "treatment", "agent_class": "inhibitor"}
    assert_problem(client.post(f"/studies/{study['id']}/arms", json=body), 422, "control_arm_id")
    assert row_counts(db_session, Arm, AuditEvent) == before


def test_control_in_another_study_is_rejected(
    client: TestClient, study: dict, db_session: Session
) -> None:
    other_study = make_study(client, name="BM-02")
    foreign_control = make_control(client, other_study["id"])
    before = row_counts(db_session, Arm)
    body = {
        "name": "LY2109761 50 mg/kg",
        "role": "treatment",
        "agent_class": "inhibitor",
        "control_arm_id": foreign_control["id"],
    }
    assert_problem(
        client.post(f"/studies/{study['id']}/arms", json=body), 422, "not an arm of this study"
    )
    body["control_arm_id"] = str(uuid.uuid4())
    assert_problem(client.post(f"/studies/{study['id']}/arms", json=body), 422)
    assert row_counts(db_session, Arm) == before


def test_control_must_have_control_role(client: TestClient, study: dict) -> None:
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    body = {
        "name": "combo",
        "role": "treatment",
        "agent_class": "other",
        "control_arm_id": treatment["id"],
    }
    assert_problem(client.post(f"/studies/{study['id']}/arms", json=body), 422, "treatment arm")


@pytest.mark.parametrize(
    ("role", "agent_class"),
    [("control", "inhibitor"), ("control", "neutralizing_antibody"), ("treatment", "vehicle")],
)
def test_agent_class_must_fit_role(
    client: TestClient, study: dict, role: str, agent_class: str
) -> None:
    control = make_control(client, study["id"])
    body = {"name": "x", "role": role, "agent_class": agent_class}
    if role == "treatment":
        body["control_arm_id"] = control["id"]
    assert_problem(
        client.post(f"/studies/{study['id']}/arms", json=body), 422, "does not fit", "allowed"
    )


def test_dose_needs_unit_and_is_not_negative(client: TestClient, study: dict) -> None:
    assert_problem(
        client.post(
            f"/studies/{study['id']}/arms",
            json={"name": "v", "role": "control", "agent_class": "vehicle", "dose": 5},
        ),
        422,
        "dose_unit",
    )
    assert_problem(
        client.post(
            f"/studies/{study['id']}/arms",
            json={
                "name": "v",
                "role": "control",
                "agent_class": "vehicle",
                "dose": -1,
                "dose_unit": "mg/kg",
            },
        ),
        422,
        "dose",
    )


def test_control_arm_cannot_name_a_control(client: TestClient, study: dict) -> None:
    control = make_control(client, study["id"])
    body = {
        "name": "Vehicle",
        "role": "control",
        "agent_class": "vehicle",
        "control_arm_id": control["id"],
    }
    assert_problem(
        client.post(f"/studies/{study['id']}/arms", json=body), 422, "leave control_arm_id empty"
    )


def test_update_keeps_arms_consistent(client: TestClient, study: dict) -> None:
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    base = f"/studies/{study['id']}/arms"
    assert_problem(
        client.patch(
            f"{base}/{control['id']}",
            json={"role": "treatment", "agent_class": "inhibitor", "control_arm_id": control["id"]},
        ),
        422,
        "own control",
    )
    vehicle = make_control(client, study["id"], name="Vehicle", agent_class="vehicle")
    assert_problem(
        client.patch(
            f"{base}/{control['id']}",
            json={"role": "treatment", "agent_class": "inhibitor", "control_arm_id": vehicle["id"]},
        ),
        422,
        "is the control of",
    )
    moved = client.patch(f"{base}/{treatment['id']}", json={"control_arm_id": vehicle["id"]})
    assert moved.status_code == 200 and moved.json()["control_arm_id"] == vehicle["id"]
    assert_problem(
        client.patch(f"{base}/{treatment['id']}", json={"name": "Vehicle"}),
        409,
        "already has an arm",
    )


def test_duplicate_arm_name_conflicts(client: TestClient, study: dict) -> None:
    make_control(client, study["id"])
    assert_problem(
        client.post(
            f"/studies/{study['id']}/arms",
            json={"name": "Isotype IgG1", "role": "control", "agent_class": "isotype_control"},
        ),
        409,
        "Isotype IgG1",
    )


def test_other_labs_arms_are_invisible(
    client: TestClient, other_lab: TestClient, study: dict
) -> None:
    control = make_control(client, study["id"])
    make_animal(client, study["id"], control["id"], "3466")
    assert_problem(other_lab.get(f"/studies/{study['id']}/arms"), 404)
    assert_problem(other_lab.get(f"/studies/{study['id']}/arms/{control['id']}"), 404)
    # Lab B's own study cannot borrow lab A's arm as its control.
    theirs = make_study(other_lab, name="B-01")
    body = {
        "name": "t",
        "role": "treatment",
        "agent_class": "inhibitor",
        "control_arm_id": control["id"],
    }
    assert_problem(other_lab.post(f"/studies/{theirs['id']}/arms", json=body), 422)


def test_arm_of_another_study_is_not_found_under_this_one(client: TestClient, study: dict) -> None:
    other_study = make_study(client, name="BM-02")
    control = make_control(client, other_study["id"])
    assert_problem(client.get(f"/studies/{study['id']}/arms/{control['id']}"), 404, "No arm")


def test_archive_arm(client: TestClient, study: dict) -> None:
    control = make_control(client, study["id"])
    response = client.post(f"/studies/{study['id']}/arms/{control['id']}/archive")
    assert response.status_code == 200 and response.json()["archived_at"]
    assert client.get(f"/studies/{study['id']}/arms").json()["total"] == 0
