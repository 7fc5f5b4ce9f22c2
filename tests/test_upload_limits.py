"""Uploads over the size limit are refused with 413 over real HTTP, with and without a
Content-Length header, and leave nothing behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.live_server import live_server, run_cli

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    key = run_cli(data_dir, "create-lab", "Limits Lab").stdout.strip().splitlines()[-1]
    with live_server(data_dir, OSTEOLUX_MAX_UPLOAD_BYTES=str(LIMIT)) as base_url:
        headers = {"X-API-Key": key}
        study = httpx2.post(
            f"{base_url}/studies",
            json={
                "name": "S",
                "cell_line": "MDA-MB-231",
                "injection_model": "intracardiac",
                "day0": "2026-07-01",
            },
            headers=headers,
        ).json()
        yield base_url, key, data_dir, study["id"]  # type: ignore[misc]


def stored_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


def test_declared_length_over_limit(server) -> None:  # type: ignore[no-untyped-def]
    base_url, key, data_dir, study_id = server
    body = b"animal,day,site,total_flux_ps\n" + b"x" * (2 * LIMIT)
    response = httpx2.post(
        f"{base_url}/studies/{study_id}/measurements/import",
        files={"file": ("big.csv", body, "text/csv")},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "OSTEOLUX_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert stored_files(data_dir) == []


def test_chunked_body_over_limit(server) -> None:  # type: ignore[no-untyped-def]
    base_url, key, data_dir, study_id = server
    boundary = "osteoluxboundary"

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        for _ in range(40):
            yield b"y" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx2.post(
        f"{base_url}/studies/{study_id}/measurements/import",
        content=chunks(),
        headers={"X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stored_files(data_dir) == []


def test_under_the_limit_still_works(server) -> None:  # type: ignore[no-untyped-def]
    base_url, key, _, study_id = server
    response = httpx2.get(f"{base_url}/studies/{study_id}", headers={"X-API-Key": key})
    assert response.status_code == 200
    # the server is still healthy after refusing large bodies
    with socket.create_connection(("127.0.0.1", int(base_url.rsplit(":", 1)[1])), timeout=5):
        pass
