"""Swagger UI at /docs pre-fills no form field or query parameter with a value the server
would not assume itself (it sends what it pre-fills), in Debian's chromium via Playwright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.live_server import live_server

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


def _has_example(spec: dict[str, Any], operation: dict[str, Any]) -> bool:
    """Whether a query parameter or form field declares an example (Swagger UI fills fields
    from examples and defaults only)."""
    parameters = operation.get("parameters", [])
    fields = [p | p.get("schema", {}) for p in parameters if p["in"] == "query"]
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        if "form" in media:
            name = content["schema"]["$ref"].rsplit("/", 1)[-1]
            fields += spec["components"]["schemas"][name]["properties"].values()
    return any("example" in f or "examples" in f for f in fields)


def _is_default(shown: str, default: Any) -> bool:
    """Empty, or the declared default as Swagger UI shows it (false for False, 30 for 30.0)."""
    if shown in ("", str(default), str(default).lower()):
        return True
    try:
        return isinstance(default, int | float) and float(shown) == float(default)
    except ValueError:
        return False


@pytest.mark.browser
def test_swagger_ui_prefills_nothing_the_server_would_not_assume(
    tmp_path: Path, browser: Any
) -> None:
    """Swagger UI sends what it pre-fills: a ventral click was stored as dorsal, mice in the
    example's order. After "Try it out", every query parameter and form field is empty or
    shows the default the server applies when it is left out — checked in the browser on
    every operation whose fields declare an example and on the first of each tag (each
    opened form costs the browser ~1 s on this 500 kB schema; one per tag covers the field
    kinds without examples, which Swagger UI fills from defaults only)."""
    prefilled: list[tuple[str, str, str]] = []
    checked = 0
    tags: set[str] = set()
    with live_server(tmp_path / "data") as base_url:
        spec = httpx2.get(f"{base_url}/openapi.json").json()
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{base_url}/docs")
        page.wait_for_selector(".opblock")
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                defaults = _declared_defaults(spec, operation)
                if defaults is None:
                    continue
                tag = operation["tags"][0].replace(" ", "_")
                if tag in tags and not _has_example(spec, operation):
                    continue
                tags.add(tag)
                block = page.locator(f"#operations-{tag}-{operation['operationId']}")
                block.locator(".opblock-summary").first.click()
                block.locator("button.try-out__btn").first.click()
                block.locator(".btn.execute").first.wait_for()
                for name, _, value in block.evaluate(_FIELDS_JS):
                    if name in defaults and not _is_default(value, defaults[name]):
                        prefilled.append((f"{method.upper()} {path}", name, value))
                checked += 1
                block.locator(".opblock-summary").first.click()
        page.close()
    assert checked > 10 and len(tags) > 10
    assert prefilled == []
