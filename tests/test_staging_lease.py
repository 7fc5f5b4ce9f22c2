"""Cleaning the staging area never touches an upload in progress: each staging file is
locked (``flock``) by its upload for as long as it runs, and the lock ends with the process,
so what a killed server left behind is still cleaned."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2

from app.storage import LocalBlobStore
from tests.app.clicks import synthetic_hotel_zip
from tests.live_server import ROOT, live_server, run_cli

WEEK_AGO = time.time() - 7 * 24 * 3600


def _staged(store: LocalBlobStore) -> list[Path]:
    return sorted(store.staging_dir.glob("*.part"))


def test_clean_staging_skips_uploads_in_progress(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with store.staging(max_bytes=1024, name="click.zip") as writer:
        writer.write(b"first half ")
        (in_progress,) = _staged(store)
        os.utime(in_progress, (WEEK_AGO, WEEK_AGO))  # however old it looks
        crashed = store.staging_dir / "crashed.part"
        crashed.write_bytes(b"left by a crashed request")
        os.utime(crashed, (WEEK_AGO, WEEK_AGO))
        assert store.clean_staging(older_than_s=0) == 1
        assert not crashed.exists() and in_progress.exists()
        writer.write(b"second half")
        staged = writer.finish()
        assert store.put(staged)
    stored = store.path_for(hashlib.sha256(b"first half second half").hexdigest())
    assert stored.read_bytes() == b"first half second half"
    assert _staged(store) == []


def test_a_killed_uploads_file_is_cleaned(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from app.storage import LocalBlobStore\n"
            "with LocalBlobStore(Path(sys.argv[1])).staging(max_bytes=99, name='x') as w:\n"
            "    w.write(b'half'); print('staged', flush=True); time.sleep(600)",
            str(store.root),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "staged"
        assert store.clean_staging(older_than_s=0) == 0  # still uploading
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert len(_staged(store)) == 1  # kill -9 leaves the file ...
        assert store.clean_staging(older_than_s=0) == 1  # ... and its lock died with it
        assert _staged(store) == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout:
            holder.stdout.close()


def test_clean_staging_during_a_real_upload(tmp_path: Path) -> None:
    """The finding: `clean-staging --older-than-hours 0` while a PUT streams in failed it."""
    data_dir = tmp_path / "data"
    created = run_cli(data_dir, "create-lab", "Staging Lab")
    headers = {"X-API-Key": created.stdout.strip().splitlines()[-1]}
    content = synthetic_hotel_zip(tmp_path)
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    staging = data_dir / "blobs" / "staging"
    with (
        live_server(data_dir) as base_url,
        httpx2.Client(base_url=base_url, headers=headers, timeout=120) as client,
    ):
        study = client.post(
            "/studies",
            json={
                "name": "S",
                "cell_line": "MDA-MB-231",
                "injection_model": "intracardiac",
                "day0": "2026-07-01",
            },
        ).json()
        arm = client.post(
            f"/studies/{study['id']}/arms",
            json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
        ).json()
        for i in range(5):
            client.post(
                f"/studies/{study['id']}/animals",
                json={"identifier": str(3466 + i), "arm_id": arm["id"]},
            ).raise_for_status()
        session = client.post(
            f"/studies/{study['id']}/sessions", json={"acquired_at": "2026-07-15T10:15:00+02:00"}
        ).json()
        half_sent, go_on = threading.Event(), threading.Event()

        def body() -> Iterator[bytes]:
            yield content[: len(content) // 2]
            half_sent.set()
            go_on.wait(timeout=60)
            yield content[len(content) // 2 :]

        result: dict[str, httpx2.Response] = {}

        def upload() -> None:
            result["response"] = client.put(
                f"/studies/{study['id']}/sessions/{session['id']}/acquisitions/SYN20260715101500",
                content=body(),
                headers={"Content-Digest": f"sha-256=:{digest}:"},
            )

        uploader = threading.Thread(target=upload)
        uploader.start()
        try:
            assert half_sent.wait(timeout=60)
            deadline = time.monotonic() + 30
            while not list(staging.glob("*.part")) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(staging.glob("*.part")), "the upload never reached staging"
            cleaned = run_cli(data_dir, "clean-staging", "--older-than-hours", "0")
            assert cleaned.returncode == 0, cleaned.stderr
            assert "removed 0" in cleaned.stdout
        finally:
            go_on.set()
            uploader.join(timeout=120)
        response = result["response"]
        assert response.status_code == 201, response.text
        original = client.get(
            f"/studies/{study['id']}/sessions/{session['id']}/acquisitions/"
            f"{response.json()['id']}/original"
        )
        assert original.content == content
