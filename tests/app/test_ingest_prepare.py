"""``prepare`` finds the mice on a thread of its own while the request calibrates the click;
when every such thread is busy with other uploads the request searches itself, and the answer
is the same either way."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from app.acquisitions.images import image_limits
from app.config import Settings
from app.errors import Unprocessable
from app.ingest import click as clicks
from imaging import default_hotel, ivis, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES, synthetic_hotel_zip, zip_folder


def _prepare(zipped: Path, animals: list[str] | None = None) -> clicks.PreparedClick:
    staged = SimpleNamespace(path=zipped)
    return clicks.prepare(
        staged,  # type: ignore[arg-type]
        Settings(),
        filename="SYN20260715101500.zip",
        animals=animals,
    )


def test_the_mice_are_the_same_whether_searched_beside_or_by_the_request(
    tmp_path: Path,
) -> None:
    content = tmp_path / "click.zip"
    content.write_bytes(synthetic_hotel_zip(tmp_path))
    beside = _prepare(content)
    workers = clicks._BESIDE._max_workers
    release, busy = threading.Event(), threading.Barrier(workers + 1)

    def occupy() -> None:
        busy.wait(10)
        assert release.wait(10)

    held = [clicks._BESIDE.submit(occupy) for _ in range(workers)]
    try:
        busy.wait(10)  # every search thread is taken
        itself = _prepare(content)  # would wait for ever if it waited for a thread
        assert not any(f.done() for f in held), "prepare waited for a search thread"
    finally:
        release.set()
        for future in held:
            future.result(10)
    assert [b.animal_number for b in itself.bodies] == ANIMALS
    assert [b.animal_number for b in beside.bodies] == ANIMALS
    for a, b in zip(itself.bodies, beside.bodies, strict=True):
        assert (a.centroid_row, a.centroid_col, a.area_sensor_px) == (
            b.centroid_row,
            b.centroid_col,
            b.area_sensor_px,
        )
    exposure = itself.calibrated.exposure()
    assert exposure is not None and exposure == beside.calibrated.exposure()


def test_a_wrong_animal_count_is_still_explained(tmp_path: Path) -> None:
    content = tmp_path / "click.zip"
    content.write_bytes(synthetic_hotel_zip(tmp_path))
    with pytest.raises(Unprocessable, match="must name every mouse in the field"):
        _prepare(content, animals=ANIMALS[:4])


# --- the mice searched for while the upload arrives -------------------------------------


def _rezip(content: bytes, order: list[str], replace: dict[str, bytes] | None = None) -> bytes:
    """The click's members again, in ``order`` (by file name), some replaced."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = {PurePosixPath(i.filename).name: archive.read(i) for i in archive.infolist()}
    members.update(replace or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name in order + sorted(set(members) - set(order)):
            archive.writestr(name, members[name])
    return out.getvalue()


def _streamed(
    tmp_path: Path, content: bytes, monkeypatch: pytest.MonkeyPatch, *, decoded: bool = False
) -> tuple[clicks.PreparedClick, list[list[str]], list[str]]:
    """Prepare ``content`` as an upload does: staged while it streams in, 64 kB at a time.
    With ``decoded``, no TIFF may be decoded once it is in (all were, as they arrived)."""
    searched: list[list[str]] = []
    find = clicks._find_bodies

    def spy(photograph: Any, identifiers: list[str], *args: Any, **kwargs: Any) -> Any:
        searched.append(list(identifiers))
        return find(photograph, identifiers, *args, **kwargs)

    monkeypatch.setattr(clicks, "_find_bodies", spy)
    calibrate = clicks._calibrate

    def spy_calibrate(click: Any) -> Any:
        calibrated.append(("early", click))
        return calibrate(click)

    primary = clicks.primary_image

    def spy_primary(click: Any, filename: str) -> Any:
        calibrated.append(("read", click))
        return primary(click, filename)

    calibrated: list[tuple[str, Any]] = []
    monkeypatch.setattr(clicks, "_calibrate", spy_calibrate)
    monkeypatch.setattr(clicks, "primary_image", spy_primary)
    name = "SYN20260715101500.zip"
    upload = clicks.StreamedUpload(
        io.BufferedReader(io.BytesIO(content)),
        filename=name,
        animals=None,
        limits=image_limits(Settings()),
    )
    path = tmp_path / "staged.zip"
    with path.open("wb") as staged:
        while chunk := upload.read(65_536):
            staged.write(chunk)
    upload.members()  # every byte fed
    # What started while it arrived runs to its end first: in a loaded test run the threads
    # may still be busy with other tests' work when prepare looks, and prepare would then
    # rightly do it itself (what these tests count).
    if upload._search is not None:
        upload._search.future.result(60)
    if upload._calibration is not None:
        upload._calibration[1].result(60)
    if decoded:

        def refuse(*_: Any, **__: Any) -> Any:
            raise AssertionError("a TIFF was decoded again after the upload")

        monkeypatch.setattr(ivis, "read_tiff", refuse)
    try:
        prepared = clicks.prepare(
            SimpleNamespace(path=path),  # type: ignore[arg-type]
            Settings(),
            filename=name,
            animals=None,
            streamed=upload,
        )
    finally:
        upload.close()
    return prepared, searched, [kind for kind, _ in calibrated]


def test_the_mice_found_while_the_click_arrived_are_used_for_that_click(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _rezip(synthetic_hotel_zip(tmp_path), ["ClickInfo.txt", "AnalyzedClickInfo.txt"])
    expected = _prepare(_write(tmp_path / "plain.zip", content))
    prepared, searched, calibrations = _streamed(tmp_path, content, monkeypatch, decoded=True)
    assert searched == [ANIMALS]  # once, while it arrived: not again once read
    assert calibrations == ["early"]  # calibrated once, as soon as the luminescent image came
    assert np.array_equal(prepared.image.radiance, expected.image.radiance)
    assert prepared.image.steps == expected.image.steps
    for role in ("luminescent", "photograph", "readbias"):
        frame, plain = getattr(prepared.click, role), getattr(expected.click, role)
        assert np.array_equal(frame.data, plain.data) and frame.data.dtype == plain.data.dtype
    assert prepared.calibrated.exposure() == expected.calibrated.exposure()
    assert prepared.background == expected.background
    assert [b.animal_number for b in prepared.bodies] == ANIMALS
    for a, b in zip(prepared.bodies, expected.bodies, strict=True):
        assert (a.centroid_row, a.centroid_col, a.area_sensor_px) == (
            b.centroid_row,
            b.centroid_col,
            b.area_sensor_px,
        )


def test_mice_searched_for_animals_a_later_file_relabels_are_searched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AnalyzedClickInfo.txt comes after the photograph and names other animals: the search
    started with ClickInfo.txt's list is not used."""
    original = synthetic_hotel_zip(tmp_path)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        analyzed = archive.read("SYN20260715101500/AnalyzedClickInfo.txt")
    relabelled = [f"R{n}" for n in range(1, 6)]
    analyzed = analyzed.replace(", ".join(ANIMALS).encode(), ", ".join(relabelled).encode())
    assert b"R1, R2" in analyzed
    content = _rezip(
        original,
        ["ClickInfo.txt", "photograph.TIF", "luminescent.TIF"],
        {"AnalyzedClickInfo.txt": analyzed},
    )
    prepared, searched, _ = _streamed(tmp_path, content, monkeypatch)
    assert searched == [ANIMALS, relabelled]  # started early, then for the click as read
    assert [b.animal_number for b in prepared.bodies] == relabelled


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_a_calibration_begun_before_the_dark_frame_came_is_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """background.TIF (a dark frame) comes last: the image calibrated as soon as the
    luminescent image was in lacks its dark subtraction, so prepare calibrates the click it
    reads instead, and gets what a plain read gets."""
    mice, sources = default_hotel(FLUXES)
    folder = write_synthetic_click(
        tmp_path / "SYN20260715101500",
        mice=mice,
        sources=sources,
        dark_counts=40.0,
        click_number="SYN20260715101500",
    ).path
    order = ["ClickInfo.txt", "AnalyzedClickInfo.txt", "luminescent.TIF", "photograph.TIF"]
    content = _rezip(zip_folder(folder), [*order, "readbias.TIF", "background.TIF"])
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist()[-1] == "background.TIF"
    expected = _prepare(_write(tmp_path / "plain.zip", content))
    prepared, _, calibrations = _streamed(tmp_path, content, monkeypatch)
    assert calibrations == ["early", "read"]
    assert np.array_equal(prepared.image.radiance, expected.image.radiance)
    assert prepared.image.steps == expected.image.steps
    dark = next(step for step in prepared.image.steps if step.name == "dark")
    assert dark.parameters.get("applied") is not False
