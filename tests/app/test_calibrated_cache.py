"""The calibrated image of a stored raw file is kept per SHA-256 (app.acquisitions.images
.CALIBRATED) so an ROI edit does not unzip, decode and calibrate the click again. An
optimisation only: an edit measured from the cache equals the same edit measured with the
cache emptied (and both the generator's truth), and the shared arrays cannot be changed."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy.orm import Session

from app.acquisitions.images import CALIBRATED, BoundedCache
from app.models import Roi
from tests.app.clicks import FLUXES, url


def put_click(client: TestClient, session: dict[str, Any], content: bytes) -> dict[str, Any]:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    response = client.put(
        f"{url(session)}/SYN20260715101500",
        content=content,
        headers={"Content-Digest": f"sha-256=:{digest}:", "Content-Type": "application/zip"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_roi_edit_reads_the_raw_file_once_and_measures_the_same(
    client: TestClient,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
    db_session: Session,
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    CALIBRATED.clear()
    stored = put_click(client, imaging_session, synthetic_zip)  # the upload fills the cache
    store = app.state.blob_store
    opened: list[str] = []
    real_open = store.open
    monkeypatch.setattr(store, "open", lambda sha: opened.append(sha) or real_open(sha))
    base = f"{url(imaging_session)}/{stored['id']}/rois"

    def edit(roi_id: str, radius_scale: float) -> dict[str, Any]:
        roi = db_session.get(Roi, uuid.UUID(roi_id))
        assert roi is not None
        geometry = dict(roi.geometry) | {"radius": roi.geometry["radius"] * radius_scale}
        response = client.patch(
            f"{base}/{roi_id}", json={"geometry": geometry, "reason": "bench edit"}
        )
        assert response.status_code == 200, response.text
        return next(
            m
            for m in response.json()["measurements"]
            if m["animal"] == "3467" and m["site"] == "spine"
        )

    spine = next(
        m for m in stored["measurements"] if m["animal"] == "3467" and m["site"] == "spine"
    )
    cached = edit(spine["roi_id"], 0.5)
    again = edit(cached["roi_id"], 2.0)  # back to the original radius
    assert opened == []  # neither edit read the raw file: the upload's calibration was kept
    CALIBRATED.clear()
    fresh = edit(again["roi_id"], 0.5)  # the same geometry as the first edit, from the file
    assert len(opened) == 1
    assert_allclose(fresh["total_flux_ps"], cached["total_flux_ps"], rtol=1e-12)
    assert fresh["flags"] == cached["flags"]  # the exposure QC kept with the image included
    assert_allclose(again["total_flux_ps"], spine["total_flux_ps"], rtol=1e-12)
    assert_allclose(again["total_flux_ps"], FLUXES[1], rtol=0.05)  # the generator's source


def test_cached_arrays_are_read_only_and_the_cache_is_bounded() -> None:
    cache = BoundedCache[np.ndarray](250, size=lambda a: a.nbytes)
    calls: list[str] = []

    def make(name: str) -> np.ndarray:
        calls.append(name)
        return np.zeros(100, dtype=np.uint8)

    for name in ("a", "b", "a", "c", "b"):
        cache.get(name, lambda n=name: make(n))  # type: ignore[misc]
    assert calls == ["a", "b", "c", "b"]  # "b" was the oldest when "c" came: 300 > 250
    with pytest.raises(ValueError, match="failed"):
        cache.get("d", lambda: (_ for _ in ()).throw(ValueError("failed")))
    assert cache.get("d", lambda: make("d")).size == 100  # a failure is not remembered
