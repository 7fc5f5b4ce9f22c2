"""app.responses: the problem examples in the OpenAPI document are what the server really
sends; every CSV the API writes follows one convention and is documented as text/csv."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import httpx2
from fastapi.testclient import TestClient

from app.errors import PROBLEM_JSON
from tests.app.factories import STUDY, make_animal, make_control, make_study


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


# ---------------------------------------------------------------- one CSV convention


def _csv_study(client: TestClient) -> str:
    study = make_study(client)
    control = make_control(client, study["id"])
    for animal in ("m1", "m2"):
        make_animal(client, study["id"], control["id"], animal)
    lines = ["animal,day,site,total_flux_ps", "m1,0,whole_body,1e5", "m2,0,whole_body,3e5"]
    lines += ["m1,7,whole_body,2e6", "m2,7,whole_body,8e6"]
    response = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    return str(study["id"])


def _is_api_csv(response: httpx2.Response) -> list[list[str]]:
    """The answer is CSV by the API's convention: text/csv, CRLF line ends only."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = response.text
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_summary_format_csv_is_the_summary_as_csv(client: TestClient) -> None:
    study = _csv_study(client)
    body = client.get(f"/studies/{study}/summary").json()
    rows = _is_api_csv(client.get(f"/studies/{study}/summary", params={"format": "csv"}))
    header, *data = rows
    assert header[:5] == ["arm", "day", "n", "mean [log10(p/s)]", "sd [log10(p/s)]"]
    assert header[6] == "geometric_mean [p/s]" and header[-1] == "image_combination"
    assert len(data) == len(body["summary"]["rows"]) == 2
    for cells, row in zip(data, body["summary"]["rows"], strict=True):
        by_name = dict(zip(header, cells, strict=True))
        assert by_name["arm"] == row["arm"] and float(by_name["day"]) == row["day"]
        # numbers at full precision: they read back to the JSON's values exactly
        assert float(by_name["geometric_mean [p/s]"]) == row["geometric_mean"]
        assert float(by_name["mean [log10(p/s)]"]) == row["mean"]
    refused = client.get(f"/studies/{study}/summary", params={"format": "xlsx"})
    assert refused.status_code == 422


def test_file_suffix_paths_are_aliases_of_the_format_parameter(client: TestClient) -> None:
    study = _csv_study(client)
    alias = client.get(f"/studies/{study}/export/prism.csv")
    canonical = client.get(f"/studies/{study}/export/prism", params={"format": "csv"})
    assert alias.content == canonical.content
    assert alias.headers["content-disposition"] == canonical.headers["content-disposition"]
    rows = _is_api_csv(canonical)
    assert rows[0] == ["Day (total_flux_ps [p/s])", "Isotype IgG1", ""]
    assert rows[1] == ["day", "m1", "m2"]
    assert rows[2:] == [["0", "100000.0", "300000.0"], ["7", "2000000.0", "8000000.0"]]


def test_audit_csv_follows_the_convention(client: TestClient) -> None:
    study = _csv_study(client)
    rows = _is_api_csv(client.get(f"/studies/{study}/audit", params={"format": "csv"}))
    header, *events = rows
    assert header[0] == "at" and events
    # times in ISO 8601 ('T' between date and time), as in the JSON
    assert all("T" in e[0] for e in events)
    json_at = client.get(f"/studies/{study}/audit", params={"order": "asc"}).json()["items"]
    assert {e[0] for e in events} == {
        dt.datetime.fromisoformat(e["at"]).isoformat() for e in json_at
    }


def test_every_csv_answer_is_documented_as_text_csv(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    csv_operations = {
        ("get", "/studies/{study_id}/summary"),
        ("get", "/studies/{study_id}/series"),
        ("get", "/studies/{study_id}/measurements"),
        ("get", "/studies/{study_id}/comparisons/{comparison_id}/inputs"),
        ("get", "/studies/{study_id}/comparisons/{comparison_id}/tables/{table}"),
        ("get", "/studies/{study_id}/export/prism"),
        ("get", "/studies/{study_id}/export/prism.csv"),
        ("get", "/audit"),
        ("get", "/studies/{study_id}/audit"),
    }
    for method, path in csv_operations:
        operation = spec["paths"][path][method]
        content = operation["responses"]["200"]["content"]
        assert "text/csv" in content, path
        fmt = next(p for p in operation["parameters"] if p["name"] == "format")
        assert "csv" in str(fmt["schema"]), path
    # A CSV-only route does not claim to answer JSON.
    for path in (
        "/studies/{study_id}/export/prism",
        "/studies/{study_id}/comparisons/{comparison_id}/tables/{table}",
    ):
        assert list(spec["paths"][path]["get"]["responses"]["200"]["content"]) == ["text/csv"]
