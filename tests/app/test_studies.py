"""Studies: create / list / get / update / archive, lab-scoped, with problem+json errors."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Study
from tests.app.factories import STUDY, make_study
from tests.app.problems import assert_problem, row_counts


def test_create_get_and_list(client: TestClient) -> None:
    created = make_study(client)
    assert created["name"] == STUDY["name"]
    assert created["injection_model"] == "intracardiac"
    assert created["archived_at"] is None
    fetched = client.get(f"/studies/{created['id']}").json()
    assert fetched == created
    listing = client.get("/studies").json()
    assert listing["total"] == 1
    assert [s["id"] for s in listing["items"]] == [created["id"]]


def test_pagination_and_filters(client: TestClient) -> None:
    for i in range(5):
        make_study(
            client,
            name=f"Study {i}",
            day0=f"2026-0{i + 1}-15",
            injection_model="intratibial" if i % 2 else "intracardiac",
        )
    page = client.get("/studies", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert [s["name"] for s in page["items"]] == ["Study 3", "Study 2"]  # newest day 0 first
    tibial = client.get("/studies", params={"injection_model": "intratibial"}).json()
    assert sorted(s["name"] for s in tibial["items"]) == ["Study 1", "Study 3"]
    named = client.get("/studies", params={"name_contains": "study 4"}).json()
    assert [s["name"] for s in named["items"]] == ["Study 4"]
    percent = client.get("/studies", params={"name_contains": "%"}).json()
    assert percent["total"] == 0  # LIKE wildcards are escaped


def test_update_is_audited_with_reason(client: TestClient, db_session: Session) -> None:
    study = make_study(client)
    response = client.patch(
        f"/studies/{study['id']}",
        json={"iacuc_number": "IACUC-2025-0999"},
        headers={"X-Change-Reason": "protocol amendment 3"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["iacuc_number"] == "IACUC-2025-0999"
    event = db_session.scalar(
        select(AuditEvent).where(AuditEvent.action == "update", AuditEvent.object_type == "study")
    )
    assert event is not None
    assert event.changes == {"iacuc_number": ["IACUC-2025-0412", "IACUC-2025-0999"]}
    assert event.reason == "protocol amendment 3"


def test_archive_hides_but_keeps(client: TestClient) -> None:
    study = make_study(client)
    archived = client.post(f"/studies/{study['id']}/archive").json()
    assert archived["archived_at"] is not None
    assert client.get("/studies").json()["total"] == 0
    assert client.get("/studies", params={"include_archived": True}).json()["total"] == 1
    assert client.get(f"/studies/{study['id']}").status_code == 200


def test_other_labs_study_is_not_found(
    client: TestClient, other_lab: TestClient, db_session: Session
) -> None:
    study = make_study(client)
    for response in (
        other_lab.get(f"/studies/{study['id']}"),
        other_lab.patch(f"/studies/{study['id']}", json={"name": "stolen"}),
        other_lab.post(f"/studies/{study['id']}/archive"),
    ):
        assert_problem(response, 404, "No study")
    assert other_lab.get("/studies").json()["total"] == 0
    assert client.get(f"/studies/{study['id']}").json()["name"] == STUDY["name"]
    # Lab B may use the same name: names are unique per lab only.
    assert other_lab.post("/studies", json=STUDY).status_code == 201


def test_unknown_id_and_malformed_id(client: TestClient) -> None:
    assert_problem(client.get(f"/studies/{uuid.uuid4()}"), 404, "No study")
    body = assert_problem(client.get("/studies/not-a-uuid"), 422, "study_id")
    assert body["errors"][0]["field"] == "path.study_id"


def test_invalid_enum_says_what_is_allowed(client: TestClient, db_session: Session) -> None:
    before = row_counts(db_session, Study)
    body = assert_problem(
        client.post("/studies", json=STUDY | {"injection_model": "intravenous"}),
        422,
        "injection_model",
    )
    assert "intracardiac" in body["errors"][0]["message"]
    assert row_counts(db_session, Study) == before


def test_unknown_and_missing_fields_rejected(client: TestClient, db_session: Session) -> None:
    before = row_counts(db_session, Study)
    body = assert_problem(client.post("/studies", json=STUDY | {"day_zero": "2026-07-01"}), 422)
    assert {"field": "day_zero", "message": body["errors"][0]["message"]} in [
        {k: e[k] for k in ("field", "message")} for e in body["errors"]
    ]
    assert "not a known field" in body["errors"][0]["message"]
    missing = {k: v for k, v in STUDY.items() if k != "day0"}
    assert_problem(client.post("/studies", json=missing), 422, "day0: is required")
    assert_problem(
        client.patch(f"/studies/{uuid.uuid4()}", json={"name": None}), 422, "cannot be null"
    )
    assert row_counts(db_session, Study) == before


def test_duplicate_name_conflicts_and_writes_nothing(
    client: TestClient, db_session: Session
) -> None:
    make_study(client)
    before = row_counts(db_session, Study, AuditEvent)
    assert_problem(client.post("/studies", json=STUDY), 409, "already has a study named")
    assert row_counts(db_session, Study, AuditEvent) == before


def test_moving_day0_after_imaging_needs_a_reason_and_never_makes_negative_days(
    client: TestClient, db_session: Session
) -> None:
    from tests.app.clicks import new_imaging_session

    imaging = new_imaging_session(client)  # day 0 = 2026-07-01, a session on 2026-07-15
    study_url = f"/studies/{imaging['study_id']}"
    # After the first session: its day would be −5.
    assert_problem(
        client.patch(study_url, json={"day0": "2026-07-20"}, headers={"X-Change-Reason": "x"}),
        422,
        "first imaging session (2026-07-15)",
        "day -5",
    )
    # Earlier, but without saying why: every session's day would silently shift.
    assert_problem(
        client.patch(study_url, json={"day0": "2026-06-28"}),
        422,
        "changes the day of all 1 imaging session(s) of this study by +3",
        "X-Change-Reason",
    )
    assert client.get(study_url).json()["day0"] == "2026-07-01"
    # With a reason it is applied, audited old → new, and every day follows.
    moved = client.patch(
        study_url,
        json={"day0": "2026-06-28"},
        headers={"X-Change-Reason": "injection was on the 28th (lab book p. 12)"},
    )
    assert moved.status_code == 200, moved.text
    sessions = client.get(f"{study_url}/sessions").json()
    items = sessions["items"] if isinstance(sessions, dict) else sessions
    assert [s["day"] for s in items] == [17]
    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.reason.like("injection was on%"))
    ).one()
    assert "2026-07-01" in str(event.changes) and "2026-06-28" in str(event.changes)


def test_day0_moves_freely_before_any_imaging(client: TestClient) -> None:
    study = make_study(client)
    moved = client.patch(f"/studies/{study['id']}", json={"day0": "2026-08-01"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["day0"] == "2026-08-01"
