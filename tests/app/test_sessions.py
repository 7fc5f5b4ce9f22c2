"""Imaging sessions: local date decides the day since injection; times are checked."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import IdempotencyRecord, ImagingSession
from tests.app.factories import make_study
from tests.app.problems import assert_problem, row_counts


@pytest.fixture
def study(client: TestClient) -> dict:
    return make_study(client)  # day 0 = 2026-07-01


def test_day_comes_from_the_instruments_local_date(client: TestClient, study: dict) -> None:
    # 23:30 in California on 14 July is already 15 July in UTC: still day 13.
    body = {
        "acquired_at": "2026-07-14T23:30:00-07:00",
        "luciferin_dose_mg_per_kg": 150,
        "luciferin_injected_at": "2026-07-14T23:20:00-07:00",
        "operator": "JS",
    }
    created = client.post(f"/studies/{study['id']}/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["acquired_on"] == "2026-07-14"
    assert session["day"] == 13
    assert session["acquired_at"].startswith("2026-07-15T06:30:00")
    assert session["received_at"] != session["acquired_at"]


def test_list_and_filter_by_day(client: TestClient, study: dict) -> None:
    for day in (7, 14, 21):
        client.post(
            f"/studies/{study['id']}/sessions",
            json={"acquired_at": f"2026-07-{1 + day:02d}T10:00:00+00:00"},
        )
    listed = client.get(f"/studies/{study['id']}/sessions", params={"day_from": 10}).json()
    assert [s["day"] for s in listed["items"]] == [14, 21]


def test_bad_times_are_rejected(client: TestClient, study: dict, db_session: Session) -> None:
    before = row_counts(db_session, ImagingSession)
    url = f"/studies/{study['id']}/sessions"
    assert_problem(
        client.post(url, json={"acquired_at": "2026-06-30T10:00:00+00:00"}), 422, "day 0"
    )
    assert_problem(
        client.post(url, json={"acquired_at": "2026-07-10T10:00:00"}), 422, "acquired_at"
    )
    assert_problem(
        client.post(
            url,
            json={
                "acquired_at": "2026-07-10T10:00:00+00:00",
                "luciferin_injected_at": "2026-07-10T10:30:00+00:00",
            },
        ),
        422,
        "luciferin_injected_at",
    )
    assert row_counts(db_session, ImagingSession) == before


def test_correct_a_session_and_scope(
    client: TestClient, other_lab: TestClient, study: dict
) -> None:
    created = client.post(
        f"/studies/{study['id']}/sessions", json={"acquired_at": "2026-07-08T10:00:00+02:00"}
    ).json()
    url = f"/studies/{study['id']}/sessions/{created['id']}"
    fixed = client.patch(url, json={"acquired_at": "2026-07-09T10:00:00+02:00"})
    assert fixed.status_code == 200 and fixed.json()["day"] == 8
    assert_problem(other_lab.get(url), 404)
    assert_problem(
        client.get(f"/studies/{study['id']}/sessions/{uuid.uuid4()}"), 404, "imaging session"
    )


def test_instrument_key_may_open_sessions_but_not_edit_studies(
    client: TestClient, anonymous: TestClient, study: dict
) -> None:
    key = client.post("/keys", json={"name": "IVIS PC", "role": "instrument"}).json()["key"]
    headers = {"X-API-Key": key}
    response = anonymous.post(
        f"/studies/{study['id']}/sessions",
        json={"acquired_at": "2026-07-08T10:00:00+02:00"},
        headers=headers,
    )
    assert response.status_code == 201
    assert_problem(
        anonymous.patch(f"/studies/{study['id']}", json={"name": "x"}, headers=headers),
        403,
        "push imaging data only",
    )


def test_idempotency_key_creates_one_session(
    client: TestClient, study: dict, db_session: Session
) -> None:
    url = f"/studies/{study['id']}/sessions"
    headers = {"Idempotency-Key": "ivis-pc-2026-07-08"}
    body = {"acquired_at": "2026-07-08T10:00:00+02:00", "instrument": "IVIS Spectrum"}
    first = client.post(url, json=body, headers=headers)
    before = row_counts(db_session, ImagingSession)
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert row_counts(db_session, ImagingSession) == before
    assert_problem(
        client.post(url, json=body | {"instrument": "other"}, headers=headers),
        422,
        "different request",
    )


def test_a_request_still_running_under_the_same_key_asks_to_retry(
    client: TestClient, study: dict, db_session: Session
) -> None:
    # A claimed key without a stored response: its request has not finished. Unlike other
    # conflicts this one passes, so the answer says when to send again (``osteolux push``
    # retries only such 409s).
    url = f"/studies/{study['id']}/sessions"
    headers = {"Idempotency-Key": "ivis-pc-2026-07-09"}
    body = {"acquired_at": "2026-07-09T10:00:00+02:00"}
    assert client.post(url, json=body, headers=headers).status_code == 201
    record = db_session.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.key == headers["Idempotency-Key"])
    ).one()
    record.response = None
    db_session.flush()
    before = row_counts(db_session, ImagingSession)

    running = client.post(url, json=body, headers=headers)

    problem = assert_problem(running, 409, "still running", "retry shortly")
    assert problem["type"].endswith("/request-in-progress")
    assert running.headers["Retry-After"] == "1"
    assert row_counts(db_session, ImagingSession) == before
