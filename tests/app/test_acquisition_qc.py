"""Issue 13 wired into the app: every stored measurement says which calibration it comes from
(Living Image's corrected image when the click has one, checked against the raw counts), its
detection limit, and the acquisition's QC (time since D-luciferin injection, exposure, camera
settings against the study's series). Each flag is tested on a click built to trigger it and
one built not to, against the synthetic generator's known source flux."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Roi
from imaging import calibrate_click, default_hotel, read_ivis_click, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES, post_zip, url, zip_folder
from tests.app.factories import make_animal, make_control, make_study
from tests.app.jobs import succeeded

# Living Image's "Acquisition Seconds" count from 1904-01-01 00:00 UTC (Igor Pro's epoch).
IGOR_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
SESSION_AT = datetime(2026, 7, 15, 8, 15, tzinfo=UTC)  # the click is taken at this time
ACQUISITION_FLAGS = {
    "outside_luciferin_window",
    "acquired_before_injection",
    "near_saturation",
    "underexposed",
    "camera_settings_changed",
    "binning_changed",
    "filter_changed",
    "exposure_changed",
}


def new_study(client: TestClient) -> str:
    study = make_study(client, name=f"qc {uuid.uuid4().hex[:8]}")
    control = make_control(client, study["id"])
    for animal in ANIMALS:
        make_animal(client, study["id"], control["id"], animal)
    return str(study["id"])


def new_session(
    client: TestClient, study_id: str, *, injected_min_before: float | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"acquired_at": SESSION_AT.isoformat()}
    if injected_min_before is not None:
        injected = SESSION_AT - timedelta(minutes=injected_min_before)
        body["luciferin_injected_at"] = injected.isoformat()
    response = client.post(f"/studies/{study_id}/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json() | {"study_id": study_id}


def click_zip(
    tmp_path: Path,
    name: str,
    *,
    acquired_at: datetime | None = None,
    emission_filter: str | None = None,
    corrected_scale: float | None = None,
    fluxes: tuple[float, ...] = FLUXES,
    **options: Any,
) -> bytes:
    """A synthetic click (five mice, one spine source each of ``fluxes`` p/s), optionally
    with an acquisition time, another emission filter, or a Living Image corrected image that
    is the exact calibration of the counts times ``corrected_scale``."""
    folder = tmp_path / name
    mice, sources = default_hotel(fluxes)
    write_synthetic_click(folder, mice=mice, sources=sources, click_number=name, **options)
    info = folder / "ClickInfo.txt"
    text = info.read_bytes().decode("cp1252")
    if acquired_at is not None:
        seconds = (acquired_at - IGOR_EPOCH).total_seconds()
        text = text.replace(
            "*** luminescent image:\tluminescent.TIF",
            f"*** luminescent image:\tluminescent.TIF\r\nAcquisition Seconds:\t{seconds:.0f}",
        )
    if emission_filter is not None:
        text = text.replace("Emission filter:\tOpen", f"Emission filter:\t{emission_filter}")
    info.write_bytes(text.encode("cp1252"))
    if corrected_scale is not None:
        truth = calibrate_click(read_ivis_click(folder), cosmic=None).radiance
        tifffile.imwrite(
            folder / "luminescentFloatCorrected.TIF",
            (np.asarray(truth, dtype=np.float64) * corrected_scale).astype(np.float32),
        )
        analyzed = folder / "AnalyzedClickInfo.txt"
        binning = options.get("binning", 8)
        section = (
            "\r\n*** saved luminescent corrected image:\tluminescentFloatCorrected.TIF\r\n"
            f"Binning Factor:\t{binning}\r\nData Multiplier:\t1\r\n"
        )
        analyzed.write_bytes(analyzed.read_bytes() + section.encode("cp1252"))
    return zip_folder(folder)


def upload(client: TestClient, session: dict[str, Any], content: bytes) -> dict[str, Any]:
    response = post_zip(client, session, content)
    assert response.status_code == 201, response.text
    return response.json()


def spines(acquisition: dict[str, Any]) -> list[dict[str, Any]]:
    """The five spine measurements, left to right."""
    by_animal = {m["animal"]: m for m in acquisition["measurements"] if m["site"] == "spine"}
    return [by_animal[a] for a in ANIMALS]


# --- calibration: Living Image's corrected image is primary, the raw counts checked beside it


def test_a_corrected_image_that_agrees_is_primary_and_unflagged(
    client: TestClient, tmp_path: Path
) -> None:
    session = new_session(client, new_study(client))
    acquisition = upload(client, session, click_zip(tmp_path, "SYN1", corrected_scale=1.0))
    rows = spines(acquisition)
    assert_allclose([m["total_flux_ps"] for m in rows], FLUXES, rtol=0.02)  # generator truth
    assert {m["calibration_source"] for m in rows} == {"living_image_corrected"}
    assert {m["method"] for m in rows} == {"imaging.quantify_click:living_image_corrected:center"}
    assert_allclose([m["raw_total_flux_ps"] for m in rows], FLUXES, rtol=0.02)
    assert not any("calibration_disagrees" in m["flags"] for m in rows)
    assert not any("raw counts give" in w for w in acquisition["warnings"])


def test_a_corrected_image_25_percent_high_is_stored_and_flagged_with_both_values(
    client: TestClient, tmp_path: Path
) -> None:
    session = new_session(client, new_study(client))
    acquisition = upload(client, session, click_zip(tmp_path, "SYN2", corrected_scale=1.25))
    rows = spines(acquisition)
    # the stored number is the corrected image's; the raw counts give the generator's truth
    assert_allclose([m["total_flux_ps"] for m in rows], np.array(FLUXES) * 1.25, rtol=0.02)
    assert_allclose([m["raw_total_flux_ps"] for m in rows], FLUXES, rtol=0.02)
    assert all("calibration_disagrees" in m["flags"] for m in rows)  # −20 % > 5 % tolerance
    disagreeing = [w for w in acquisition["warnings"] if "raw counts give" in w]
    assert len(disagreeing) == 5 and "(-20.0%)" in disagreeing[1]


def test_without_a_corrected_image_the_raw_counts_are_primary(
    client: TestClient, tmp_path: Path
) -> None:
    session = new_session(client, new_study(client))
    rows = spines(upload(client, session, click_zip(tmp_path, "SYN3")))
    assert {m["calibration_source"] for m in rows} == {"raw_counts"}
    assert {m["method"] for m in rows} == {"imaging.quantify_click:raw_counts:center"}
    assert {m["raw_total_flux_ps"] for m in rows} == {None}  # nothing to compare with
    assert_allclose([m["total_flux_ps"] for m in rows], FLUXES, rtol=0.02)


# --- detection limit from the background square


def test_a_mouse_without_signal_is_below_detection_the_others_are_not(
    client: TestClient, tmp_path: Path
) -> None:
    # shot and read noise on the stage; the fifth mouse's source (10 p/s) is far below it
    fluxes = (2.0e7, 1.0e7, 8.0e6, 5.0e6, 10.0)
    session = new_session(client, new_study(client))
    acquisition = upload(client, session, click_zip(tmp_path, "SYN4", fluxes=fluxes, noise=True))
    rows = spines(acquisition)
    assert ["below_detection" in m["flags"] for m in rows] == [False] * 4 + [True]
    limits = np.array([m["detection_limit_ps"] for m in rows])
    assert np.all((limits > 10.0) & (limits < 5.0e6))
    background = [m for m in acquisition["measurements"] if m["site"] == "background"]
    assert len(background) == 1 and background[0]["animal"] is None


def test_moving_the_background_onto_a_mouse_measures_every_roi_again(
    client: TestClient, tmp_path: Path, db_session: Session
) -> None:
    session = new_session(client, new_study(client))
    acquisition = upload(client, session, click_zip(tmp_path, "SYN5"))
    base = f"{url(session)}/{acquisition['id']}/rois"
    before = spines(acquisition)
    assert not any("below_detection" in m["flags"] for m in before[1:3])
    background = next(m for m in acquisition["measurements"] if m["site"] == "background")
    # the background square drawn again on the brightest mouse's spine (1e7 p/s)
    bright = db_session.get(Roi, uuid.UUID(before[1]["roi_id"]))
    assert bright is not None and bright.geometry["type"] == "circle"
    side = 2 * bright.geometry["radius"]
    square = {
        "type": "rectangle",
        "center_row": bright.geometry["center_row"],
        "center_col": bright.geometry["center_col"],
        "width": side,
        "height": side,
    }
    moved = client.patch(
        f"{base}/{background['roi_id']}", json={"geometry": square, "reason": "on a mouse"}
    )
    assert moved.status_code == 200, moved.text
    after = spines(moved.json())
    # every ROI has a new current measurement, the old ones are history
    assert {m["measurement_id"] for m in after}.isdisjoint(m["measurement_id"] for m in before)
    assert [m["total_flux_ps"] for m in after] == [m["total_flux_ps"] for m in before]
    # with the brightest source as "background", no spine exceeds it by 3 SD
    assert all(
        a["detection_limit_ps"] > 10 * b["detection_limit_ps"]
        for a, b in zip(after, before, strict=True)
    )
    assert all("below_detection" in m["flags"] for m in after)
    # retiring the background leaves the ROIs without a detection limit (measured again)
    now = next(m for m in moved.json()["measurements"] if m["site"] == "background")
    retired = client.post(f"{base}/{now['roi_id']}/retire", json={"reason": "no background"})
    assert retired.status_code == 200, retired.text
    assert {m["detection_limit_ps"] for m in spines(retired.json())} == {None}


# --- time since D-luciferin injection


def test_time_since_injection_inside_and_outside_the_window(
    client: TestClient, tmp_path: Path
) -> None:
    study = new_study(client)
    inside = upload(
        client,
        new_session(client, study, injected_min_before=10),
        click_zip(tmp_path, "SYN6", acquired_at=SESSION_AT),
    )
    late = upload(
        client,
        new_session(client, study, injected_min_before=40),
        click_zip(tmp_path, "SYN7", acquired_at=SESSION_AT),
    )
    early = upload(
        client,
        new_session(client, study, injected_min_before=10),
        click_zip(tmp_path, "SYN8", acquired_at=SESSION_AT - timedelta(minutes=12)),
    )
    for acquisition, minutes, flags in (
        (inside, 10.0, set()),
        (late, 40.0, {"outside_luciferin_window"}),
        (early, -2.0, {"outside_luciferin_window", "acquired_before_injection"}),
    ):
        for m in acquisition["measurements"]:
            assert_allclose(m["minutes_since_injection"], minutes, rtol=1e-9)
            assert set(m["flags"]) & ACQUISITION_FLAGS == flags
        said = [w for w in acquisition["warnings"] if "D-luciferin" in w]
        assert len(said) == (1 if flags else 0)
    assert "40.0 min" in next(w for w in late["warnings"] if "D-luciferin" in w)
    # the acquisition says it too, with the window
    assert late["acquired_at"] == "2026-07-15T08:15:00Z"
    assert late["qc"]["minutes_since_injection"] == 40.0
    assert late["qc"]["luciferin"] == {
        "window_min": [5.0, 15.0],
        "flags": ["outside_luciferin_window"],
    }


def test_the_window_is_configurable_and_unknown_times_are_no_flag(
    client: TestClient, tmp_path: Path, settings: Settings
) -> None:
    settings.luciferin_window_min = (30.0, 50.0)  # e.g. a s.c. protocol's later plateau
    study = new_study(client)
    late = upload(
        client,
        new_session(client, study, injected_min_before=40),
        click_zip(tmp_path, "SYN9", acquired_at=SESSION_AT),
    )
    assert not any("outside_luciferin_window" in m["flags"] for m in late["measurements"])
    # no acquisition time in the click, or no injection time on the session: nothing to say
    unknown = upload(
        client, new_session(client, study, injected_min_before=40), click_zip(tmp_path, "SYN10")
    )
    assert {m["minutes_since_injection"] for m in unknown["measurements"]} == {None}
    assert not any("outside_luciferin_window" in m["flags"] for m in unknown["measurements"])


def test_correcting_the_injection_time_and_requantifying_updates_the_flag(
    client: TestClient, tmp_path: Path
) -> None:
    study = new_study(client)
    session = new_session(client, study, injected_min_before=40)
    first = upload(client, session, click_zip(tmp_path, "SYN11", acquired_at=SESSION_AT))
    assert all("outside_luciferin_window" in m["flags"] for m in first["measurements"])
    corrected = client.patch(
        f"/studies/{study}/sessions/{session['id']}",
        json={"luciferin_injected_at": (SESSION_AT - timedelta(minutes=8)).isoformat()},
        headers={"X-Change-Reason": "the time was typed half an hour off"},
    )
    assert corrected.status_code == 200, corrected.text
    result = succeeded(client, client.post(f"/studies/{study}/requantify"))
    assert result["measurements"] == len(first["measurements"])
    now = client.get(f"{url(session)}/{first['id']}").json()
    assert {m["minutes_since_injection"] for m in now["measurements"]} == {8.0}
    assert not any("outside_luciferin_window" in m["flags"] for m in now["measurements"])
    assert {m["measurement_id"] for m in now["measurements"]}.isdisjoint(
        m["measurement_id"] for m in first["measurements"]
    )


# --- exposure of the raw counts


def test_exposure_flags(client: TestClient, tmp_path: Path) -> None:
    study = new_study(client)
    cases = {
        # auto-exposure to 30 000 counts above a 500-count bias: well exposed
        "SYN12": ({}, set()),
        # 57 000 + 500 ≥ 90 % of the 61 000-count saturation level
        "SYN13": ({"target_peak_counts": 57000.0}, {"near_saturation"}),
        # the brightest pixel 300 counts above bias (< 600)
        "SYN14": ({"target_peak_counts": 300.0}, {"underexposed"}),
    }
    for name, (options, expected) in cases.items():
        acquisition = upload(
            client, new_session(client, study), click_zip(tmp_path, name, **options)
        )
        for m in acquisition["measurements"]:
            assert set(m["flags"]) & {"near_saturation", "underexposed"} == expected, name
        said = [w for w in acquisition["warnings"] if "exposure." in w]
        assert len(said) == len(expected), name
    # 3× the auto-exposure: the brightest source clips; the ROIs on it say saturated
    saturated = upload(
        client, new_session(client, study), click_zip(tmp_path, "SYN15", saturate=True)
    )
    flagged = ["saturated" in m["flags"] for m in spines(saturated)]
    assert flagged[1] and not flagged[0]  # 1e7 p/s clips, 2e5 p/s does not
    assert any("saturation level" in w for w in saturated["warnings"])


# --- camera settings within the study's series


def test_camera_settings_that_change_within_the_study_are_flagged(
    client: TestClient, tmp_path: Path
) -> None:
    study = new_study(client)

    def click(name: str, **options: Any) -> dict[str, Any]:
        content = click_zip(tmp_path, name, **({"exposure_s": 120.0} | options))
        return upload(client, new_session(client, study), content)

    first = click("SYN16")
    binned = click("SYN17", binning=4)
    filtered = click("SYN18", emission_filter="560")
    shorter = click("SYN19", exposure_s=60.0)
    same = click("SYN20")
    for acquisition, expected in (
        (first, set()),
        (binned, {"binning_changed", "camera_settings_changed"}),
        (filtered, {"filter_changed", "camera_settings_changed"}),
        # radiance is per second: an exposure change is recorded, not a comparability problem
        (shorter, {"exposure_changed"}),
        (same, set()),
    ):
        for m in acquisition["measurements"]:
            changed = set(m["flags"]) & ACQUISITION_FLAGS - {"near_saturation", "underexposed"}
            assert changed == expected, acquisition["click_number"]
    # a filter change is said to be incomparable, a binning change to need care
    assert any("incomparable" in w and "560" in w for w in filtered["warnings"])
    assert any("binning 4 (study: 8)" in w and "with care" in w for w in binned["warnings"])
    assert binned["qc"]["camera_settings"]["changed"] == {"binning": [4, 8]}
    assert filtered["qc"]["camera_settings"]["impact"] == "incomparable"
    assert not any("Camera settings" in w for w in shorter["warnings"] + same["warnings"])
    # the numbers themselves are the generator's truth at either binning and exposure
    for acquisition in (binned, shorter):
        assert_allclose([m["total_flux_ps"] for m in spines(acquisition)], FLUXES, rtol=0.02)


def test_a_luciferin_window_that_is_no_window_is_refused_at_startup() -> None:
    for window in ((20.0, 10.0), (-5.0, 15.0), (5.0, float("inf"))):
        with pytest.raises(ValidationError, match="LUCIFERIN_WINDOW_MIN"):
            Settings(luciferin_window_min=window)
    assert Settings(luciferin_window_min=(10.0, 20.0)).luciferin_window_min == (10.0, 20.0)


# --- a TIFF from another instrument: the same detection limit and luciferin timing


def test_tiff_background_roi_gives_the_analytic_detection_limit(
    client: TestClient, tmp_path: Path
) -> None:
    import io
    import json
    import math

    study = new_study(client)
    session = new_session(client, study, injected_min_before=30)
    # 256 × 256 radiance image, binning 4 on a 1024-pixel, 20 cm sensor; Gaussian noise of
    # σ = 200 p/s/cm²/sr on a level of 1000, and a 3e7 p/s source under 3466's spine
    pixel_cm = 20.0 / 1024 * 4
    rng = np.random.default_rng(13)
    sigma, level = 200.0, 1000.0
    image = level + sigma * rng.standard_normal((256, 256))
    rows, cols = np.mgrid[0:256, 0:256]
    spot = np.exp(-((rows - 100) ** 2 + (cols - 80) ** 2) / (2 * 4.0**2))
    image += 3.0e7 * spot / spot.sum() / (pixel_cm**2 * 4 * math.pi)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image.astype(np.float32))

    def circle(row: float, col: float) -> dict[str, Any]:
        return {"type": "circle", "center_row": row, "center_col": col, "radius": 80.0}

    meta = {
        "units": "p/s/cm²/sr",
        "binning": 4,
        "fov_cm": 20.0,
        "sensor_pixels": 1024,
        "animals": ["3466", "3467"],
        "acquired_at": SESSION_AT.isoformat(),
        "rois": [
            {"animal": "3466", "site": "spine", "geometry": circle(402.0, 322.0)},
            {"animal": "3467", "site": "spine", "geometry": circle(402.0, 822.0)},
            {
                "site": "background",
                "geometry": {
                    "type": "rectangle",
                    "center_row": 800.0,
                    "center_col": 512.0,
                    "width": 800.0,
                    "height": 320.0,
                },
            },
        ],
    }
    response = client.post(
        f"{url(session)}/tiff",
        files={"file": ("other.tif", buffer.getvalue(), "image/tiff")},
        data={"metadata": json.dumps(meta)},
    )
    assert response.status_code == 201, response.text
    by_site = {(m["animal"], m["site"]): m for m in response.json()["measurements"]}
    source, empty = by_site[("3466", "spine")], by_site[("3467", "spine")]
    # (level + 3σ) · area · 4π: the analytic limit (σ from 16 000 pixels: ~0.6 %)
    for m in (source, empty):
        expected = (level + 3 * sigma) * m["area_cm2"] * 4 * math.pi
        assert_allclose(m["detection_limit_ps"], expected, rtol=0.02)
    assert "below_detection" in empty["flags"] and "below_detection" not in source["flags"]
    assert by_site[(None, "background")]["label"] == "no animal background"
    for m in response.json()["measurements"]:
        assert m["minutes_since_injection"] == 30.0
        assert "outside_luciferin_window" in m["flags"]
        assert m["calibration_source"] is None and m["method"] == "imaging.quantify:center"
    # only the background ROI may name no animal
    meta["rois"][0] = {"site": "spine", "geometry": circle(402.0, 322.0)}
    refused = client.post(
        f"{url(session)}/tiff",
        files={"file": ("other.tif", buffer.getvalue(), "image/tiff")},
        data={"metadata": json.dumps(meta)},
    )
    assert refused.status_code == 422 and "only a background ROI" in refused.text


# --- the reference click: what the viewer shows and what requantify writes


def test_reference_click_viewer_and_requantify_use_living_images_calibration(
    client: TestClient, ivis_reference_folder: Path
) -> None:
    study = make_study(client, name="reference", day0="2021-12-20")
    control = make_control(client, study["id"])
    for animal in ANIMALS:
        make_animal(client, study["id"], control["id"], animal)
    # the instrument's clock is US Central time (CST, UTC−6, in January)
    opened = {
        "acquired_at": "2022-01-05T11:42:35-06:00",
        "luciferin_injected_at": "2022-01-05T11:35:00-06:00",
    }
    session = client.post(f"/studies/{study['id']}/sessions", json=opened).json()
    session |= {"study_id": study["id"]}
    stored = upload(client, session, zip_folder(ivis_reference_folder))
    # Acquisition Seconds 3724249379 is 17:42:59 UTC: the printed local "11:42:59" in CST,
    # 7 min 59 s after the injection, inside the 5–15 min window
    for m in stored["measurements"]:
        assert_allclose(m["minutes_since_injection"], 7 + 59 / 60, rtol=1e-12)
        assert "outside_luciferin_window" not in m["flags"]
    # the viewer's radiance is Living Image's corrected image, pixel for pixel
    response = client.get(f"{url(session)}/{stored['id']}/image/radiance")
    assert response.status_code == 200, response.text
    corrected = tifffile.imread(ivis_reference_folder / "luminescentFloatCorrected.TIF")
    shown = np.frombuffer(response.content, dtype="<f4").reshape(corrected.shape)
    assert_allclose(shown, corrected, rtol=1e-7)
    # requantify: new current rows (the old ones history) with the same Living Image values
    result = succeeded(client, client.post(f"/studies/{study['id']}/requantify"))
    assert (result["measurements"], result["changed"]) == (6, 0)
    again = client.get(f"{url(session)}/{stored['id']}").json()
    printed = [2.370e5, 9.330e6, 7.892e6, 4.445e5, 7.398e4]
    by_label = {m["label"]: m for m in again["measurements"]}
    rois = [by_label[f"ROI {i}"] for i in range(1, 6)]
    assert_allclose([m["total_flux_ps"] for m in rois], printed, rtol=1e-4)
    assert ["below_detection" in m["flags"] for m in rois] == [False] * 4 + [True]
    assert ["calibration_disagrees" in m["flags"] for m in rois] == [False] * 4 + [True]
    assert {m["measurement_id"] for m in again["measurements"]}.isdisjoint(
        m["measurement_id"] for m in stored["measurements"]
    )


# --- kinetic sequences: one injection imaged repeatedly


def test_repeated_clicks_of_one_session_are_a_kinetic_curve_with_its_peak(
    client: TestClient, tmp_path: Path
) -> None:
    study = new_study(client)
    session = new_session(client, study, injected_min_before=5)
    scales = {0: 1.0, 5: 1.5, 10: 1.2, 120: 3.0}  # minutes after SESSION_AT → flux scale
    stored = {}
    for k, (after, scale) in enumerate(scales.items()):
        content = click_zip(
            tmp_path,
            f"SYN3{k}",
            acquired_at=SESSION_AT + timedelta(minutes=after),
            fluxes=tuple(f * scale for f in FLUXES),
            exposure_s=120.0,  # one exposure: the scales are the only change
        )
        stored[after] = upload(client, session, content)
    response = client.get(f"{url(session)}/kinetics")
    assert response.status_code == 200, response.text
    kinetics = response.json()
    # the click two hours later is alone (gap > 30 min): no sequence
    assert len(kinetics["sequences"]) == 1
    sequence = kinetics["sequences"][0]
    assert sequence["acquisition_ids"] == [stored[t]["id"] for t in (0, 5, 10)]
    spines = {c["animal"]: c for c in sequence["curves"] if c["site"] == "spine"}
    assert sorted(spines) == ANIMALS
    for animal, flux in zip(ANIMALS, FLUXES, strict=True):
        curve = spines[animal]
        assert [p["minutes_since_injection"] for p in curve["points"]] == [5.0, 10.0, 15.0]
        assert_allclose(
            [p["total_flux_ps"] for p in curve["points"]],
            [flux, 1.5 * flux, 1.2 * flux],
            rtol=0.02,  # the generator's source flux
        )
        assert curve["peak_index"] == 1 and curve["peak_minutes_since_injection"] == 10.0
        assert_allclose(curve["peak_total_flux_ps"], 1.5 * flux, rtol=0.02)
        assert curve["peak_flags"] == []
    # a wider gap joins the late click: the curve then peaks at its last point
    wide = client.get(f"{url(session)}/kinetics", params={"max_gap_min": 180}).json()
    curve = next(c for c in wide["sequences"][0]["curves"] if c["site"] == "spine")
    assert curve["peak_index"] == 3 and curve["peak_flags"] == ["peak_at_last_point"]
    assert client.get(f"{url(session)}/kinetics", params={"max_gap_min": 0}).status_code == 422


# --- suspected failed injection (for the series: app.measurements.repository)


def test_a_mouse_20_times_down_for_one_session_is_a_suspected_failed_injection(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path, db_session: Session
) -> None:
    from app.measurements.repository import suspected_failed_injections

    study = imaging_session["study_id"]  # 3466–3468 control, 3469–3470 treated; day 14 here
    sessions = {14: imaging_session}
    for day, date in ((7, "2026-07-08"), (21, "2026-07-22")):
        opened = client.post(
            f"/studies/{study}/sessions", json={"acquired_at": f"{date}T10:15:00+02:00"}
        )
        sessions[day] = opened.json() | {"study_id": study}
    low = {}
    for day, session in sorted(sessions.items()):
        # 3467 (1e7 p/s) gives 5e5 on day 14 only: 20× below its days 7 and 21 and 8× below
        # its arm's median that day (3466 2e5, 3468 8e6 → 4.1e6); nobody else changes
        fluxes = tuple(f / 20 if (day, i) == (14, 1) else f for i, f in enumerate(FLUXES))
        acquisition = upload(
            client, session, click_zip(tmp_path, f"SYN4{day}", fluxes=fluxes, exposure_s=120.0)
        )
        low[day] = next(m for m in spines(acquisition) if m["animal"] == "3467")
    assert_allclose(low[14]["total_flux_ps"], 5e5, rtol=0.02)
    flagged = suspected_failed_injections(db_session, uuid.UUID(study), site="spine", factor=5.0)
    assert flagged == {uuid.UUID(low[14]["measurement_id"])}
    # a stricter factor (25×) finds none; whole-body ROIs are not there in a Living Image click
    assert (
        suspected_failed_injections(db_session, uuid.UUID(study), site="spine", factor=25) == set()
    )
    assert (
        suspected_failed_injections(db_session, uuid.UUID(study), site="whole_body", factor=5.0)
        == set()
    )


def test_requantify_reads_the_acquisition_time_of_clicks_stored_before_it_was_kept(
    client: TestClient, tmp_path: Path, db_session: Session
) -> None:
    from app.models import Acquisition

    study = new_study(client)
    session = new_session(client, study, injected_min_before=10)
    stored = upload(client, session, click_zip(tmp_path, "SYN50", acquired_at=SESSION_AT))
    # as an upload of an earlier version left it: no acquisition time, no filters kept
    row = db_session.get(Acquisition, uuid.UUID(stored["id"]))
    assert row is not None and row.acquired_at is not None
    row.acquired_at = None
    row.camera_metadata = {k: v for k, v in row.camera_metadata.items() if k != "settings"}
    db_session.flush()
    succeeded(client, client.post(f"/studies/{study}/requantify"))
    again = client.get(f"{url(session)}/{stored['id']}").json()
    assert again["acquired_at"] == "2026-07-15T08:15:00Z"
    assert {m["minutes_since_injection"] for m in again["measurements"]} == {10.0}
    db_session.expire_all()
    assert db_session.get(Acquisition, row.id).camera_metadata["settings"] == {  # type: ignore[union-attr]
        "emission_filter": "open",
        "excitation_filter": "block",
    }


def test_the_series_settings_read_in_the_database_are_each_rows_settings(
    client: TestClient, imaging_session: dict[str, Any], db_session: Session
) -> None:
    """The QC reads the study's series without loading each row's camera_metadata: the
    filters it reads inside the database are what settings_of reads from the row, whether a
    filter is named, null, or missing with or without its ``settings``."""
    from app.acquisitions.images import settings_of
    from app.acquisitions.repository import series_settings
    from app.models import Acquisition, View

    recorded: list[dict[str, Any]] = [
        {"settings": {"emission_filter": "560", "excitation_filter": "block"}, "labels": {"a": 1}},
        {"settings": {"emission_filter": None, "excitation_filter": "open"}},
        {"settings": {"emission_filter": "open"}},
        {"settings": {}},
        {},
    ]
    rows = []
    for i, metadata in enumerate(recorded):
        row = Acquisition(
            session_id=uuid.UUID(imaging_session["id"]),
            view=View.dorsal,
            click_number=f"SERIES{i}",
            exposure_s=60.0 * (i + 1),
            binning=[8, 4, None, 8, 2][i],
            f_number=1.0,
            fov_cm=[22.4, None, 12.0, 22.4, 22.4][i],
            units="radiance",
            camera_metadata=metadata,
            created_at=SESSION_AT + timedelta(seconds=i),
        )
        db_session.add(row)
        rows.append(row)
    db_session.flush()
    study_id = uuid.UUID(imaging_session["study_id"])
    series = series_settings(db_session, study_id)
    assert series == [(row.id, settings_of(row)) for row in rows]
    assert series[0][1].emission_filter == "560" and series[4][1].excitation_filter is None
