"""Reading acquisitions back: the overlay image and the original file, byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.image
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES, post_zip, url, zip_folder
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
    # one route: ?format= chooses, the file suffix is its alias (same bytes for a PNG)
    assert client.get(f"{base}/overlay").content == client.get(f"{base}/overlay.png").content
    as_svg = client.get(f"{base}/overlay", params={"format": "svg"})
    assert as_svg.headers["content-type"] == "image/svg+xml" and "3466 spine" in as_svg.text
    for wrong in (f"{base}/overlay.jpg", f"{base}/overlay?format=jpg"):
        assert_problem(client.get(wrong), 422)


def test_image_sequence_of_one_animal_and_of_one_arm(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    tmp_path: Path,
    other_lab: TestClient,
) -> None:
    study = imaging_session["study_id"]
    post_zip(client, imaging_session, synthetic_zip)  # day 14
    later = client.post(
        f"/studies/{study}/sessions", json={"acquired_at": "2026-07-22T10:15:00+02:00"}
    ).json() | {"study_id": study}
    mice, sources = default_hotel(tuple(2 * f for f in FLUXES))
    click = write_synthetic_click(
        tmp_path / "SYN2", mice=mice, sources=sources, click_number="SYN20260722101500"
    )
    assert post_zip(client, later, zip_folder(click.path)).status_code == 201  # day 21
    base = f"/studies/{study}/sequence"
    svg = client.get(f"{base}.svg", params={"animal": "3466"})
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"] == "image/svg+xml"
    # one panel per day, the chosen animal's ROIs only
    assert "day 14" in svg.text and "day 21" in svg.text
    assert "3466 spine" in svg.text and "3467 spine" not in svg.text
    png = client.get(f"{base}.png", params={"animal": "3466", "vmin": 1e3, "vmax": 1e8})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert matplotlib.image.imread(io.BytesIO(png.content), format="png").shape[1] > 600
    arms = client.get(f"/studies/{study}/arms").json()["items"]
    treated = next(a for a in arms if a["role"] == "treatment")  # 3469 and 3470
    by_arm = client.get(f"{base}.svg", params={"arm_id": treated["id"]})
    assert by_arm.status_code == 200, by_arm.text
    assert "3469 spine" in by_arm.text and "3466 spine" not in by_arm.text
    for params in ({}, {"animal": "3466", "arm_id": treated["id"]}, {"animal": "3466", "vmin": 1}):
        assert_problem(client.get(f"{base}.png", params=params), 422)
    assert_problem(client.get(f"{base}.png", params={"animal": "9999"}), 404)
    assert_problem(client.get(f"{base}.png", params={"animal": "3466", "view": "ventral"}), 404)
    assert_problem(other_lab.get(f"{base}.png", params={"animal": "3466"}), 404)
