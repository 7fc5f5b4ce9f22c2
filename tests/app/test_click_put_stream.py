"""PUT …/acquisitions/{click} against a real server: the body is received by a task on the
event loop while the service stages what came before (app/ingest/router.py). A click larger
than one read batch arrives whole (its SHA-256 checked, its mice measured: the synthetic
generator's source flux), and a body that trickles is still stopped with 408, nothing kept."""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import httpx2
from numpy.testing import assert_allclose

from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import ANIMALS, FLUXES
from tests.live_server import live_server_on


def test_put_streams_a_click_and_stops_a_trickle(tmp_path: Path) -> None:
    mice, sources = default_hotel(FLUXES)
    folder = write_synthetic_click(
        tmp_path / "SYN20260715101500",
        mice=mice,
        sources=sources,
        binning=2,
        click_number="SYN20260715101500",
    ).path
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    content = buffer.getvalue()
    assert len(content) > 2 * 1024**2  # more than one read batch (1 MiB)
    env = {"OSTEOLUX_UPLOAD_GRACE_S": "1", "OSTEOLUX_MIN_UPLOAD_RATE_BPS": "65536"}
    with live_server_on("sqlite", tmp_path, **env) as live:
        study, control = live.study_with_control()
        with httpx2.Client(base_url=live.base_url, headers=live.headers, timeout=60) as client:
            for animal in ANIMALS:
                added = client.post(
                    f"/studies/{study}/animals", json={"identifier": animal, "arm_id": control}
                )
                assert added.status_code == 201, added.text
            session = client.post(
                f"/studies/{study}/sessions", json={"acquired_at": "2026-07-15T10:15:00+02:00"}
            ).json()
            target = f"/studies/{study}/sessions/{session['id']}/acquisitions"
            digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
            stored = client.put(
                f"{target}/SYN20260715101500",
                content=content,
                headers={"Content-Digest": f"sha-256=:{digest}:"},
            )
            assert stored.status_code == 201, stored.text
            spines = [m for m in stored.json()["measurements"] if m["site"] == "spine"]
            by_animal = {m["animal"]: m["total_flux_ps"] for m in spines}
            assert_allclose([by_animal[a] for a in ANIMALS], FLUXES, rtol=0.05)

            url = urlparse(live.base_url)
            with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
                head = (
                    f"PUT {target}/SYN2 HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                    f"{live.headers['X-API-Key']}\r\nContent-Type: application/zip\r\n"
                    f"Content-Digest: sha-256=:{digest}:\r\nContent-Length: 500000\r\n\r\n"
                )
                sock.sendall(head.encode() + b"PK")
                sock.settimeout(0.3)
                started, answer = time.monotonic(), b""
                while time.monotonic() - started < 20:  # 1 KiB every 0.3 s
                    try:
                        sock.sendall(b" " * 1024)
                        answer += sock.recv(65536)
                    except (TimeoutError, BlockingIOError):
                        continue
                    except OSError:
                        break
                    if b"\r\n\r\n" in answer:
                        break
            assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
            assert time.monotonic() - started < 10
            listed = client.get(target).json()
            assert [a["click_number"] for a in listed] == ["SYN20260715101500"]
    staging = tmp_path / "data" / "blobs" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
