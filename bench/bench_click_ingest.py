"""One 2048² click ingested end to end over HTTP vs the floor of just reading it (issue 13 §4).

Run: ``.venv/bin/python bench/bench_click_ingest.py`` (``OSTEOLUX_BENCH_CLICKS`` distinct
clicks, default 15; each is uploaded once, since stored content is recognised by its SHA-256).

* **ingest**: ``PUT …/acquisitions/{click}`` (the body sent from memory) to a real
  ``osteolux serve --workers 1`` on loopback (SQLite): stage (hash + write + fsync), read the
  click, calibrate, find the mice, place and quantify the ROIs, store the rows and the blob,
  commit, answer.
* **bare** (context only): the same PUT to a streaming endpoint that only hashes, writes and
  fsyncs the body (``bench_ingest.bare_app``): what the HTTP transfer alone costs.
* **floor**: in this process, the same zip from disk — SHA-256 of its bytes, unzip, decode every
  TIFF member (``tifffile``): what any program that reads a click must do.

Both medians come from the same run (interleaved, so drift hits both alike); the ratio's target
is ≤ 3×. The breakdown times the ingest's steps in-process on the same click: each step alone
(context), then the two phases as served — staging while the zip is unpacked, its TIFFs
decoded, the mice searched for and the image calibrated beside it as the bytes come
(``app.ingest.click.StreamedUpload``), and preparing once staged (reading the zip's directory,
taking those results) — and "HTTP, rows, commit, answer" is the HTTP median minus both phases
and quantifying.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ingest import (  # noqa: E402  (the folder is on sys.path only now)
    CHUNK,
    TIMEOUT_S,
    Click,
    _loadavg,
    _timed,
    bare,
    make_clicks,
    new_session,
    osteolux,
    put_bare,
    put_click,
)

TARGET = 3.0


def read_floor(click: Click) -> int:
    """SHA-256 of the file's bytes, unzip and decode every TIFF: the least any reader does."""
    import numpy as np
    import tifffile

    data = click.path.read_bytes()
    hashlib.sha256(data).digest()
    pixels = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.filename.lower().endswith((".tif", ".tiff")):
                image = np.asarray(tifffile.imread(io.BytesIO(archive.read(info))))
                pixels += image.size
    return pixels


def breakdown(tmp: Path, click: Click, repeat: int = 3) -> dict[str, float]:
    """Median seconds of each step the ingest runs, in-process, on ``click``."""
    import imaging
    from app.acquisitions.images import image_limits, primary_image, quantify_rois
    from app.config import Settings
    from app.ingest.click import StreamedUpload, prepare
    from app.storage import LocalBlobStore

    settings = Settings(data_dir=tmp / "breakdown")
    store = LocalBlobStore(tmp / "breakdown" / "blobs")

    def stage() -> Any:
        with (
            click.path.open("rb") as body,
            store.staging(max_bytes=settings.max_upload_bytes, name=click.path.name) as writer,
        ):
            while chunk := body.read(CHUNK):
                writer.write(chunk)
            return writer.finish()

    staged = SimpleNamespace(path=click.path)  # the staging file is gone after stage()
    streamed: list[StreamedUpload] = []

    def stage_streamed() -> Any:
        with (
            click.path.open("rb") as body,
            store.staging(max_bytes=settings.max_upload_bytes, name=click.path.name) as writer,
        ):
            upload = StreamedUpload(
                body, filename=click.path.name, animals=None, limits=image_limits(settings)
            )
            while chunk := upload.read(256 * 1024):  # as the server hands the body over
                writer.write(chunk)
            result = writer.finish()
            upload.members()  # the last member unpacked
        streamed[:] = [upload]
        return result

    def prepare_streamed() -> Any:
        stage_streamed()
        upload = streamed[0]
        started = time.perf_counter()
        try:
            prepare(
                staged,  # type: ignore[arg-type]
                settings,
                filename=click.path.name,
                animals=None,
                streamed=upload,
            )
        finally:
            upload.close()
        return time.perf_counter() - started

    path = click.path
    read = imaging.read_ivis_click(path, name=click.path.name)
    assert read.photograph is not None
    photo = read.photograph
    image = primary_image(read, click.path.name)
    rois = list(imaging.rois_from_click(read))
    steps: list[tuple[str, Callable[[], object]]] = [
        ("stage (hash + write + fsync)", stage),
        ("read (unzip + decode TIFFs)", lambda: imaging.read_ivis_click(path)),
        ("calibrate (primary image)", lambda: primary_image(read, click.path.name)),
        (
            "find mice (photograph)",
            lambda: imaging.find_animals(
                photo.data,
                binning=photo.binning,
                animal_numbers=list(read.animal_numbers),
                exact=True,
            ),
        ),
        ("quantify ROIs", lambda: quantify_rois(image, rois, click.path.name, click=read)),
        ("served: stage (fsync waited) while unpacking, searching, calibrating", stage_streamed),
    ]
    out = {}
    for name, fn in steps:
        fn()
        out[name] = statistics.median(_timed(fn)[0] for _ in range(repeat))
    prepare_streamed()
    out["served: prepare once staged"] = statistics.median(
        prepare_streamed() for _ in range(repeat)
    )
    return out


def main() -> int:
    import httpx2

    n = max(2, int(os.environ.get("OSTEOLUX_BENCH_CLICKS", "15")))
    print(f"load average before: {_loadavg()} (other work on these cores skews every number)")
    with tempfile.TemporaryDirectory(prefix="osteolux-click-bench-") as name:
        tmp = Path(name)
        seconds, clicks = _timed(lambda: make_clicks(tmp / "clicks", n + 1))
        warmup, clicks = clicks[-1], clicks[:-1]
        size = statistics.median(c.size for c in clicks)
        print(f"{n + 1} synthetic 2048² clicks written in {seconds:.1f} s ({size / 1e6:.1f} MB)")
        floor: list[float] = []
        ingest: list[float] = []
        transport: list[float] = []
        with osteolux(tmp / "data", workers=1) as (server, key), bare(tmp, workers=1) as ref:
            target = new_session(server.base_url, key, "Click ingest")
            with httpx2.Client(headers={"X-API-Key": key}, timeout=TIMEOUT_S) as client:
                body = warmup.path.read_bytes()
                put_click(client, target, warmup, body).raise_for_status()
                put_bare(client, ref.base_url, warmup, body).raise_for_status()
                read_floor(warmup)
                for i, click in enumerate(clicks):
                    body = click.path.read_bytes()
                    runs: list[tuple[list[float], Callable[[], Any]]] = [
                        (floor, lambda c=click: read_floor(c)),
                        (ingest, lambda c=click, b=body: put_click(client, target, c, b)),
                        (transport, lambda c=click, b=body: put_bare(client, ref.base_url, c, b)),
                    ]
                    for times, fn in runs if i % 2 else runs[::-1]:
                        took, result = _timed(fn)
                        if hasattr(result, "status_code") and result.status_code >= 300:
                            raise RuntimeError(f"{click.click_number}: {result.text[:500]}")
                        times.append(took)
        steps = breakdown(tmp, clicks[0])
    floor_s, ingest_s = statistics.median(floor), statistics.median(ingest)
    ratio = ingest_s / floor_s
    print(f"\none {size / 1e6:.1f} MB 2048² click, median of {n}:")
    print(f"   floor (SHA-256 + unzip + decode every TIFF)  {floor_s * 1000:7.1f} ms")
    print(f"   ingest over HTTP (PUT, osteolux serve)       {ingest_s * 1000:7.1f} ms")
    bare_s = statistics.median(transport)
    print(f"   (bare HTTP upload: hash + write + fsync only {bare_s * 1000:7.1f} ms, context)")
    verdict = "MET" if ratio <= TARGET else "MISSED"
    print(f"   ingest / floor = {ratio:.2f}x  (target ≤ {TARGET:.0f}x: {verdict})")
    print("\n   breakdown (in-process, median of 3):")
    for name in steps:
        print(f"      {name:<68} {steps[name] * 1000:7.1f} ms")
    serial = [k for k in steps if k.startswith(("served", "quantify"))]
    rest = ingest_s - sum(steps[k] for k in serial)
    print(f"      {'HTTP, rows, QC, commit, answer (the rest)':<68} {rest * 1000:7.1f} ms")
    print(f"\nload average after: {_loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
