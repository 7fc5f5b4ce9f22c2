"""Every error is RFC 9457 problem+json, including the framework's own."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.errors import PROBLEM_JSON
from app.models import Study
from tests.app.factories import STUDY
from tests.app.problems import assert_problem, row_counts


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    assert_problem(client.get("/no-such-thing"), 404, "/docs")


def test_wrong_method_is_problem_json(client: TestClient) -> None:
    assert_problem(client.delete("/studies"), 405)


def test_malformed_json_body(client: TestClient) -> None:
    response = client.post(
        "/studies", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


def test_unexpected_error_is_500_problem_and_rolls_back(
    app: Any, admin_key: str, db_session: Session, monkeypatch: Any
) -> None:
    from app.studies import service

    original = service.create_study

    def exploding(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # writes the row, then fails before the request ends
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "create_study", exploding)
    before = row_counts(db_session, Study)
    with TestClient(app, headers={"X-API-Key": admin_key}, raise_server_exceptions=False) as client:
        response = client.post("/studies", json=STUDY)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "disk on fire" not in response.text  # internals are logged, not shown
    assert "nothing was saved" in response.json()["detail"]
    assert row_counts(db_session, Study) == before


def test_openapi_documents_problems_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "Problem" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("description"), where
            if path not in ("/health", "/health/ready"):  # no key needed
                assert PROBLEM_JSON in operation["responses"]["401"]["content"], where
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                ref = body["schema"]["$ref"].split("/")[-1]
                assert spec["components"]["schemas"][ref].get("examples"), where
