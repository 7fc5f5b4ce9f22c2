"""API keys: required on every request, hashed at rest, roles enforced, revocable."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import hash_key
from app.models import ApiKey, AuditEvent
from tests.app.factories import STUDY
from tests.app.problems import assert_problem


def test_every_route_needs_a_key(app: Any, anonymous: TestClient) -> None:
    public = {"/health", "/docs", "/openapi.json"}
    for route in app.routes:
        path = getattr(route, "path", "")
        if path in public or path.startswith("/static") or not getattr(route, "methods", None):
            continue
        concrete = path.replace("{study_id}", "0" * 8 + "-0000-4000-8000-" + "0" * 12)
        for name in ("{arm_id}", "{animal_id}", "{key_id}"):
            concrete = concrete.replace(name, "1" * 8 + "-1111-4111-8111-" + "1" * 12)
        for method in route.methods - {"HEAD"}:
            response = anonymous.request(method, concrete, json={})
            body = assert_problem(response, 401, "API key")
            assert response.headers["www-authenticate"] == "Bearer", (method, path, body)


def test_wrong_key_is_401(anonymous: TestClient) -> None:
    for headers in ({"Authorization": "Bearer olx_wrong"}, {"X-API-Key": "nope"}):
        assert_problem(anonymous.get("/studies", headers=headers), 401, "not valid")


def test_bearer_and_x_api_key_both_work(anonymous: TestClient, admin_key: str) -> None:
    for headers in ({"Authorization": f"Bearer {admin_key}"}, {"X-API-Key": admin_key}):
        response = anonymous.get("/me", headers=headers)
        assert response.status_code == 200
        assert response.json()["role"] == "admin"
        assert response.json()["lab_name"] == "Lab A (Weilbaecher)"


def test_keys_are_random_and_stored_only_as_hash(admin_key: str, db_session: Session) -> None:
    # 32 random bytes → 43 URL-safe characters after the prefix: ≥ 256 bits.
    assert admin_key.startswith("olx_") and len(admin_key) >= 4 + 43
    stored = db_session.scalars(select(ApiKey)).all()
    assert len(stored) == 1
    assert stored[0].key_hash == hash_key(admin_key) != admin_key
    for column in ApiKey.__table__.columns:
        value = getattr(stored[0], column.key)
        assert not (isinstance(value, str) and admin_key in value), column.key


def test_roles(client: TestClient, anonymous: TestClient) -> None:
    viewer = client.post("/keys", json={"name": "PI laptop", "role": "viewer"}).json()
    editor = client.post("/keys", json={"name": "technician", "role": "editor"}).json()
    assert viewer["key"].startswith("olx_") and viewer["key_prefix"] == viewer["key"][:10]
    as_viewer = {"X-API-Key": viewer["key"]}
    assert anonymous.get("/studies", headers=as_viewer).status_code == 200
    assert_problem(anonymous.post("/studies", json=STUDY, headers=as_viewer), 403, "may only read")
    assert_problem(anonymous.get("/keys", headers=as_viewer), 403, "admin")
    as_editor = {"X-API-Key": editor["key"]}
    assert anonymous.post("/studies", json=STUDY, headers=as_editor).status_code == 201
    assert_problem(
        anonymous.post("/keys", json={"name": "x", "role": "admin"}, headers=as_editor), 403
    )
    listed = client.get("/keys").json()
    assert {k["name"] for k in listed} == {"bootstrap admin", "PI laptop", "technician"}
    assert all("key" not in k for k in listed)


def test_revoked_key_is_rejected(client: TestClient, anonymous: TestClient) -> None:
    created = client.post("/keys", json={"name": "old IVIS PC", "role": "instrument"}).json()
    headers = {"X-API-Key": created["key"]}
    assert anonymous.get("/me", headers=headers).status_code == 200
    revoked = client.post(f"/keys/{created['id']}/revoke").json()
    assert revoked["revoked_at"] is not None
    assert_problem(anonymous.get("/me", headers=headers), 401)


def test_other_labs_keys_cannot_be_revoked(client: TestClient, other_lab: TestClient) -> None:
    created = client.post("/keys", json={"name": "viewer", "role": "viewer"}).json()
    assert_problem(other_lab.post(f"/keys/{created['id']}/revoke"), 404)


def test_last_admin_key_cannot_be_revoked(
    client: TestClient, anonymous: TestClient, db_session: Session
) -> None:
    me = client.get("/me").json()
    body = assert_problem(client.post(f"/keys/{me['key_id']}/revoke"), 409, "last admin key")
    assert "Create another admin key first" in body["detail"]
    assert client.get("/me").status_code == 200
    second = client.post("/keys", json={"name": "PI admin", "role": "admin"}).json()
    # With two admin keys either may go, but not both: the survivor is the last one.
    assert client.post(f"/keys/{me['key_id']}/revoke").status_code == 200
    as_second = {"X-API-Key": second["key"]}
    assert_problem(anonymous.post(f"/keys/{second['id']}/revoke", headers=as_second), 409)
    assert anonymous.get("/keys", headers=as_second).status_code == 200
    active_admins = db_session.scalars(
        select(ApiKey).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))
    ).all()
    assert [k.name for k in active_admins] == ["PI admin"]


def test_revoking_a_non_admin_key_is_not_limited(client: TestClient) -> None:
    viewer = client.post("/keys", json={"name": "PI laptop", "role": "viewer"}).json()
    assert client.post(f"/keys/{viewer['id']}/revoke").json()["revoked_at"] is not None


def test_key_creation_and_revocation_record_the_reason(
    client: TestClient, db_session: Session
) -> None:
    created = client.post(
        "/keys",
        json={"name": "IVIS PC", "role": "instrument"},
        headers={"X-Change-Reason": "new IVIS Spectrum in room 2.14"},
    ).json()
    client.post(f"/keys/{created['id']}/revoke", headers={"X-Change-Reason": "PC sent for repair"})
    events = db_session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_id == uuid.UUID(created["id"]))
        .order_by(AuditEvent.at)
    ).all()
    assert [(e.action, e.reason) for e in events] == [
        ("create", "new IVIS Spectrum in room 2.14"),
        ("revoke", "PC sent for repair"),
    ]
    assert events[0].changes == {"name": "IVIS PC", "role": "instrument"}
    assert events[1].changes["revoked_at"] == created_revoked_at(client, created["id"])


def created_revoked_at(client: TestClient, key_id: str) -> str:
    key = next(k for k in client.get("/keys").json() if k["id"] == key_id)
    return str(datetime.fromisoformat(key["revoked_at"]))
