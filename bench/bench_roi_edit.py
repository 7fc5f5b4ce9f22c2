"""One ROI edit on a 2048² click over HTTP (``PATCH …/rois/{roi}``: supersede, measure again
from the raw file, answer), against a real ``osteolux serve --workers 1``.

Run: ``.venv/bin/python bench/bench_roi_edit.py`` (``OSTEOLUX_BENCH_EDITS``, default 10).

Prints the median edit time and, beside it, the time to read and calibrate the click from its
raw zip in this process (what an edit cost each time before the calibrated image was kept
per raw file's SHA-256 in app.acquisitions.images).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ingest import (  # noqa: E402  (the folder is on sys.path only now)
    TIMEOUT_S,
    _loadavg,
    _timed,
    make_clicks,
    new_session,
    osteolux,
    put_click,
)


def main() -> int:
    import httpx2

    import imaging

    n = max(3, int(os.environ.get("OSTEOLUX_BENCH_EDITS", "10")))
    print(f"load average before: {_loadavg()} (other work on these cores skews every number)")
    with tempfile.TemporaryDirectory(prefix="osteolux-roi-bench-") as name:
        tmp = Path(name)
        (click,) = make_clicks(tmp / "clicks", 1)
        decode = [
            _timed(lambda: imaging.primary_image(imaging.read_ivis_click(click.path)))[0]
            for _ in range(5)
        ]
        edits: list[float] = []
        with osteolux(tmp / "data", workers=1) as (server, key):
            target = new_session(server.base_url, key, "ROI edit")
            with httpx2.Client(headers={"X-API-Key": key}, timeout=TIMEOUT_S) as client:
                stored = put_click(client, target, click)
                stored.raise_for_status()
                acquisition = f"{target}/{stored.json()['id']}"
                info = client.get(f"{acquisition}/image").json()
                roi = next(r for r in info["rois"] if r["site"] != "background")
                roi_id, geometry = roi["roi_id"], roi["geometry"]
                for i in range(n):
                    moved = dict(geometry)
                    moved["center_col"] = geometry["center_col"] + (i % 2 * 2 - 1) * 8
                    took, answer = _timed(
                        lambda g=moved, r=roi_id: client.patch(
                            f"{acquisition}/rois/{r}",
                            json={"geometry": g, "reason": "bench"},
                        )
                    )
                    if answer.status_code != 200:
                        raise RuntimeError(answer.text[:500])
                    edits.append(took)
                    now = next(
                        m
                        for m in answer.json()["measurements"]
                        if m["site"] == roi["site"] and m["animal"] == roi["animal"]
                    )
                    roi_id = now["roi_id"]
    print(f"\none ROI edit on a {click.size / 1e6:.1f} MB 2048² click, median of {n}:")
    print(f"   PATCH …/rois/{{roi}} over HTTP        {statistics.median(edits) * 1000:7.1f} ms")
    print(f"   (first edit                         {edits[0] * 1000:7.1f} ms)")
    print(f"   read + calibrate the raw zip (context) {statistics.median(decode) * 1000:7.1f} ms")
    print(f"\nload average after: {_loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
