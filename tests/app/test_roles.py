"""What each role may do: the instrument role is what an instrument PC needs (read, open
imaging sessions, upload images) and nothing that changes curated study data."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import AuditEvent, Blob, ImagingSession, Measurement
from tests.app.clicks import post_zip
from tests.app.factories import STUDY
from tests.app.problems import assert_problem, row_counts

TIDY = "animal,day,site,total_flux_ps\n3466,14,whole_body,1.0e6\n"


def _key(client: TestClient, role: str) -> dict[str, str]:
    secret = client.post("/keys", json={"name": f"{role} key", "role": role}).json()["key"]
    return {"X-API-Key": secret}


@pytest.fixture
def instrument(client: TestClient) -> dict[str, str]:
    return _key(client, "instrument")


def test_instrument_reads_opens_sessions_and_uploads(
    anonymous: TestClient,
    instrument: dict[str, str],
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
) -> None:
    study_url = f"/studies/{imaging_session['study_id']}"
    assert anonymous.get(study_url, headers=instrument).status_code == 200
    assert anonymous.get(f"{study_url}/sessions", headers=instrument).json()["total"] == 1
    opened = anonymous.post(
        f"{study_url}/sessions",
        json={"acquired_at": "2026-07-18T09:00:00+02:00", "instrument": "IVIS Spectrum"},
        headers=instrument,
    )
    assert opened.status_code == 201, opened.text
    anonymous.headers.update(instrument)
    uploaded = post_zip(anonymous, imaging_session, synthetic_zip)
    assert uploaded.status_code == 201, uploaded.text


def test_instrument_cannot_move_a_session(
    anonymous: TestClient,
    instrument: dict[str, str],
    imaging_session: dict[str, Any],
    db_session: Session,
) -> None:
    # The finding: an instrument key moved an editor's day-14 session to another day.
    session_url = f"/studies/{imaging_session['study_id']}/sessions/{imaging_session['id']}"
    before = row_counts(db_session, AuditEvent)
    response = anonymous.patch(
        session_url, json={"acquired_at": "2026-07-18T10:15:00+02:00"}, headers=instrument
    )
    assert_problem(response, 403, "instrument", "editor key")
    assert anonymous.get(session_url, headers=instrument).json()["day"] == 14
    assert row_counts(db_session, AuditEvent) == before


def test_instrument_cannot_import_measurement_csvs(
    anonymous: TestClient,
    instrument: dict[str, str],
    imaging_session: dict[str, Any],
    db_session: Session,
) -> None:
    before = row_counts(db_session, Measurement, Blob, AuditEvent, ImagingSession)
    response = anonymous.post(
        f"/studies/{imaging_session['study_id']}/measurements/import",
        files={"file": ("flux.csv", TIDY.encode(), "text/csv")},
        headers=instrument,
    )
    assert_problem(response, 403, "instrument")
    assert row_counts(db_session, Measurement, Blob, AuditEvent, ImagingSession) == before


def test_editors_still_correct_sessions_and_import(
    client: TestClient, imaging_session: dict[str, Any]
) -> None:
    editor = _key(client, "editor")
    session_url = f"/studies/{imaging_session['study_id']}/sessions/{imaging_session['id']}"
    moved = client.patch(
        session_url, json={"acquired_at": "2026-07-18T10:15:00+02:00"}, headers=editor
    )
    assert moved.status_code == 200 and moved.json()["day"] == 17
    imported = client.post(
        f"/studies/{imaging_session['study_id']}/measurements/import",
        files={"file": ("flux.csv", TIDY.encode(), "text/csv")},
        headers=editor,
    )
    assert imported.status_code == 201, imported.text


def test_instrument_cannot_change_study_design_or_analyses(
    anonymous: TestClient, instrument: dict[str, str], imaging_session: dict[str, Any]
) -> None:
    study = f"/studies/{imaging_session['study_id']}"
    arm = {"name": "Vehicle", "role": "control", "agent_class": "vehicle"}
    valid_requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/studies", STUDY | {"name": "another study"}),
        ("PATCH", study, {"name": "renamed"}),
        ("POST", f"{study}/arms", arm),
        ("POST", f"{study}/requantify", None),
        ("POST", "/keys", {"name": "x", "role": "admin"}),
    ]
    for method, target, body in valid_requests:
        response = anonymous.request(method, target, json=body, headers=instrument)
        assert_problem(response, 403)
