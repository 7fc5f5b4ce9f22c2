"""Animals: unique ear tags per study, arms of the same study, end records after day 0."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Animal, AuditEvent
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts


@pytest.fixture
def study(client: TestClient) -> dict:
    return make_study(client)


@pytest.fixture
def arms(client: TestClient, study: dict) -> tuple[dict, dict]:
    control = make_control(client, study["id"])
    return control, make_treatment(client, study["id"], control["id"])


def test_create_list_filter(client: TestClient, study: dict, arms: tuple[dict, dict]) -> None:
    control, treatment = arms
    for ident in ("3466", "3467"):
        make_animal(client, study["id"], control["id"], ident, cage="C1")
    make_animal(client, study["id"], treatment["id"], "3468", cage="C2", sex="male")
    base = f"/studies/{study['id']}/animals"
    everything = client.get(base).json()
    assert [a["identifier"] for a in everything["items"]] == ["3466", "3467", "3468"]
    assert client.get(base, params={"arm_id": treatment["id"]}).json()["total"] == 1
    assert client.get(base, params={"cage": "C1"}).json()["total"] == 2
    assert client.get(base, params={"sex": "male"}).json()["total"] == 1


def test_end_record_roundtrip(client: TestClient, study: dict, arms: tuple[dict, dict]) -> None:
    animal = make_animal(client, study["id"], arms[0]["id"], "3466")
    assert animal["end"] is None
    url = f"/studies/{study['id']}/animals/{animal['id']}"
    end = {"date": "2026-07-29", "reason": "humane_endpoint", "note": "hind-limb paralysis"}
    response = client.patch(url, json={"end": end}, headers={"X-Change-Reason": "vet report"})
    assert response.status_code == 200, response.text
    assert response.json()["end"] == end
    base = f"/studies/{study['id']}/animals"
    assert client.get(base, params={"ended": True}).json()["total"] == 1
    assert client.get(base, params={"ended": False}).json()["total"] == 0
    cleared = client.patch(url, json={"end": None}).json()
    assert cleared["end"] is None


def test_end_before_day0_rejected(
    client: TestClient, study: dict, arms: tuple[dict, dict], db_session: Session
) -> None:
    before = row_counts(db_session, Animal, AuditEvent)
    body = {
        "identifier": "3466",
        "arm_id": arms[0]["id"],
        "end": {"date": "2026-06-30", "reason": "death"},
    }
    assert_problem(
        client.post(f"/studies/{study['id']}/animals", json=body), 422, "before the study's day 0"
    )
    assert row_counts(db_session, Animal, AuditEvent) == before
    animal = make_animal(client, study["id"], arms[0]["id"], "3466")
    assert_problem(
        client.patch(
            f"/studies/{study['id']}/animals/{animal['id']}",
            json={"end": {"date": "2026-01-01", "reason": "death"}},
        ),
        422,
        "day 0",
    )
    stored = db_session.scalar(select(Animal).where(Animal.identifier == "3466"))
    db_session.refresh(stored)
    assert stored.end_date is None


def test_invalid_end_reason(client: TestClient, study: dict, arms: tuple[dict, dict]) -> None:
    body = {
        "identifier": "1",
        "arm_id": arms[0]["id"],
        "end": {"date": "2026-08-01", "reason": "sacrificed"},
    }
    response = assert_problem(client.post(f"/studies/{study['id']}/animals", json=body), 422)
    assert response["errors"][0]["field"] == "end.reason"
    assert "humane_endpoint" in response["errors"][0]["message"]


def test_duplicate_identifier(
    client: TestClient, study: dict, arms: tuple[dict, dict], db_session: Session
) -> None:
    make_animal(client, study["id"], arms[0]["id"], "3466")
    before = row_counts(db_session, Animal)
    assert_problem(
        client.post(
            f"/studies/{study['id']}/animals", json={"identifier": "3466", "arm_id": arms[1]["id"]}
        ),
        409,
        "3466",
    )
    assert row_counts(db_session, Animal) == before
    # The same ear tag in another study is fine.
    other = make_study(client, name="BM-02")
    control = make_control(client, other["id"])
    make_animal(client, other["id"], control["id"], "3466")


def test_arm_of_another_study_rejected(
    client: TestClient, study: dict, arms: tuple[dict, dict]
) -> None:
    other = make_study(client, name="BM-02")
    foreign = make_control(client, other["id"])
    for arm_id in (foreign["id"], str(uuid.uuid4())):
        assert_problem(
            client.post(
                f"/studies/{study['id']}/animals", json={"identifier": "9", "arm_id": arm_id}
            ),
            422,
            "not an arm of this study",
        )
    animal = make_animal(client, study["id"], arms[0]["id"], "3466")
    assert_problem(
        client.patch(
            f"/studies/{study['id']}/animals/{animal['id']}", json={"arm_id": foreign["id"]}
        ),
        422,
    )


def test_move_between_arms_is_audited(
    client: TestClient, study: dict, arms: tuple[dict, dict], db_session: Session
) -> None:
    control, treatment = arms
    animal = make_animal(client, study["id"], control["id"], "3466")
    response = client.patch(
        f"/studies/{study['id']}/animals/{animal['id']}",
        json={"arm_id": treatment["id"]},
        headers={"X-Change-Reason": "randomised by baseline flux"},
    )
    assert response.json()["arm_id"] == treatment["id"]
    event = db_session.scalar(
        select(AuditEvent).where(
            AuditEvent.object_id == uuid.UUID(animal["id"]), AuditEvent.action == "update"
        )
    )
    assert event.changes == {"arm_id": [control["id"], treatment["id"]]}
    assert event.reason == "randomised by baseline flux"


def test_other_lab_cannot_see_or_add(
    client: TestClient, other_lab: TestClient, study: dict, arms: tuple[dict, dict]
) -> None:
    animal = make_animal(client, study["id"], arms[0]["id"], "3466")
    assert_problem(other_lab.get(f"/studies/{study['id']}/animals/{animal['id']}"), 404)
    assert_problem(
        other_lab.post(
            f"/studies/{study['id']}/animals", json={"identifier": "x", "arm_id": arms[0]["id"]}
        ),
        404,
    )


def test_day0_cannot_move_past_an_end(
    client: TestClient, study: dict, arms: tuple[dict, dict]
) -> None:
    make_animal(
        client, study["id"], arms[0]["id"], "3466", end={"date": "2026-07-10", "reason": "death"}
    )
    assert_problem(
        client.patch(f"/studies/{study['id']}", json={"day0": "2026-07-20"}), 422, "end date"
    )
    assert client.patch(f"/studies/{study['id']}", json={"day0": "2026-07-05"}).status_code == 200


def test_archive_animal(client: TestClient, study: dict, arms: tuple[dict, dict]) -> None:
    animal = make_animal(client, study["id"], arms[0]["id"], "3466")
    assert client.post(f"/studies/{study['id']}/animals/{animal['id']}/archive").status_code == 200
    assert client.get(f"/studies/{study['id']}/animals").json()["total"] == 0
    assert (
        client.get(f"/studies/{study['id']}/animals", params={"include_archived": True}).json()[
            "total"
        ]
        == 1
    )
