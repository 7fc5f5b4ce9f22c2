"""The command line: create a lab, then serve the API on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import httpx2

from tests.live_server import live_server, run_cli


def test_create_lab_then_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = run_cli(data_dir, "create-lab", "Bone Metastasis Lab")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("olx_")
    assert (data_dir / "osteolux.db").is_file()

    duplicate = run_cli(data_dir, "create-lab", "Bone Metastasis Lab")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    with live_server(data_dir) as base_url:
        me = httpx2.get(f"{base_url}/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert me.json()["lab_name"] == "Bone Metastasis Lab"
        denied = httpx2.get(f"{base_url}/studies")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"


def test_serve_on_a_fresh_data_dir_applies_migrations(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    with live_server(data_dir) as base_url:
        assert httpx2.get(f"{base_url}/health").json()["status"] == "ok"
    assert (data_dir / "osteolux.db").is_file()
    assert (data_dir / "blobs").is_dir()


def test_clean_staging(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    staging = data_dir / "blobs" / "staging"
    staging.mkdir(parents=True)
    old = staging / "crashed.part"
    old.write_bytes(b"half an upload")
    result = run_cli(data_dir, "clean-staging", "--older-than-hours", "0")
    assert result.returncode == 0, result.stderr
    assert "removed 1" in result.stdout
    assert not old.exists()
