"""Assertions on RFC 9457 problem responses and on "nothing was written"."""

from __future__ import annotations

from typing import Any

from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def assert_problem(response: Response, status: int, *fragments: str) -> dict[str, Any]:
    """The response is problem+json with this status and a detail naming each fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def row_counts(db_session: Session, *models: type) -> tuple[int, ...]:
    return tuple(db_session.scalar(select(func.count()).select_from(m)) for m in models)
