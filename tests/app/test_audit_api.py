"""The audit trail through the API: read-only, filtered, paginated, CSV; admins read the
lab's trail, admins and editors a study's; other labs see nothing."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal
from app.models import Acquisition, ApiKeyRole, Roi
from tests.app.clicks import post_zip
from tests.app.factories import make_study
from tests.app.problems import assert_problem


def _key(client: TestClient, role: str) -> dict[str, Any]:
    return client.post("/keys", json={"name": f"{role} of lab A", "role": role}).json()


@pytest.fixture
def history(
    client: TestClient, imaging_session: dict[str, Any], synthetic_zip: bytes
) -> dict[str, Any]:
    """A study with arms, animals, a session corrected by an editor, an upload; another
    study; a key made and revoked."""
    study_id = imaging_session["study_id"]
    editor = _key(client, "editor")
    session_url = f"/studies/{study_id}/sessions/{imaging_session['id']}"
    moved = client.patch(
        session_url,
        json={"operator": "R. Chen"},
        headers={
            "Authorization": f"Bearer {editor['key']}",
            "X-Change-Reason": "=operator was missing",
        },
    )
    assert moved.status_code == 200, moved.text
    assert post_zip(client, imaging_session, synthetic_zip).status_code == 201
    other = make_study(client, name="BM-02 another study")
    viewer = _key(client, "viewer")
    client.post(f"/keys/{viewer['id']}/revoke", headers={"X-Change-Reason": "PI left"})
    return {
        "study_id": study_id,
        "session_id": imaging_session["id"],
        "other_study_id": other["id"],
        "editor": editor,
    }


def _all(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(url, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return body["items"]


def test_study_trail_holds_every_change_to_the_study_and_nothing_else(
    client: TestClient, history: dict[str, Any]
) -> None:
    lab = _all(client, "/audit")
    study = _all(client, f"/studies/{history['study_id']}/audit")
    other = _all(client, f"/studies/{history['other_study_id']}/audit")
    assert {e["id"] for e in study} & {e["id"] for e in other} == set()
    # Everything but key management belongs to exactly one of the two studies.
    not_keys = {e["id"] for e in lab if e["object_type"] != "api_key"}
    assert not_keys == {e["id"] for e in study} | {e["id"] for e in other}
    kinds = {e["object_type"] for e in study}
    assert {"study", "arm", "animal", "imaging_session", "acquisition"} <= kinds
    assert [e["object_type"] for e in other] == ["study"]
    assert _all(client, "/audit", study_id=history["study_id"]) == study


def test_an_event_says_who_when_what_and_why(client: TestClient, history: dict[str, Any]) -> None:
    study_url = f"/studies/{history['study_id']}/audit"
    (event,) = _all(client, study_url, object_id=history["session_id"], action="update")
    assert event["object_type"] == "imaging_session"
    assert event["api_key_id"] == history["editor"]["id"]
    assert event["api_key_name"] == "editor of lab A"
    assert event["changes"] == {"operator": [None, "R. Chen"]}
    assert event["reason"] == "=operator was missing"
    assert abs(datetime.fromisoformat(event["at"]) - datetime.now(UTC)) < timedelta(minutes=5)
    by_editor = _all(client, "/audit", api_key_id=history["editor"]["id"])
    assert [e["id"] for e in by_editor] == [event["id"]]
    revoked = _all(client, "/audit", object_type="api_key", action="revoke")
    assert [e["reason"] for e in revoked] == ["PI left"]


def test_time_filters_and_pages(client: TestClient, history: dict[str, Any]) -> None:
    events = _all(client, "/audit")
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    newest_first = _all(client, "/audit", order="desc")
    assert newest_first == events[::-1]
    pages = [
        client.get("/audit", params={"limit": 3, "offset": offset}).json()
        for offset in range(0, len(events), 3)
    ]
    assert [e for p in pages for e in p["items"]] == events
    assert {p["total"] for p in pages} == {len(events)}
    middle = events[len(events) // 2]["at"]
    before = _all(client, "/audit", until=middle)
    since = _all(client, "/audit", since=middle)
    assert before + since == events
    assert all(e["at"] < middle for e in before) and all(e["at"] >= middle for e in since)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _all(client, "/audit", since=future) == []


def test_bad_filters_are_422(client: TestClient, history: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    assert_problem(
        client.get("/audit", params={"since": now.isoformat(), "until": now.isoformat()}),
        422,
        "must be before",
    )
    assert_problem(client.get("/audit", params={"since": "2026-07-01T10:00:00"}), 422)
    assert_problem(client.get("/audit", params={"order": "sideways"}), 422)
    assert_problem(client.get("/audit", params={"format": "xlsx"}), 422)


def test_csv_export_has_every_matching_event(client: TestClient, history: dict[str, Any]) -> None:
    url = f"/studies/{history['study_id']}/audit"
    events = _all(client, url)
    response = client.get(url, params={"format": "csv", "limit": 1})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["event_id"] for r in rows] == [e["id"] for e in events]
    edited = next(r for r in rows if r["action"] == "update")
    assert edited["reason"] == "'=operator was missing"  # not run as a spreadsheet formula
    assert json.loads(edited["changes"]) == {"operator": [None, "R. Chen"]}
    assert edited["api_key_name"] == "editor of lab A"


def test_who_may_read_the_trail(
    client: TestClient, anonymous: TestClient, other_lab: TestClient, history: dict[str, Any]
) -> None:
    study_url = f"/studies/{history['study_id']}/audit"
    as_editor = {"X-API-Key": history["editor"]["key"]}
    assert anonymous.get(study_url, headers=as_editor).status_code == 200
    assert_problem(anonymous.get("/audit", headers=as_editor), 403, "admin")
    for role in ("viewer", "instrument"):
        headers = {"X-API-Key": _key(client, role)["key"]}
        assert_problem(anonymous.get(study_url, headers=headers), 403, "admin and editor")
        assert_problem(anonymous.get("/audit", headers=headers), 403)
    assert_problem(other_lab.get(study_url), 404)
    assert_problem(other_lab.get("/audit", params={"study_id": history["study_id"]}), 404)
    lab_b = {e["object_id"] for e in _all(other_lab, "/audit")}
    lab_a = {e["object_id"] for e in _all(client, "/audit")}
    assert lab_a & lab_b == set()
    assert_problem(client.get(f"/studies/{uuid.uuid4()}/audit"), 404)


def test_the_trail_is_read_only_through_the_api(
    client: TestClient, history: dict[str, Any]
) -> None:
    study_url = f"/studies/{history['study_id']}/audit"
    event = _all(client, "/audit")[0]
    for url in ("/audit", study_url, f"/audit/{event['id']}"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, url, json={})
            assert response.status_code in (404, 405), (method, url)
    assert _all(client, "/audit")[0] == event


def test_roi_events_belong_to_their_study(
    client: TestClient, history: dict[str, Any], db_session: Session
) -> None:
    roi_id = db_session.scalars(
        select(Roi.id)
        .join(Acquisition, Acquisition.id == Roi.acquisition_id)
        .where(Acquisition.session_id == uuid.UUID(history["session_id"]))
    ).first()
    assert roi_id is not None, "the upload placed ROIs"
    me = client.get("/me").json()
    principal = Principal(
        lab_id=uuid.UUID(me["lab_id"]), key_id=uuid.UUID(me["key_id"]), role=ApiKeyRole.admin
    )
    audit.record(
        db_session,
        principal,
        action="update",
        object_type="roi",
        object_id=roi_id,
        changes={"radius_px": (40.0, 42.5)},
        reason="ROI cut the spine",
    )
    db_session.commit()
    (event,) = _all(client, f"/studies/{history['study_id']}/audit", object_type="roi")
    assert (event["object_id"], event["reason"]) == (str(roi_id), "ROI cut the spine")
    assert event["changes"] == {"radius_px": [40.0, 42.5]}
    assert _all(client, f"/studies/{history['other_study_id']}/audit", object_type="roi") == []
