"""``prepare`` finds the mice on a thread of its own while the request calibrates the click;
when every such thread is busy with other uploads the request searches itself, and the answer
is the same either way."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.config import Settings
from app.errors import Unprocessable
from app.ingest import click as clicks
from tests.app.clicks import ANIMALS, synthetic_hotel_zip


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
    workers = clicks._SEARCH._max_workers
    release, busy = threading.Event(), threading.Barrier(workers + 1)

    def occupy() -> None:
        busy.wait(10)
        assert release.wait(10)

    held = [clicks._SEARCH.submit(occupy) for _ in range(workers)]
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
