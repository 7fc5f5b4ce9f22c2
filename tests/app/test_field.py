"""Correcting the animals of an acquisition's field: ROIs follow positions, history kept."""

from __future__ import annotations

import math

import numpy as np
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


def test_template_placed_on_one_mouse(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}"
    old_spine = next(
        m for m in created["measurements"] if m["animal"] == ANIMALS[1] and m["site"] == "spine"
    )
    response = client.post(
        f"{base}/template-rois", json={"animal": ANIMALS[1], "reason": "femurs were missing"}
    )
    assert response.status_code == 200, response.text
    mine = {m["site"]: m for m in response.json()["measurements"] if m["animal"] == ANIMALS[1]}
    # imaging.DEFAULT_SITE_TEMPLATE: skull, thorax, spine, both scapulae (one region), femurs
    assert set(mine) == {
        "skull_mandible",
        "thorax",
        "spine",
        "forelimbs_scapula",
        "left_hindlimb",
        "right_hindlimb",
    }
    # imaging.default_hotel: mouse 2's source is an isotropic Gaussian of FLUXES[1] p/s at
    # (10.0 cm, 6.72 cm), σ = 0.25 cm, on 8×-binned pixels of 22.4/240 cm. The "center" rule
    # counts the pixels whose centre lies in the rectangle (checked in its rotated frame), each
    # holding a product of two normal-CDF differences of the source.
    rect = next(
        r["geometry"]
        for r in client.get(f"{base}/image").json()["rois"]
        if r["roi_id"] == mine["spine"]["roi_id"]
    )
    edges = np.arange(241) * 22.4 / 240  # cm
    share_row = np.diff([0.5 * (1 + math.erf((e - 10.0) / (0.25 * math.sqrt(2)))) for e in edges])
    share_col = np.diff([0.5 * (1 + math.erf((e - 6.72) / (0.25 * math.sqrt(2)))) for e in edges])
    centres = (np.arange(240) + 0.5) * 8  # sensor px
    d_row = centres[:, None] - rect["center_row"]
    d_col = centres[None, :] - rect["center_col"]
    t = math.radians(rect["angle_deg"])
    u = d_col * math.cos(t) + d_row * math.sin(t)  # along the rectangle's width
    v = -d_col * math.sin(t) + d_row * math.cos(t)  # along its height
    inside = (np.abs(u) < rect["width"] / 2) & (np.abs(v) < rect["height"] / 2)
    expected = FLUXES[1] * float(np.sum(np.outer(share_row, share_col)[inside]))
    assert_allclose(mine["spine"]["total_flux_ps"], expected, rtol=0.01)
    history = {v["roi_id"]: v for v in client.get(f"{base}/roi-history").json()}
    assert history[old_spine["roi_id"]]["is_current"] is False
    assert history[mine["spine"]["roi_id"]]["supersedes_id"] == old_spine["roi_id"]
    others = [m for m in response.json()["measurements"] if m["animal"] != ANIMALS[1]]
    assert len(others) == len(created["measurements"]) - 1  # the other mice are untouched
    missing = client.post(f"{base}/template-rois", json={"animal": "9999", "reason": "typo"})
    assert missing.status_code == 422
