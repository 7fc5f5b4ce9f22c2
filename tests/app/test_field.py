"""Correcting the animals of an acquisition's field: ROIs follow positions, history kept."""

from __future__ import annotations

from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from tests.app.clicks import ANIMALS, FLUXES, post_zip, url


def _spine_flux(acquisition: dict) -> dict[str, float]:
    return {
        m["animal"]: m["total_flux_ps"] for m in acquisition["measurements"] if m["site"] == "spine"
    }


def test_swapping_two_mice_moves_their_rois_and_keeps_history(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}"
    # the synthetic truth: mouse i (left to right) carries FLUXES[i]
    assert_allclose([_spine_flux(created)[a] for a in ANIMALS], FLUXES, rtol=0.02)
    swapped = [ANIMALS[1], ANIMALS[0], *ANIMALS[2:]]
    response = client.put(
        f"{base}/field", json={"animals": swapped, "reason": "mice 1 and 2 swapped on the stage"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["identifier"] for a in body["animals"]] == swapped
    flux = _spine_flux(body)
    assert_allclose([flux[a] for a in swapped], FLUXES, rtol=0.02)  # the signal stayed put
    labels = {m["animal"]: m["label"] for m in body["measurements"] if m["site"] == "spine"}
    assert labels[ANIMALS[0]].startswith(ANIMALS[0])
    history = client.get(f"{base}/roi-history").json()
    retired = [v for v in history if not v["is_current"]]
    assert len(retired) == 2 and {v["animal"] for v in retired} == set(ANIMALS[:2])
    new = [v for v in history if v["supersedes_id"] in {r["roi_id"] for r in retired}]
    assert {v["reason"] for v in new} == {"mice 1 and 2 swapped on the stage"}
    events = client.get(
        f"/studies/{imaging_session['study_id']}/audit", params={"object_type": "acquisition"}
    ).json()["items"]
    change = next(e for e in events if e["action"] == "update")
    assert change["changes"]["animals"] == [ANIMALS, swapped]
    assert change["reason"] == "mice 1 and 2 swapped on the stage"


def test_bad_corrections_change_nothing(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}"
    for body, status in (
        ({"animals": ["9999", *ANIMALS[1:]], "reason": "typo"}, 422),
        ({"animals": [ANIMALS[0], ANIMALS[0]], "reason": "twice"}, 422),
        ({"animals": ANIMALS, "reason": ""}, 422),
    ):
        response = client.put(f"{base}/field", json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get(base).json() == client.get(base).json() | {
        "animals": created["animals"],
        "measurements": created["measurements"],
    }
