"""The API process freezes what it built at start-up out of the cyclic garbage collector's
reach (a full collection over it held the GIL ~150 ms) and unfreezes it at shutdown."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_startup_freezes_and_shutdown_unfreezes(tmp_path: Path) -> None:
    gc.unfreeze()
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert gc.get_freeze_count() > 10_000  # the modules and the app, not a handful
    assert gc.get_freeze_count() == 0
