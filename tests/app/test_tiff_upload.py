"""A TIFF plus JSON metadata from another instrument: read in its stated units, calibrated only
with the constants given, measured in the given ROIs — checked against analytic flux."""

from __future__ import annotations

import hashlib
import io
import json
import math

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy.orm import Session

from app.models import Acquisition, Blob, Measurement, Roi
from tests.app.factories import make_animal, make_control, make_study
from tests.app.problems import assert_problem, row_counts

FOV_CM, SENSOR_PIXELS, BINNING = 20.0, 1024, 4  # 256 × 256 image
PIXEL_CM = FOV_CM / SENSOR_PIXELS * BINNING
EXPOSURE_S, C_CCD, BIAS = 30.0, 6.0e5, 500.0
FLUX_PS = 3.0e7


def radiance_image() -> np.ndarray:
    """A Gaussian source of total flux FLUX_PS centred at image pixel (100, 80), σ = 4 px."""
    rows, cols = np.mgrid[0:256, 0:256]
    spot = np.exp(-((rows - 100) ** 2 + (cols - 80) ** 2) / (2 * 4.0**2))
    spot /= spot.sum()
    # total flux = Σ L · A_pixel · 4π  ⇒  L = F · spot / (A_pixel · 4π)
    return FLUX_PS * spot / (PIXEL_CM**2 * 4 * math.pi)


def tiff_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image)
    return buffer.getvalue()


def metadata(**overrides: object) -> str:
    # The source at binned pixel (100, 80) is at sensor (row, col) = (100.5 × 4, 80.5 × 4).
    meta = {
        "name": "LagoX-0001",
        "units": "counts",
        "binning": BINNING,
        "fov_cm": FOV_CM,
        "sensor_pixels": SENSOR_PIXELS,
        "exposure_s": EXPOSURE_S,
        "c_ccd": C_CCD,
        "bias_counts": BIAS,
        "view": "dorsal",
        "animals": ["m1", "m2"],
        "rois": [
            {
                "animal": "m1",
                "site": "spine",
                "label": "m1 spine",
                "geometry": {
                    "type": "circle",
                    "center_row": 402.0,
                    "center_col": 322.0,
                    "radius": 80.0,
                },
            },
            {
                "animal": "m2",
                "site": "spine",
                "geometry": {
                    "type": "circle",
                    "center_row": 402.0,
                    "center_col": 822.0,
                    "radius": 80.0,
                },
            },
        ],
    }
    return json.dumps(meta | overrides)


@pytest.fixture
def target(client: TestClient) -> str:
    study = make_study(client)
    control = make_control(client, study["id"])
    for animal in ("m1", "m2"):
        make_animal(client, study["id"], control["id"], animal)
    session = client.post(
        f"/studies/{study['id']}/sessions", json={"acquired_at": "2026-07-08T09:00:00+01:00"}
    ).json()
    return f"/studies/{study['id']}/sessions/{session['id']}/acquisitions/tiff"


def post(client: TestClient, target: str, content: bytes, meta: str):  # type: ignore[no-untyped-def]
    return client.post(
        target, files={"file": ("lago.tif", content, "image/tiff")}, data={"metadata": meta}
    )


def test_counts_calibrated_with_given_constants(client: TestClient, target: str) -> None:
    counts = radiance_image() * EXPOSURE_S * BINNING**2 / C_CCD + BIAS  # the camera model, inverted
    content = tiff_bytes(counts.astype(np.float32))
    response = post(client, target, content, metadata())
    assert response.status_code == 201, response.text
    by_animal = {m["animal"]: m for m in response.json()["measurements"]}
    assert_allclose(by_animal["m1"]["total_flux_ps"], FLUX_PS, rtol=0.01)
    assert abs(by_animal["m2"]["total_flux_ps"]) < 1e-3 * FLUX_PS  # an empty ROI
    assert by_animal["m1"]["units"] == "p/s/cm²/sr"
    assert response.json()["click_number"] == "LagoX-0001"
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_radiance_tiff(client: TestClient, target: str) -> None:
    meta = metadata(units="p/s/cm²/sr", c_ccd=None, exposure_s=None, bias_counts=None)
    response = post(client, target, tiff_bytes(radiance_image().astype(np.float32)), meta)
    assert response.status_code == 201, response.text
    m1 = next(m for m in response.json()["measurements"] if m["animal"] == "m1")
    assert_allclose(m1["total_flux_ps"], FLUX_PS, rtol=1e-4)
    overlay = client.get(target.removesuffix("/tiff") + f"/{response.json()['id']}/overlay.png")
    assert overlay.status_code == 200 and overlay.content.startswith(b"\x89PNG")


def test_counts_without_constants_stay_uncalibrated(client: TestClient, target: str) -> None:
    meta = metadata(c_ccd=None, exposure_s=None, bias_counts=None)
    response = post(client, target, tiff_bytes(np.full((256, 256), 600, np.uint16)), meta)
    assert response.status_code == 201, response.text
    for m in response.json()["measurements"]:
        assert m["total_flux_ps"] is None
        assert "uncalibrated" in m["flags"]
        assert m["units"] == "counts"


@pytest.mark.parametrize(
    ("content", "meta", "fragments"),
    [
        (None, "{not json", ["metadata"]),
        (None, metadata(c_ccd=5.0, bias_counts=None), ["bias_counts"]),
        (None, metadata(units="photons"), ["metadata.units"]),
        (None, metadata(animals=["m1"]), ["not listed: m2"]),
        (None, metadata(animals=["m1", "m2", "m9"]), ["m9", "not in this study"]),
        (b"II*\x00garbage", metadata(), ["lago.tif"]),
        (None, metadata(extra_field=1), ["extra_field"]),
    ],
)
def test_bad_uploads_leave_nothing(
    client: TestClient,
    target: str,
    db_session: Session,
    content: bytes | None,
    meta: str,
    fragments: list[str],
) -> None:
    before = row_counts(db_session, Acquisition, Roi, Measurement, Blob)
    body = content if content is not None else tiff_bytes(np.zeros((256, 256), np.float32))
    assert_problem(post(client, target, body, meta), 422, *fragments)
    assert row_counts(db_session, Acquisition, Roi, Measurement, Blob) == before


def test_tiff_over_the_pixel_limit(
    client: TestClient, target: str, app, db_session: Session
) -> None:  # type: ignore[no-untyped-def]
    app.state.settings.max_image_pixels = 256 * 255  # one row short of the 256 × 256 image
    before = row_counts(db_session, Acquisition, Roi, Measurement, Blob)
    response = post(client, target, tiff_bytes(np.zeros((256, 256), np.float32)), metadata())
    assert_problem(response, 422, "lago.tif")
    assert row_counts(db_session, Acquisition, Roi, Measurement, Blob) == before
