"""API keys: required on every request, hashed at rest, roles enforced, revocable."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.auth import Principal, hash_key
from app.db import make_engine, make_session_factory, transaction
from app.errors import Conflict
from app.labs.service import create_key, create_lab, revoke_key
from app.migrations import upgrade_to_head
from app.models import ApiKey, ApiKeyRole, AuditEvent
from tests.app.conftest import postgres_url
from tests.app.factories import STUDY
from tests.app.problems import assert_problem


def test_every_route_needs_a_key(app: Any, anonymous: TestClient) -> None:
    # Every operation of the API as its OpenAPI lists them (on this FastAPI, app.routes
    # holds included routers, not their routes).
    public = {"/health", "/health/ready"}
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in public:
            continue
        concrete = re.sub(r"\{[a-z_]+\}", "1" * 8 + "-1111-4111-8111-" + "1" * 12, path)
        for method in operations:
            response = anonymous.request(method.upper(), concrete, json={})
            body = assert_problem(response, 401, "API key")
            assert response.headers["www-authenticate"] == "Bearer", (method, path, body)
            checked += 1
    assert checked > 50


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
    listed = client.get("/keys").json()["items"]
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
    assert events[1].changes == {"revoked_at": [None, created_revoked_at(client, created["id"])]}


def created_revoked_at(client: TestClient, key_id: str) -> str:
    key = next(k for k in client.get("/keys").json()["items"] if k["id"] == key_id)
    return str(datetime.fromisoformat(key["revoked_at"]))


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own, for tests that must commit from several threads."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
        upgrade_to_head(url)
        yield url
        return
    base = postgres_url()
    schema = f"keys_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    upgrade_to_head(url)
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_two_admins_revoking_each_other_at_once_leave_one(own_database: str) -> None:
    engine = make_engine(own_database)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as session:
            lab, first, _ = create_lab(session, "Lab A")
            principal = Principal(lab_id=lab.id, key_id=first.id, role=ApiKeyRole.admin)
            second, _ = create_key(session, principal, "second admin", ApiKeyRole.admin)
        admins = [
            Principal(lab_id=lab.id, key_id=k.id, role=ApiKeyRole.admin) for k in (first, second)
        ]
        start = threading.Barrier(2)

        def revoke_the_other(me: int) -> str:
            start.wait()
            try:
                with transaction(factory) as session:
                    revoke_key(session, admins[me], admins[1 - me].key_id)
                    time.sleep(0.5)  # both would be inside their transaction at once
            except Conflict:
                return "refused"
            return "revoked"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(revoke_the_other, (0, 1)))
        assert outcomes == ["refused", "revoked"]
        with factory() as session:
            active = session.scalars(select(ApiKey.name).where(ApiKey.revoked_at.is_(None))).all()
        assert len(active) == 1
    finally:
        engine.dispose()
