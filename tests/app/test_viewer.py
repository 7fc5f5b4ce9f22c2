"""The workspace viewer's routes: image layers and ROI versions of an acquisition."""

from __future__ import annotations

import io
import math

import numpy as np
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from PIL import Image

from tests.app.clicks import FLUXES, post_zip, url


def _upload(client: TestClient, imaging_session: dict, synthetic_zip: bytes) -> tuple[dict, str]:
    created = post_zip(client, imaging_session, synthetic_zip)
    assert created.status_code == 201, created.text
    return created.json(), f"{url(imaging_session)}/{created.json()['id']}"


def test_image_layers_of_a_synthetic_click(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    acquisition, base = _upload(client, imaging_session, synthetic_zip)
    info = client.get(f"{base}/image").json()
    # write_synthetic_click's defaults: a 1920-pixel sensor binned 8×, photograph binned 4×
    assert (info["rows"], info["cols"], info["binning"]) == (240, 240, 8)
    assert (info["sensor_rows"], info["sensor_cols"]) == (1920, 1920)
    assert info["photograph"] == {"rows": 480, "cols": 480, "binning": 4}
    assert info["units"] == "p/s/cm²/sr" and info["calibrated"] is True
    assert_allclose(info["sensor_pixel_cm"], 22.4 / 1920, rtol=1e-9)  # field of view / pixels

    response = client.get(f"{base}/image/radiance")
    assert response.headers["content-type"] == "application/octet-stream"
    assert (response.headers["x-image-rows"], response.headers["x-image-cols"]) == ("240", "240")
    radiance = np.frombuffer(response.content, dtype="<f4").reshape(240, 240)
    # the sources' fluxes are the synthetic truth: Σ radiance × pixel area × 4π sr = Σ flux
    pixel_cm2 = (8 * 22.4 / 1920) ** 2
    total = float(np.sum(radiance, dtype=np.float64)) * pixel_cm2 * 4 * math.pi
    assert_allclose(total, sum(FLUXES), rtol=0.02)
    # the default colour ranges, recomputed with numpy from the layer itself
    positive = radiance[radiance > 0].astype(np.float64)
    assert_allclose(info["scale"]["log"]["max"], np.percentile(positive, 99.9), rtol=1e-6)
    assert_allclose(info["scale"]["log"]["min"], np.percentile(positive, 99.9) / 50, rtol=1e-6)
    assert_allclose(info["scale"]["linear"]["max"], radiance.max(), rtol=1e-6)

    png = client.get(f"{base}/image/photograph.png")
    assert png.headers["content-type"] == "image/png"
    photo = Image.open(io.BytesIO(png.content))
    assert (photo.size, photo.mode) == ((480, 480), "L")

    # the ROIs are those measured, with their geometry in sensor pixels
    assert {r["roi_id"] for r in info["rois"]} == {m["roi_id"] for m in acquisition["measurements"]}
    spine = next(r for r in info["rois"] if r["animal"] == "3467" and r["site"] == "spine")
    assert spine["geometry"]["type"] in {"circle", "ellipse", "rectangle", "polygon"}
    assert 0 < spine["geometry"].get("center_col", 1) < 1920


def test_roi_history_keeps_every_version(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes
) -> None:
    _, base = _upload(client, imaging_session, synthetic_zip)
    roi = client.get(f"{base}/image").json()["rois"][0]
    moved = dict(roi["geometry"])
    moved["center_row"] = moved.get("center_row", 500) + 8
    edited = client.patch(
        f"{base}/rois/{roi['roi_id']}", json={"geometry": moved, "reason": "moved onto the lesion"}
    )
    assert edited.status_code == 200, edited.text
    history = client.get(f"{base}/roi-history").json()
    old = next(v for v in history if v["roi_id"] == roi["roi_id"])
    new = next(v for v in history if v["supersedes_id"] == roi["roi_id"])
    assert old["is_current"] is False and new["is_current"] is True
    assert new["reason"] == "moved onto the lesion"
    assert new["geometry"] == moved
    current = {r["roi_id"] for r in client.get(f"{base}/image").json()["rois"]}
    assert new["roi_id"] in current and roi["roi_id"] not in current


def test_other_labs_and_anonymous_see_nothing(
    client: TestClient,
    other_lab: TestClient,
    anonymous: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
) -> None:
    _, base = _upload(client, imaging_session, synthetic_zip)
    for path in ("/image", "/image/radiance", "/image/photograph.png", "/roi-history"):
        assert other_lab.get(base + path).status_code == 404, path
        assert anonymous.get(base + path).status_code == 401, path


def test_layer_cache_computes_once_and_stays_within_its_bytes() -> None:
    import threading

    from app.viewer.schemas import DefaultScales, ImageRead, ScaleRange
    from app.viewer.service import LayerCache, Layers

    scale = ScaleRange(min=1, max=2)
    info = ImageRead(
        rows=1,
        cols=1,
        binning=1,
        sensor_rows=1,
        sensor_cols=1,
        sensor_pixel_cm=None,
        units="counts",
        calibrated=False,
        photograph=None,
        scale=DefaultScales(log=scale, linear=scale),
        rois=[],
    )
    calls: list[str] = []
    gate = threading.Event()

    def compute(key: str, size: int) -> Layers:
        calls.append(key)
        gate.wait(5)
        return Layers(info, b"x" * size, 1, 1, None)

    cache = LayerCache(max_bytes=250)
    threads = [
        threading.Thread(target=cache.get, args=("a", lambda: compute("a", 100))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["a"]  # four concurrent requests for one image read it once
    cache.get("b", lambda: compute("b", 100))
    cache.get("a", lambda: compute("a", 100))  # a hit: "a" becomes the most recent
    cache.get("c", lambda: compute("c", 100))  # 300 bytes > 250: the oldest ("b") goes
    assert calls == ["a", "b", "c"]
    cache.get("a", lambda: compute("a", 100))
    cache.get("b", lambda: compute("b", 100))
    assert calls == ["a", "b", "c", "b"]
