"""Uploading IVIS clicks: stored unchanged, ROIs on the right mice, quantified on arrival,
checked against the synthetic generator's known source flux and Living Image's own numbers."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Acquisition, AcquisitionFile, Blob, IdempotencyRecord, Measurement, Roi
from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES, post_zip, url, zip_folder
from tests.app.factories import make_animal, make_control, make_study
from tests.app.problems import assert_problem, row_counts

TABLES = (Acquisition, AcquisitionFile, Roi, Measurement, Blob)


def stored_blob_files(app) -> list[Path]:  # type: ignore[no-untyped-def]
    root = app.state.blob_store.root
    return (
        [p for p in root.rglob("*") if p.is_file() and "staging" not in p.parts]
        if root.exists()
        else []
    )


def test_upload_quantifies_each_mouse(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, app
) -> None:  # type: ignore[no-untyped-def]
    response = post_zip(client, imaging_session, synthetic_zip)
    assert response.status_code == 201, response.text
    acquisition = response.json()
    assert acquisition["sha256"] == hashlib.sha256(synthetic_zip).hexdigest()
    assert [a["identifier"] for a in acquisition["animals"]] == ANIMALS  # left to right
    assert acquisition["click_number"] == "SYN20260715101500"
    assert [s["name"] for s in acquisition["calibration"]][:1] == ["bias"]
    spine = {m["animal"]: m for m in acquisition["measurements"] if m["site"] == "spine"}
    assert sorted(spine) == ANIMALS
    # Independent reference: the flux the generator put into each mouse's spine source.
    for animal, flux in zip(ANIMALS, FLUXES, strict=True):
        assert_allclose(spine[animal]["total_flux_ps"], flux, rtol=0.02)
        assert spine[animal]["roi_source"] == "living_image"
        assert spine[animal]["units"] == "p/s/cm²/sr"
    # The zip is kept exactly as uploaded, content-addressed.
    path = app.state.blob_store.path_for(acquisition["sha256"])
    assert path.read_bytes() == synthetic_zip
    # ... and the series sees the new measurements on day 14.
    series = client.get(
        f"/studies/{imaging_session['study_id']}/series", params={"site": "spine"}
    ).json()
    assert {(p["animal"], p["day"]) for p in series["points"]} == {(a, 14) for a in ANIMALS}


def test_living_image_rois_drawn_for_another_pixel_size_are_422(
    client: TestClient, imaging_session: dict, tmp_path: Path, db_session: Session, app
) -> None:  # type: ignore[no-untyped-def]
    # An ROI line's "cm per pixel" is the sensor pixel size it was drawn for; one that
    # disagrees with the click's (22.4 cm / 1920 px) would measure the wrong region.
    mice, sources = default_hotel(FLUXES)
    click = write_synthetic_click(
        tmp_path / "c", mice=mice, sources=sources, click_number="SYN20260715101800"
    ).path
    analyzed = click / "AnalyzedClickInfo.txt"
    text = analyzed.read_text(encoding="cp1252")
    assert "cm per pixel=0.011666666667" in text
    analyzed.write_text(
        text.replace("cm per pixel=0.011666666667", "cm per pixel=0.0125"), "cp1252"
    )
    before = row_counts(db_session, *TABLES)

    response = post_zip(client, imaging_session, zip_folder(click))

    assert_problem(response, 422, "0.0125 cm per pixel", "another field of view")
    assert row_counts(db_session, *TABLES) == before
    assert stored_blob_files(app) == []


@pytest.mark.parametrize(
    ("label", "view"),
    [
        ("Dorsal", "dorsal"),
        ("Left", "lateral_left"),
        ("lateral right", "lateral_right"),
        ("", "other"),
        ("Left and right", "other"),
    ],
)
def test_the_clicks_view_label_sets_the_view(
    client: TestClient, imaging_session: dict, tmp_path: Path, label: str, view: str
) -> None:
    mice, sources = default_hotel(FLUXES)
    click = write_synthetic_click(
        tmp_path / "c", mice=mice, sources=sources, click_number="SYN20260715101700"
    ).path
    for name in ("ClickInfo.txt", "AnalyzedClickInfo.txt"):
        text = (click / name).read_text(encoding="cp1252")
        assert "View:\tDorsal" in text
        (click / name).write_text(text.replace("View:\tDorsal", f"View:\t{label}"), "cp1252")

    response = post_zip(client, imaging_session, zip_folder(click))

    assert response.status_code == 201, response.text
    assert response.json()["view"] == view


def test_without_living_image_rois_the_mice_are_found(
    client: TestClient, imaging_session: dict, tmp_path: Path
) -> None:
    mice, sources = default_hotel(FLUXES)
    click = write_synthetic_click(
        tmp_path / "c", mice=mice, sources=sources, click_number="SYN20260715101600"
    )
    response = post_zip(
        client, imaging_session, zip_folder(click.path, skip=("AnalyzedClickInfo.txt",))
    )
    assert response.status_code == 201, response.text
    measurements = response.json()["measurements"]
    whole = {m["animal"]: m["total_flux_ps"] for m in measurements if m["site"] == "whole_body"}
    assert sorted(whole) == ANIMALS
    for animal, flux in zip(ANIMALS, FLUXES, strict=True):
        assert_allclose(whole[animal], flux, rtol=0.02)  # the body encloses its only source
    sites = {m["site"] for m in measurements}
    assert {
        "skull_mandible",
        "spine",
        "thorax",
        "forelimbs_scapula",
        "left_hindlimb",
        "right_hindlimb",
    } <= sites
    assert all(m["roi_source"] == "automatic" for m in measurements)
    # one forelimbs/scapula ROI per mouse (both scapulae as one region)
    assert sum(m["site"] == "forelimbs_scapula" for m in measurements) == len(ANIMALS)
    # one background ROI per image, on no mouse, at the level of the empty field
    background = [m for m in measurements if m["site"] == "background"]
    assert len(background) == 1 and background[0]["animal"] is None
    dimmest = min(m["radiance_mean"] for m in measurements if m["site"] == "spine")
    assert abs(background[0]["radiance_mean"]) < 0.01 * dimmest


def test_same_click_twice_is_stored_once(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, db_session: Session
) -> None:
    first = post_zip(client, imaging_session, synthetic_zip).json()
    before = row_counts(db_session, *TABLES)
    again = post_zip(client, imaging_session, synthetic_zip, name="renamed.zip")
    assert again.status_code == 200 and again.json()["already_stored"] is True
    assert again.json()["id"] == first["id"]
    assert row_counts(db_session, *TABLES) == before


@pytest.mark.parametrize(
    ("make", "status", "fragments"),
    [
        (lambda z: z[: len(z) // 2], 422, ["click.zip"]),
        (lambda z: b"not a zip at all", 422, ["click.zip"]),
        (lambda z: _slip(), 422, ["click.zip"]),
        (lambda z: _without(z, "ClickInfo.txt"), 422, ["ClickInfo.txt"]),
    ],
)
def test_bad_zips_leave_nothing(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    db_session: Session,
    app,
    make,
    status: int,
    fragments: list[str],
) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(db_session, *TABLES)
    assert_problem(post_zip(client, imaging_session, make(synthetic_zip)), status, *fragments)
    assert row_counts(db_session, *TABLES) == before
    assert stored_blob_files(app) == []


def _slip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/ClickInfo.txt", "evil")
    return buffer.getvalue()


def _without(content: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith(name):
                dst.writestr(item, src.read(item))
    return out.getvalue()


def test_animals_not_in_the_study(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, db_session: Session, app
) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(db_session, *TABLES)
    assert_problem(
        post_zip(client, imaging_session, synthetic_zip, animals="3466,3467,3468,3469,9999"),
        422,
        "9999",
        "not in this study",
    )
    assert_problem(
        post_zip(client, imaging_session, synthetic_zip, animals="3466,3467,3468,3469,3470,3466"),
        422,
        "twice",
    )
    assert row_counts(db_session, *TABLES) == before
    assert stored_blob_files(app) == []


def test_more_animals_than_mice(client: TestClient, imaging_session: dict, tmp_path: Path) -> None:
    mice, sources = default_hotel(FLUXES[:3])
    click = write_synthetic_click(
        tmp_path / "c3", mice=mice, sources=sources, click_number="SYN20260715101700"
    )
    response = post_zip(client, imaging_session, zip_folder(click.path), animals=",".join(ANIMALS))
    assert_problem(response, 422, "found 3 animal bodies", "5 animals are listed")


def digest(content: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(content).digest()).decode()}:"


def test_put_with_content_digest(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, db_session: Session, app
) -> None:  # type: ignore[no-untyped-def]
    target = f"{url(imaging_session)}/SYN20260715101500"
    before = row_counts(db_session, *TABLES)
    corrupted = synthetic_zip[:-10] + b"0123456789"
    bad = client.put(target, content=corrupted, headers={"Content-Digest": digest(synthetic_zip)})
    assert_problem(bad, 400, "Content-Digest", "send it again")
    assert row_counts(db_session, *TABLES) == before
    assert stored_blob_files(app) == []
    assert_problem(
        client.put(target, content=synthetic_zip, headers={"Content-Digest": "md5=:abc:"}), 400
    )
    good = client.put(
        target, content=synthetic_zip, headers={"Content-Digest": digest(synthetic_zip)}
    )
    assert good.status_code == 201, good.text
    again = client.put(
        target, content=synthetic_zip, headers={"Content-Digest": digest(synthetic_zip)}
    )
    assert again.status_code == 200 and again.json()["id"] == good.json()["id"]
    wrong_name = client.put(
        f"{url(imaging_session)}/OTHER123",
        content=synthetic_zip,
        headers={"Content-Digest": digest(synthetic_zip)},
    )
    assert wrong_name.status_code == 200  # same content: recognised before the name matters


def test_viewer_cannot_upload_other_lab_cannot_see(
    client: TestClient,
    other_lab: TestClient,
    anonymous: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
) -> None:
    key = client.post("/keys", json={"name": "PI", "role": "viewer"}).json()["key"]
    response = anonymous.post(
        url(imaging_session), files={"file": ("c.zip", synthetic_zip)}, headers={"X-API-Key": key}
    )
    assert_problem(response, 403)
    assert_problem(post_zip(other_lab, imaging_session, synthetic_zip), 404)


def test_living_image_reference_click(client: TestClient, ivis_reference_folder: Path) -> None:
    """The real IVIS export and the total flux Living Image printed for its five ROIs."""
    study = make_study(client, name="reference", day0="2021-12-20")
    control = make_control(client, study["id"])
    for animal in ANIMALS:
        make_animal(client, study["id"], control["id"], animal)
    session = client.post(
        f"/studies/{study['id']}/sessions", json={"acquired_at": "2022-01-05T11:42:35+00:00"}
    ).json()
    s = session | {"study_id": study["id"]}
    response = post_zip(client, s, zip_folder(ivis_reference_folder), name="DG20220105114235.zip")
    assert response.status_code == 201, response.text
    by_roi = {m["label"]: m for m in response.json()["measurements"]}
    rois = [by_roi[f"ROI {i}"] for i in range(1, 6)]
    # Issue 13: the stored numbers are Living Image's own calibration (its corrected image),
    # equal to the total flux it printed on DG20220105114235.PNG to within 0.01 % (the printed
    # values' 4 digits round by ≤ 0.02 %; measured: ≤ 0.008 %). Before, from the raw counts:
    # 2.428e5, 9.486e6, 7.718e6, 4.539e5, 9.246e4 (+2.5, +1.7, −2.2, +2.1, +25 %).
    printed = [2.370e5, 9.330e6, 7.892e6, 4.445e5, 7.398e4]
    assert_allclose([m["total_flux_ps"] for m in rois], printed, rtol=1e-4)
    assert {m["calibration_source"] for m in rois} == {"living_image_corrected"}
    assert {m["method"] for m in rois} == {"imaging.quantify_click:living_image_corrected:center"}
    # the raw-count calibration beside it; only the faintest mouse is beyond the tolerance
    raw = [m["raw_total_flux_ps"] for m in rois]
    assert_allclose(raw[:4], printed[:4], rtol=0.03)
    assert_allclose(raw[4] / printed[4] - 1, 0.25, atol=0.01)
    assert ["calibration_disagrees" in m["flags"] for m in rois] == [False] * 4 + [True]
    # a background square on the empty stage gives every ROI its detection limit: the
    # faintest mouse (7.4e4 p/s, nude-mouse autoluminescence) is below it, ROI 1 is not
    assert [m["animal"] for m in by_roi.values() if m["site"] == "background"] == [None]
    assert ["below_detection" in m["flags"] for m in rois] == [False] * 4 + [True]
    limits = [m["detection_limit_ps"] for m in rois]
    assert all(printed[4] < limit < printed[0] for limit in limits)
    assert [m["animal"] for m in rois] == ANIMALS  # ROIs lie left to right


def test_idempotency_key(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    db_session: Session,
    tmp_path: Path,
) -> None:
    headers = {"Idempotency-Key": "ivis-pc-2026-07-15-click-1"}
    first = client.post(
        url(imaging_session), files={"file": ("c.zip", synthetic_zip)}, headers=headers
    )
    assert first.status_code == 201
    before = row_counts(db_session, *TABLES)
    retry = client.post(
        url(imaging_session), files={"file": ("c.zip", synthetic_zip)}, headers=headers
    )
    assert retry.status_code == 201  # the original response, replayed
    assert retry.json() == first.json()
    assert row_counts(db_session, *TABLES) == before
    mice, sources = default_hotel(FLUXES)
    other = write_synthetic_click(
        tmp_path / "o", mice=mice, sources=sources, click_number="SYN20260715102000"
    )
    reused = client.post(
        url(imaging_session), files={"file": ("o.zip", zip_folder(other.path))}, headers=headers
    )
    assert_problem(reused, 422, "already used for a different request")
    assert row_counts(db_session, *TABLES) == before


def test_a_replay_remembered_by_an_older_version_is_409_not_500(
    client: TestClient, imaging_session: dict, synthetic_zip: bytes, db_session: Session
) -> None:
    headers = {"Idempotency-Key": "ivis-pc-before-the-upgrade"}
    first = client.post(
        url(imaging_session), files={"file": ("c.zip", synthetic_zip)}, headers=headers
    )
    assert first.status_code == 201
    # What an older server remembered: an acquisition without today's measurement fields.
    record = db_session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.key == headers["Idempotency-Key"])
    )
    assert record is not None
    record.response = {k: v for k, v in first.json().items() if k != "measurements"}
    db_session.flush()
    before = row_counts(db_session, *TABLES)

    retry = client.post(
        url(imaging_session), files={"file": ("c.zip", synthetic_zip)}, headers=headers
    )

    assert_problem(retry, 409, "earlier version of osteolux", "instead of sending")
    assert row_counts(db_session, *TABLES) == before


def test_study_roi_template_is_used_for_new_images(
    client: TestClient, imaging_session: dict, tmp_path: Path, db_session: Session
) -> None:
    base = f"/studies/{imaging_session['study_id']}/roi-template"
    default = client.get(base).json()
    assert default["is_default"] is True
    assert {s["site"] for s in default["sites"]} >= {"spine", "left_hindlimb", "forelimbs_scapula"}
    femurs = {
        "sites": [
            {
                "name": "left femur",
                "site": "left_hindlimb",
                "shape": "circle",
                "u": 0.6,
                "v": -0.6,
                "size_u": 0.3,
                "size_v": 0.3,
            },
            {
                "name": "right femur",
                "site": "right_hindlimb",
                "shape": "circle",
                "u": 0.6,
                "v": 0.6,
                "size_u": 0.3,
                "size_v": 0.3,
            },
        ]
    }
    assert_problem(client.put(base, json={"sites": [femurs["sites"][0] | {"u": 7}]}), 422, "u")
    stored = client.put(base, json=femurs, headers={"X-Change-Reason": "hindlimb study"})
    assert stored.status_code == 200 and stored.json()["is_default"] is False
    assert client.get(base).json()["sites"] == femurs["sites"]
    mice, sources = default_hotel(FLUXES)
    click = write_synthetic_click(
        tmp_path / "t", mice=mice, sources=sources, click_number="SYN20260715103000"
    )
    response = post_zip(
        client, imaging_session, zip_folder(click.path, skip=("AnalyzedClickInfo.txt",))
    )
    assert response.status_code == 201, response.text
    sites = sorted({m["site"] for m in response.json()["measurements"]})
    assert sites == ["background", "left_hindlimb", "right_hindlimb", "whole_body"]


def test_zip_bomb_is_refused(
    client: TestClient, imaging_session: dict, db_session: Session, app
) -> None:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("c/luminescent.TIF", b"\0" * (64 * 1024**2))  # ~40 bytes on disk
        archive.writestr("c/ClickInfo.txt", "*** Section:\tluminescent image\r\n")
    before = row_counts(db_session, *TABLES)
    assert_problem(post_zip(client, imaging_session, buffer.getvalue()), 422, "zip bomb")
    assert row_counts(db_session, *TABLES) == before
    assert stored_blob_files(app) == []
