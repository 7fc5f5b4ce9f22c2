"""Reading acquisitions back: the overlay image and the original file, byte for byte."""

from __future__ import annotations

import io

import matplotlib.image
from fastapi.testclient import TestClient

from tests.app.clicks import post_zip, url
from tests.app.problems import assert_problem


def test_read_back_overlay_and_original(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, other_lab: TestClient
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}"
    assert client.get(base).json()["measurements"] == created["measurements"]
    assert [a["id"] for a in client.get(url(imaging_session)).json()] == [created["id"]]
    original = client.get(f"{base}/original")
    assert original.status_code == 200
    assert original.content == synthetic_zip
    assert original.headers["content-type"] == "application/zip"
    overlay = client.get(f"{base}/overlay.png")
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    pixels = matplotlib.image.imread(io.BytesIO(overlay.content), format="png")
    assert pixels.shape[0] > 300
    for path in (base, f"{base}/original", f"{base}/overlay.png"):
        assert_problem(other_lab.get(path), 404)
