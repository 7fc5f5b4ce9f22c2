"""The audit trail is append-only in the database itself: UPDATE, DELETE and TRUNCATE of
``audit_event`` are refused whoever sends them (triggers from the migrations)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.models import AuditEvent
from tests.app.factories import make_study

_TAMPERING = {
    "update": "UPDATE audit_event SET reason = 'nothing happened'",
    "delete": "DELETE FROM audit_event",
}


@pytest.mark.parametrize("statement", sorted(_TAMPERING))
def test_audit_rows_cannot_be_changed_or_deleted(
    client: TestClient, db_session: Session, statement: str
) -> None:
    make_study(client)
    before = db_session.scalars(select(AuditEvent.reason)).all()
    assert before, "creating a study is audited"
    with pytest.raises(DBAPIError, match="append-only"), db_session.begin_nested():
        db_session.execute(text(_TAMPERING[statement]))
    assert db_session.scalars(select(AuditEvent.reason)).all() == before


def test_audit_table_cannot_be_truncated(client: TestClient, db_session: Session) -> None:
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE is refused above)")
    make_study(client)
    with pytest.raises(DBAPIError, match="append-only"), db_session.begin_nested():
        db_session.execute(text("TRUNCATE audit_event"))
    assert db_session.scalar(select(func.count()).select_from(AuditEvent)) >= 1
