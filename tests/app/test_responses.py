"""The problem examples in the OpenAPI document are what the server really sends."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from app.errors import PROBLEM_JSON
from tests.app.factories import STUDY, make_study


def _examples(spec: dict, status: str) -> list[tuple[str, dict]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"].get(status, {}).get("content", {})
            if PROBLEM_JSON in content:
                found.append((f"{method.upper()} {path}", content[PROBLEM_JSON]["example"]))
    return found


def _same_kind(example: dict, sent: dict) -> None:
    assert {k: example[k] for k in ("type", "title", "status")} == {
        k: sent[k] for k in ("type", "title", "status")
    }


def test_problem_examples_match_the_problems_the_server_sends(
    client: TestClient, anonymous: TestClient
) -> None:
    spec = client.get("/openapi.json").json()
    no_key = anonymous.get("/studies").json()
    viewer = client.post("/keys", json={"name": "PI laptop", "role": "viewer"}).json()["key"]
    read_only = anonymous.post("/studies", json=STUDY, headers={"X-API-Key": viewer}).json()
    missing = client.get(f"/studies/{uuid.uuid4()}").json()
    invalid = client.post("/studies", json={}).json()
    make_study(client)
    clash = client.post("/studies", json=STUDY).json()
    for status, sent in (
        ("401", no_key),
        ("403", read_only),
        ("404", missing),
        ("409", clash),
        ("422", invalid),
    ):
        assert sent["status"] == int(status), sent
        documented = _examples(spec, status)
        assert documented, status
        for where, example in documented:
            _same_kind(example, sent)
            assert example["detail"], where


def test_conflict_examples_belong_to_their_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for where, example in _examples(spec, "409"):
        if "/comparisons" in where or "/acquisitions" in where:
            assert "study named" not in example["detail"], where
    uploads = dict(_examples(spec, "409"))
    assert (
        "already stored"
        in uploads["PUT /studies/{study_id}/sessions/{session_id}/acquisitions/{click_number}"][
            "detail"
        ]
    )
