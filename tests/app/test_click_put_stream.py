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
from typing import Any
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


def test_a_reader_is_not_left_waiting_when_the_body_task_is_cancelled() -> None:
    """The service's thread reads the body from a queue the event loop's task fills; when the
    server cancels that task (shutting down), the reader gets an error instead of waiting for
    ever."""
    import asyncio
    import threading

    import pytest

    from app.ingest.router import _RequestBody

    class Endless:
        async def stream(self) -> Any:
            yield b"first"
            await asyncio.Event().wait()  # the rest never comes
            yield b""

    outcome: list[object] = []

    async def main() -> None:
        body = _RequestBody(Endless())  # type: ignore[arg-type]
        body._start()
        done = threading.Event()

        def read_all() -> None:
            try:
                while body.read():
                    outcome.append("chunk")
            except BaseException as exc:
                outcome.append(exc)
            done.set()

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        await asyncio.sleep(0.2)  # the first chunk read, the reader waiting for more
        assert body._task is not None
        body._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await body._task
        assert await asyncio.to_thread(done.wait, 10), "the reader still waits"

    asyncio.run(main())
    assert outcome[0] == "chunk" and isinstance(outcome[-1], ConnectionAbortedError)
