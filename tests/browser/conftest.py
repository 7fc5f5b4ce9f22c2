"""A real ``osteolux serve`` on SQLite with the built workspace, and Debian's chromium driven by
Playwright for Python (nothing downloads a browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import CHROMIUM_FLAGS, ROOT, live_server, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DIST = ROOT / "web" / "dist" / "index.html"
#: Screenshots of each step, for people to look at (git-ignored).
OUTPUT = ROOT / "test-output" / "workspace"

FLAGS = list(CHROMIUM_FLAGS)


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The server's URL and an admin key of a fresh lab."""
    if not DIST.is_file():
        _missing("the workspace is not built (`make test` runs `npm ci && npm run build` in web/)")
    data = tmp_path_factory.mktemp("workspace") / "data"
    created = run_cli(data, "create-lab", "Bone Metastasis Lab")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]
    with live_server(data) as base_url:
        yield {"url": base_url, "key": key}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        _missing("chromium is not installed (`make test` installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT.glob("*.png"):
        old.unlink()
    return OUTPUT
