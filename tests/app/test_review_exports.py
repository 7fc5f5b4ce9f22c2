"""Review of study exports: deleting one checks the references of its files in one query
(not once per file); the overlays' study-wide colour range is chosen with one image in
memory at a time and equals ``imaging.colour_range`` (numpy's percentiles) over every
image's pixels pooled."""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import types
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy import Connection

import imaging
from app.exports import parts
from app.exports.colour_range import NoPixels, study_colour_range
from tests.app.clicks import FLUXES, post_zip
from tests.app.jobs import finished
from tests.app.test_analysis_api import study  # noqa: F401
from tests.app.test_exports import _click, _export
from tests.app.test_query_counts import counting
from tests.app.test_tiff_upload import metadata, radiance_image, target, tiff_bytes  # noqa: F401
from tests.app.test_tiff_upload import post as post_tiff


def test_deleting_an_export_checks_its_files_references_in_one_query(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_connection: Connection,
) -> None:
    job = finished(client, _export(client, study["id"]))
    files = len(job["result"]["files"]) + 1  # and the ZIP
    assert files >= 5
    with counting(db_connection) as statements:
        deleted = client.delete(job["result_url"], headers={"X-Change-Reason": "wrong sites"})
    assert deleted.status_code == 204, deleted.text
    # the anti-join over every referencing table names the audit trail's changes once
    checks = [s for s in statements if "json_each" in s or "json_array_elements" in s]
    assert len(checks) == 1, f"{len(checks)} reference checks for {files} files"


def _images(seed: int) -> list[np.ndarray]:
    """Radiance-like images: a skewed background with negatives, zeros, ties, NaN and inf,
    bright spots, in float32 (as calibrated) and one in float64."""
    rng = np.random.default_rng(seed)
    images = []
    for rows, cols in ((40, 50), (64, 64), (13, 7)):
        image = rng.lognormal(mean=8, sigma=2, size=(rows, cols)) - 500
        image[rng.random(image.shape) < 0.05] = 0.0
        image[rng.random(image.shape) < 0.02] = np.nan
        image[0, :3] = (np.inf, -np.inf, -0.0)
        image[1, :] = 1234.5  # ties
        images.append(image.astype(np.float32))
    images.append(images[0].astype(np.float64) * 3.0)
    return images


@pytest.mark.parametrize("scale", ["log", "linear"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_streamed_colour_range_is_imaging_colour_range_over_every_pixel(
    scale: str, seed: int
) -> None:
    images = _images(seed)
    streamed = study_colour_range(lambda: iter(images), scale=scale)  # type: ignore[arg-type]
    pooled = imaging.colour_range(
        [types.SimpleNamespace(radiance=i) for i in images],  # type: ignore[misc]
        scale=scale,  # type: ignore[arg-type]
    )
    assert_allclose(streamed, pooled, rtol=1e-12)
    # and numpy on the pixels pooled by hand (imaging's definition, independently)
    finite = np.concatenate([i[np.isfinite(i)].astype(np.float64) for i in images])
    if scale == "log":
        hi = np.percentile(finite[finite > 0], 99.9)
        assert_allclose(streamed, (hi / 50, hi), rtol=1e-12)
    else:
        assert_allclose(streamed, (np.median(finite), np.percentile(finite, 99.9)), rtol=1e-12)


def test_a_single_pixel_and_no_pixel() -> None:
    one = [np.array([[np.nan, -3.0, 7.0]], dtype=np.float32)]
    assert_allclose(study_colour_range(lambda: iter(one), scale="log"), (7 / 50, 7), rtol=1e-15)
    dark = [np.array([[0.0, -1.0]]), np.array([[np.nan]])]
    with pytest.raises(NoPixels, match="no positive pixel"):
        study_colour_range(lambda: iter(dark), scale="log")


def test_the_overlays_colour_range_holds_one_image_at_a_time(
    client: TestClient,
    imaging_session: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for number in ("SYN20260715101500", "SYN20260715103000", "SYN20260715104500"):
        stored = post_zip(client, imaging_session, _click(tmp_path, number, FLUXES))
        assert stored.status_code == 201, stored.text
    loaded: list[weakref.ref[np.ndarray]] = []
    most_alive = 0
    original = parts.load_calibrated

    def load(*args: Any) -> Any:
        nonlocal most_alive
        gc.collect()
        most_alive = max(most_alive, sum(ref() is not None for ref in loaded))
        click, image = original(*args)
        own = dataclasses.replace(image, radiance=image.radiance.copy())  # not the cache's
        loaded.append(weakref.ref(own.radiance))
        return click, own

    monkeypatch.setattr(parts, "load_calibrated", load)
    job = finished(client, _export(client, imaging_session["study_id"], overlays=True))
    assert job["state"] == "succeeded", job
    assert len(loaded) >= 3
    assert most_alive <= 1, f"{most_alive} images in memory at once"


def test_overlays_of_images_with_the_same_name_are_two_files(
    client: TestClient,
    target: str,  # noqa: F811
) -> None:
    """Two TIFFs the instrument named alike (or whose names differ only in characters a file
    name cannot hold) on the same day and view: each overlay is its own file in the ZIP."""
    study_id = target.split("/")[2]
    for name, scale in (("LagoX 0001", 1.0), ("LagoX/0001", 2.0)):
        content = tiff_bytes((radiance_image() * scale).astype(np.float32))
        meta = metadata(units="p/s/cm²/sr", c_ccd=None, exposure_s=None, bias_counts=None)
        stored = post_tiff(client, target, content, meta.replace("LagoX-0001", name))
        assert stored.status_code == 201, stored.text
    job = finished(client, _export(client, study_id, overlays=True, comparisons=False))
    assert job["state"] == "succeeded", job
    archive = zipfile.ZipFile(io.BytesIO(client.get(job["result_url"]).content))
    names = archive.namelist()
    overlays = [n for n in names if n.startswith("overlays/")]
    assert len(overlays) == 2 and len(set(names)) == len(names), names
    listed = [f["path"] for f in json.loads(archive.read("MANIFEST.json"))["files"]]
    assert sorted(listed) == sorted(n for n in names if n != "MANIFEST.json")
