"""Request bodies for a realistic bone-metastasis study, and helpers to create them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

STUDY = {
    "name": "BM-01 anti-TGF-β 1D11 in MDA-MB-231 intracardiac",
    "cell_line": "MDA-MB-231-luc-1833",
    "injection_model": "intracardiac",
    "day0": "2026-07-01",
    "iacuc_number": "IACUC-2025-0412",
}


def make_study(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/studies", json=STUDY | overrides)
    assert response.status_code == 201, response.text
    return response.json()


def make_control(client: TestClient, study_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Isotype IgG1", "role": "control", "agent_class": "isotype_control"}
    response = client.post(f"/studies/{study_id}/arms", json=body | overrides)
    assert response.status_code == 201, response.text
    return response.json()


def make_treatment(
    client: TestClient, study_id: str, control_id: str, **overrides: Any
) -> dict[str, Any]:
    body = {
        "name": "1D11 10 mg/kg",
        "role": "treatment",
        "agent_class": "neutralizing_antibody",
        "agent": "1D11",
        "target": "TGF-β",
        "dose": 10,
        "dose_unit": "mg/kg",
        "control_arm_id": control_id,
    }
    response = client.post(f"/studies/{study_id}/arms", json=body | overrides)
    assert response.status_code == 201, response.text
    return response.json()


def make_animal(
    client: TestClient, study_id: str, arm_id: str, identifier: str, **overrides: Any
) -> dict[str, Any]:
    body = {"identifier": identifier, "arm_id": arm_id, "sex": "female", "strain": "NSG"}
    response = client.post(f"/studies/{study_id}/animals", json=body | overrides)
    assert response.status_code == 201, response.text
    return response.json()
