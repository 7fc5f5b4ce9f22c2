"""Swagger UI at /docs renders in a real headless Chromium with no network but loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.live_server import live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A CDN reference would fail to load here, as it would in an offline lab.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def render(url: str, profile: Path) -> str:
    """The DOM after Swagger UI's JavaScript has run, every host but 127.0.0.1 unresolvable."""
    result = subprocess.run(
        [
            CHROMIUM or "chromium",
            "--headless",
            *BROWSER_FLAGS,
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


#: A form field as Swagger UI shows it after "Try it out": (row name, element, value).
_FIELDS_JS = """op => Array.from(op.querySelectorAll('input, select'))
  .filter(el => el.type !== 'file' && el.type !== 'checkbox'
    && !el.closest('.responses-wrapper') && !el.closest('.content-type-wrapper')
    && !el.classList.contains('content-type'))
  .map(el => {
    const row = el.closest('tr');
    const name = row ? row.innerText.split('\\n')[0].replace(/[*\\u00a0\\t]/g, '').trim() : '';
    return [name, el.tagName, el.value];
  })"""


def _declared_defaults(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """Defaults of an operation's query parameters and form fields; None if it has neither."""
    defaults: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query":
            defaults[parameter["name"]] = parameter.get("schema", {}).get("default")
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        if "form" in media:
            name = content["schema"]["$ref"].rsplit("/", 1)[-1]
            for field, schema in spec["components"]["schemas"][name]["properties"].items():
                defaults[field] = schema.get("default")
    return defaults or None


@pytest.mark.browser
def test_swagger_ui_prefills_nothing_the_server_would_not_assume(tmp_path: Path) -> None:
    """Swagger UI sends what it pre-fills: a ventral click was stored as dorsal, mice in the
    example's order. After "Try it out", every query parameter and form field of every
    operation is empty or shows the default the server applies when it is left out."""
    if CHROMIUM is None:
        message = "chromium is not installed (`make test` installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    prefilled: list[tuple[str, str, str]] = []
    checked = 0
    with live_server(tmp_path / "data") as base_url, sync_playwright() as playwright:
        spec = httpx2.get(f"{base_url}/openapi.json").json()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{base_url}/docs")
        page.wait_for_selector(".opblock")
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                defaults = _declared_defaults(spec, operation)
                if defaults is None:
                    continue
                tag = operation["tags"][0].replace(" ", "_")
                block = page.locator(f"#operations-{tag}-{operation['operationId']}")
                block.locator(".opblock-summary").first.click()
                block.locator("button.try-out__btn").first.click()
                block.locator(".btn.execute").first.wait_for()
                for name, _, value in block.evaluate(_FIELDS_JS):
                    default = defaults.get(name)
                    shown = {"", str(default), str(default).lower()}  # booleans show as false
                    if name in defaults and value not in shown:
                        prefilled.append((f"{method.upper()} {path}", name, value))
                checked += 1
                block.locator(".opblock-summary").first.click()
        browser.close()
    assert checked > 10
    assert prefilled == []
