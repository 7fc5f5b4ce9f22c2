"""The command line: create a lab, then serve the API on the embedded defaults."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
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


def test_create_key_for_an_existing_lab(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli(data_dir, "create-lab", "Bone Metastasis Lab").returncode == 0
    created = run_cli(
        data_dir,
        "create-key",
        "--lab",
        "Bone Metastasis Lab",
        "--name",
        "PI after losing the bootstrap key",
        "--reason",
        "bootstrap key lost with the old laptop",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("olx_")
    unknown = run_cli(data_dir, "create-key", "--lab", "No Such Lab")
    assert unknown.returncode == 1
    assert "No lab named" in unknown.stderr and "'Bone Metastasis Lab'" in unknown.stderr

    with live_server(data_dir) as base_url:
        headers = {"Authorization": f"Bearer {key}"}
        me = httpx2.get(f"{base_url}/me", headers=headers).json()
        assert (me["lab_name"], me["role"]) == ("Bone Metastasis Lab", "admin")
        keys = httpx2.get(f"{base_url}/keys", headers=headers).json()["items"]
        assert {k["name"] for k in keys} == {"bootstrap admin", "PI after losing the bootstrap key"}

    with sqlite3.connect(data_dir / "osteolux.db") as db:
        events = db.execute(
            "SELECT action, object_type, api_key_id, reason FROM audit_event"
        ).fetchall()
    assert events == [("create", "api_key", None, "bootstrap key lost with the old laptop")]


def test_fsck_reports_missing_files_and_removes_old_orphans(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli(data_dir, "create-lab", "Bone Metastasis Lab").returncode == 0
    blobs = data_dir / "blobs"
    orphan = hashlib.sha256(b"moved in before a kill -9").hexdigest()
    orphan_path = blobs / orphan[:2] / orphan[2:4] / orphan
    orphan_path.parent.mkdir(parents=True)
    orphan_path.write_bytes(b"moved in before a kill -9")
    two_days_ago = time.time() - 48 * 3600
    os.utime(orphan_path, (two_days_ago, two_days_ago))

    report = run_cli(data_dir, "fsck")
    assert report.returncode == 0, report.stderr
    assert "checked 0 blob(s)" in report.stdout
    assert f"ORPHAN {orphan}: 25 bytes, 48.0 h old, no row; kept" in report.stdout
    assert orphan_path.exists()

    removed = run_cli(data_dir, "fsck", "--remove-orphans")
    assert f"ORPHAN {orphan}" in removed.stdout and "removed" in removed.stdout
    assert not orphan_path.exists()

    lost = hashlib.sha256(b"a click whose file was deleted").hexdigest()
    with sqlite3.connect(data_dir / "osteolux.db") as db:
        db.execute(
            "INSERT INTO blob (sha256, size_bytes, media_type, created_at) "
            "VALUES (?, 30, 'application/zip', '2026-07-01 10:00:00.000000')",
            (lost,),
        )
    damaged = run_cli(data_dir, "fsck")
    assert damaged.returncode == 1
    assert f"MISSING {lost}" in damaged.stdout
    assert "restore those files from a backup" in damaged.stderr
