"""Hostile load and faults against a real `osteolux serve`: bursts wait for a slot instead of
exhausting threads and the connection pool, stalled downloads hold no database connection,
a body without a key is never read, JSON bodies are capped, a database that is down answers
503 (never 500), and readiness says what is down."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import numpy as np
import pytest
import tifffile

from tests.live_server import LiveServer, live_server, live_server_on


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with live_server_on(request.param, tmp_path_factory.mktemp(request.param)) as live:
        yield live


def _raw(base_url: str, head: str) -> socket.socket:
    """A client that sends a request head (and maybe a little body) and then nothing."""
    url = urlparse(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    sock.sendall(head.encode())
    return sock


def test_a_burst_of_100_key_lookups_is_answered_without_a_single_500(server: LiveServer) -> None:
    def me(_: int) -> httpx2.Response:
        return httpx2.get(f"{server.base_url}/me", headers=server.headers, timeout=60)

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = [r.status_code for r in pool.map(me, range(100))]
    assert statuses.count(200) == 100, statuses


def test_a_body_without_a_key_is_refused_before_it_is_read(server: LiveServer) -> None:
    # 100 MB announced, none of it sent: the answer must not wait for (or read) the body.
    sock = _raw(
        server.base_url,
        "POST /studies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000000\r\n\r\n[{},",
    )
    with sock:
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after it
            answer += chunk
        answer_text = answer.decode(errors="replace")
    assert answer_text.startswith("HTTP/1.1 401"), answer_text[:200]
    assert "application/problem+json" in answer_text and "needs an API key" in answer_text


def test_a_json_body_over_its_limit_is_refused_with_413(server: LiveServer) -> None:
    big = json.dumps({"name": "x" * (2 * 1024**2)})
    declared = httpx2.post(
        f"{server.base_url}/studies",
        headers=server.headers | {"Content-Type": "application/json"},
        content=big,
    )
    assert declared.status_code == 413, declared.text
    assert "limit of 1,048,576 bytes for JSON requests" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536].encode()

    streamed = httpx2.post(
        f"{server.base_url}/studies",
        headers=server.headers | {"Content-Type": "application/json"},
        content=chunks(),
    )
    assert streamed.status_code == 413, streamed.text


def _noise_tiff() -> bytes:
    """A 2048² float32 image of noise (16 MiB that no compression shrinks)."""
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rng.random((2048, 2048), dtype=np.float32))
    return buffer.getvalue()


def test_stalled_downloads_hold_no_database_connection(server: LiveServer) -> None:
    study_id, arm_id = server.study_with_control()
    httpx2.post(
        f"{server.base_url}/studies/{study_id}/animals",
        headers=server.headers,
        json={"identifier": "m1", "arm_id": arm_id},
    ).raise_for_status()
    opened = httpx2.post(
        f"{server.base_url}/studies/{study_id}/sessions",
        headers=server.headers,
        json={"acquired_at": "2026-07-15T10:15:00+02:00"},
    ).json()
    base = f"/studies/{study_id}/sessions/{opened['id']}/acquisitions"
    meta = {
        "name": "noise",
        "units": "p/s/cm²/sr",
        "binning": 1,
        "fov_cm": 20.0,
        "sensor_pixels": 2048,
        "view": "dorsal",
        "animals": ["m1"],
        "rois": [
            {
                "animal": "m1",
                "site": "spine",
                "geometry": {"type": "circle", "center_row": 500, "center_col": 500, "radius": 50},
            }
        ],
    }
    uploaded = httpx2.post(
        f"{server.base_url}{base}/tiff",
        headers=server.headers,
        files={"file": ("noise.tif", _noise_tiff(), "image/tiff")},
        data={"metadata": json.dumps(meta)},
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text
    key = server.headers["X-API-Key"]
    # More stalled downloads than the connection pool has connections.
    stalled = [
        _raw(
            server.base_url,
            f"GET {base}/{uploaded.json()['id']}/original HTTP/1.1\r\nHost: x\r\n"
            f"X-API-Key: {key}\r\n\r\n",
        )
        for _ in range(40)
    ]
    try:
        time.sleep(1)  # every download has started and filled its socket buffers
        started = time.monotonic()
        me = httpx2.get(f"{server.base_url}/me", headers=server.headers, timeout=60)
        created = httpx2.post(
            f"{server.base_url}/studies/{study_id}/animals",
            headers=server.headers,
            json={"identifier": "m2", "arm_id": arm_id},
            timeout=60,
        )
        elapsed = time.monotonic() - started
    finally:
        for sock in stalled:
            sock.close()
    assert (me.status_code, created.status_code) == (200, 201), created.text
    assert elapsed < 10  # not a lock or pool timeout


def test_readiness_says_both_are_up(server: LiveServer) -> None:
    ready = httpx2.get(f"{server.base_url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() | {"version": ""} == {
        "status": "ok",
        "version": "",
        "database": "ok",
        "store": "ok",
    }


def test_a_database_that_is_down_answers_503_not_500(tmp_path: Path) -> None:
    # Nothing listens on port 9 of loopback: every connection is refused at once.
    down = "postgresql+psycopg://osteolux:osteolux@127.0.0.1:9/osteolux?connect_timeout=2"
    with live_server(
        tmp_path / "data", extra_args=("--no-migrate",), OSTEOLUX_DATABASE_URL=down
    ) as base_url:
        assert httpx2.get(f"{base_url}/health").status_code == 200  # alive
        ready = httpx2.get(f"{base_url}/health/ready")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert ready.json()["database"].startswith("unavailable")
        assert ready.json()["store"] == "ok"
        for response in (
            httpx2.get(f"{base_url}/studies", headers={"X-API-Key": "olx_x"}),
            httpx2.post(f"{base_url}/studies", headers={"X-API-Key": "olx_x"}, json={}),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) > 0


def test_the_server_does_not_announce_its_software(server: LiveServer) -> None:
    assert "server" not in httpx2.get(f"{server.base_url}/health").headers


def test_a_body_that_trickles_is_stopped_with_408(tmp_path: Path) -> None:
    env = {"OSTEOLUX_UPLOAD_GRACE_S": "1", "OSTEOLUX_MIN_UPLOAD_RATE_BPS": "65536"}
    with live_server_on("sqlite", tmp_path, **env) as live:
        key = live.headers["X-API-Key"]
        sock = _raw(
            live.base_url,
            "POST /studies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {key}\r\nContent-Length: 500000\r\n\r\n[",
        )
        started = time.monotonic()
        answer = b""
        with sock:
            sock.settimeout(0.3)
            while time.monotonic() - started < 20:  # 1 KiB every 0.3 s: about 3 KiB/s
                try:
                    sock.sendall(b" " * 1024)
                    answer += sock.recv(65536)
                except (TimeoutError, BlockingIOError):
                    continue
                except OSError:  # the server closed the connection after answering
                    break
                if b"\r\n\r\n" in answer:
                    break
        elapsed = time.monotonic() - started
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 408"), text[:300]
    assert elapsed < 10
