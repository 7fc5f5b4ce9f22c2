"""PostgreSQL with two roles: the API's runtime role works normally but cannot rewrite the
audit trail (permission denied on UPDATE, DELETE, TRUNCATE, ALTER, DROP of audit_event)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from app.audit.runtime_role import owner_warning
from app.config import Settings
from app.db import make_engine, make_session_factory, transaction
from app.labs.service import create_lab
from app.main import create_app
from app.models import AuditEvent
from tests.app.clicks import new_imaging_session, synthetic_hotel_zip, url
from tests.app.conftest import postgres_url
from tests.app.factories import STUDY
from tests.live_server import run_cli

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class TwoRoles:
    owner_url: str
    runtime_url: str
    runtime_role: str


def _with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="module")
def two_roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRoles]:
    """A schema of its own migrated by the owner, and a fresh login role for the API."""
    url = postgres_url()
    suffix = uuid.uuid4().hex[:8]
    schema, role, password = f"roles_{suffix}", f"osteolux_runtime_{suffix}", uuid.uuid4().hex
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    except ProgrammingError as exc:
        admin.dispose()
        message = (
            f"creating a login role needs CREATEROLE for the test user ({exc.orig}); "
            "as a superuser: ALTER ROLE <test user> CREATEROLE"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    owner_url = _with_schema(url, schema)
    runtime_url = make_url(owner_url).set(username=role, password=password)
    migrated = run_cli(
        tmp_path_factory.mktemp("data"),
        "migrate",
        "--grant-runtime-role",
        role,
        env={"OSTEOLUX_DATABASE_URL": owner_url},
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"runtime role '{role}'" in migrated.stdout
    try:
        yield TwoRoles(owner_url, runtime_url.render_as_string(hide_password=False), role)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema}_procrastinate CASCADE"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


@pytest.fixture
def runtime_engine(two_roles: TwoRoles) -> Iterator[Engine]:
    engine = make_engine(two_roles.runtime_url)
    yield engine
    engine.dispose()


def test_the_api_works_as_the_runtime_role(
    two_roles: TwoRoles, runtime_engine: Engine, tmp_path: Path
) -> None:
    with transaction(make_session_factory(runtime_engine)) as session:
        _, _, secret = create_lab(session, f"Lab {uuid.uuid4()}")
    settings = Settings(data_dir=tmp_path / "data", database_url=two_roles.runtime_url)
    with TestClient(create_app(settings), headers={"X-API-Key": secret}) as client:
        study = client.post("/studies", json=STUDY)
        assert study.status_code == 201, study.text
        renamed = client.patch(
            f"/studies/{study.json()['id']}",
            json={"name": "BM-01 renamed"},
            headers={"X-Change-Reason": "typo"},
        )
        assert renamed.status_code == 200, renamed.text
        # Uploads (blob rows, study lock), idempotency records and key revocation (lab lock).
        imaging_session = new_imaging_session(client)
        uploaded = client.post(
            url(imaging_session),
            files={"file": ("click.zip", synthetic_hotel_zip(tmp_path), "application/zip")},
            headers={"Idempotency-Key": "click-1"},
        )
        assert uploaded.status_code == 201, uploaded.text
        viewer = client.post("/keys", json={"name": "PI", "role": "viewer"}).json()
        assert client.post(f"/keys/{viewer['id']}/revoke").status_code == 200
        assert client.get(f"/studies/{study.json()['id']}/audit").status_code == 200
        # Jobs are queued (procrastinate's schema) as this role too.
        queued = client.post(f"/studies/{study.json()['id']}/requantify")
        assert queued.status_code == 202, queued.text
    with runtime_engine.connect() as conn:
        reasons = conn.scalars(
            select(AuditEvent.reason)
            .where(AuditEvent.object_id == uuid.UUID(study.json()["id"]))
            .order_by(AuditEvent.at)
        ).all()
    assert reasons == [None, "typo"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET reason = 'nothing happened'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "ALTER TABLE audit_event DISABLE TRIGGER ALL",
        "DROP TABLE audit_event",
        "DROP TRIGGER audit_event_append_only ON audit_event",
        "UPDATE alembic_version SET version_num = 'cf355487ddbc'",
    ],
)
def test_the_runtime_role_cannot_rewrite_the_audit_trail(
    runtime_engine: Engine, statement: str
) -> None:
    with transaction(make_session_factory(runtime_engine)) as session:
        create_lab(session, f"Lab {uuid.uuid4()}")
    with runtime_engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(AuditEvent))
        with pytest.raises(DBAPIError) as error:
            conn.execute(text(statement))
        assert error.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, error.value  # type: ignore[union-attr]
        conn.rollback()
        conn.execute(
            text(
                "INSERT INTO audit_event (id, lab_id, at, action, object_type, object_id, changes)"
                " SELECT :id, id, now(), 'create', 'lab', id, '{}' FROM lab LIMIT 1"
            ),
            {"id": uuid.uuid4()},
        )
        assert conn.scalar(select(func.count()).select_from(AuditEvent)) == before + 1


def test_the_runtime_role_must_be_a_limited_role(two_roles: TwoRoles, tmp_path: Path) -> None:
    owner = make_url(two_roles.owner_url).username
    for role, fragment in ((owner, "migration owner"), ("no_such_role_x", "CREATE ROLE")):
        refused = run_cli(
            tmp_path / "data",
            "migrate",
            "--grant-runtime-role",
            str(role),
            env={"OSTEOLUX_DATABASE_URL": two_roles.owner_url},
        )
        assert refused.returncode == 1 and fragment in refused.stderr, refused.stderr


def test_runtime_role_needs_postgresql(tmp_path: Path) -> None:
    refused = run_cli(tmp_path / "data", "migrate", "--grant-runtime-role", "osteolux_app")
    assert refused.returncode == 1 and "need PostgreSQL" in refused.stderr


def test_serving_as_the_owner_is_warned_about(two_roles: TwoRoles, runtime_engine: Engine) -> None:
    owner_engine = make_engine(two_roles.owner_url)
    try:
        with owner_engine.connect() as conn:
            warning = owner_warning(conn)
    finally:
        owner_engine.dispose()
    assert warning is not None and "owner of the audit trail" in warning
    with runtime_engine.connect() as conn:
        assert owner_warning(conn) is None
