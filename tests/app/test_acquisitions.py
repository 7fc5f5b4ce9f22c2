"""Reading acquisitions back: the overlay image and the original file, byte for byte."""

from __future__ import annotations

import io

import matplotlib.image
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from tests.app.clicks import ANIMALS, post_zip, url
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


def test_overlay_for_a_paper_svg_print_resolution_and_a_shared_colour_range(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    created = post_zip(client, imaging_session, synthetic_zip).json()
    base = f"{url(imaging_session)}/{created['id']}"
    # the same figure at 300 dpi (print): three times the pixels across (tight bounding box)
    default = matplotlib.image.imread(io.BytesIO(client.get(f"{base}/overlay.png").content))
    printed = client.get(f"{base}/overlay.png", params={"dpi": 300})
    assert printed.status_code == 200, printed.text
    at_300 = matplotlib.image.imread(io.BytesIO(printed.content), format="png")
    assert_allclose(at_300.shape[1] / default.shape[1], 3.0, rtol=0.01)
    # SVG, labelled with ear tag and site
    svg = client.get(f"{base}/overlay.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    text = svg.text
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for animal in ANIMALS:
        assert f"{animal} spine" in text
    # a caller's colour range changes the colours; an incoherent one is refused
    ranged = client.get(f"{base}/overlay.png", params={"vmin": 1e3, "vmax": 1e9})
    assert ranged.status_code == 200
    assert ranged.content != client.get(f"{base}/overlay.png").content
    for params in ({"vmin": 10}, {"vmin": 5e5, "vmax": 1e5}, {"vmin": 0, "vmax": 1e5}):
        assert_problem(client.get(f"{base}/overlay.png", params=params), 422)
    linear = {"vmin": 0, "vmax": 1e5, "scale": "linear"}  # 0 is a linear scale's floor
    assert client.get(f"{base}/overlay.png", params=linear).status_code == 200
