"""Settings come from OSTEOLUX_* variables and nothing is created by importing the service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OSTEOLUX_DATA_DIR", str(tmp_path / "lab-data"))
    monkeypatch.setenv("OSTEOLUX_MAX_UPLOAD_BYTES", "1048576")
    settings = Settings()
    assert settings.max_upload_bytes == 1048576
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'lab-data' / 'osteolux.db'}"
    assert settings.resolved_blob_dir == tmp_path / "lab-data" / "blobs"


def test_s3_store_needs_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTEOLUX_BLOB_STORE", "s3")
    with pytest.raises(ValidationError, match="OSTEOLUX_S3_BUCKET"):
        Settings()


def test_invalid_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTEOLUX_MAX_UPLOAD_BYTES", "-5")
    with pytest.raises(ValidationError):
        Settings()


def test_import_and_create_app_touch_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    code = "import app.main, app.cli; app.main.create_app()"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"OSTEOLUX_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert not data_dir.exists()
    assert list(tmp_path.iterdir()) == []
