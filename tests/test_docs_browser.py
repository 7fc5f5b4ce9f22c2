"""Swagger UI at /docs renders in a real headless Chromium with no network but loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx2
import pytest

from tests.live_server import CHROMIUM_FLAGS, live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, profile: Path) -> str:
    """The DOM after Swagger UI's JavaScript has run, every host but 127.0.0.1 unresolvable."""
    result = subprocess.run(
        [
            CHROMIUM or "chromium",
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.browser
def test_swagger_ui_renders_offline(tmp_path: Path) -> None:
    if CHROMIUM is None:
        message = "chromium is not installed (`make test` installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with live_server(tmp_path / "data") as base_url:
        html = httpx2.get(f"{base_url}/docs").text
        external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
        assert [u for u in external if not u.startswith(base_url)] == []
        dom = render(f"{base_url}/docs", tmp_path / "chromium-profile")
    paths = set(re.findall(r'data-path="([^"]+)"', dom))
    assert {"/studies", "/studies/{study_id}/arms", "/studies/{study_id}/animals"} <= paths
    assert dom.count('class="opblock-summary-description"') >= 15
    assert "Register a study" in dom
    assert "Authorize" in dom
