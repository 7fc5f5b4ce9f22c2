"""Exporting a study from the workspace in a real browser: "Export study" submits the job,
its progress (files done of all) is shown until the ZIP is offered; the ZIP downloads with
MANIFEST.json in it, is listed among the study's exports, and is deleted with a reason.
The screenshot is ``test-output/workspace/11-export.png``."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import httpx2
import pytest

pytestmark = pytest.mark.browser

#: Every line the progress shows, in order (a MutationObserver in the page).
_RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  new MutationObserver(() => {
    const text = document.querySelector('[data-testid=export-progress]')?.textContent;
    if (text && text !== window.progressSeen.at(-1)) window.progressSeen.push(text);
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
_PROGRESS = (
    r"Waiting for a worker…|Planning the files…|Exporting: \d+ of \d+ file\(s\)|Done: \d+ file\(s\)"
)
CONTROL, TREATED = ("3466", "3467", "3468"), ("3469", "3470", "3471")


def _small_study(api: httpx2.Client) -> dict[str, Any]:
    """Two arms of three mice, whole-body flux on three days (a measurement import)."""
    study = api.post(
        "/studies",
        json={
            "name": "Export me",
            "cell_line": "MDA-MB-231-luc",
            "injection_model": "intracardiac",
            "day0": "2022-01-20",
        },
    ).json()
    base = f"/studies/{study['id']}"
    control = api.post(
        f"{base}/arms", json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"}
    ).json()
    treated = api.post(
        f"{base}/arms",
        json={
            "name": "Inhibitor",
            "role": "treatment",
            "agent_class": "inhibitor",
            "control_arm_id": control["id"],
        },
    ).json()
    for arm, animals in ((control, CONTROL), (treated, TREATED)):
        for animal in animals:
            made = api.post(f"{base}/animals", json={"identifier": animal, "arm_id": arm["id"]})
            assert made.status_code == 201, made.text
    lines = ["animal,day,site,total_flux_ps"] + [
        f"{animal},{day},whole_body,{1e5 * (i + 1) * 2**day:.6g}"
        for i, animal in enumerate(CONTROL + TREATED)
        for day in (0, 7, 14)
    ]
    imported = api.post(
        f"{base}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    return study


def test_export_a_study_from_the_workspace(
    browser: Any, server: dict[str, str], shots: Path
) -> None:
    with httpx2.Client(
        base_url=server["url"], headers={"X-API-Key": server["key"]}, timeout=60
    ) as api:
        study = _small_study(api)
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, accept_downloads=True
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(f"{server['url']}/")
            page.fill("input[name=key]", server["key"])
            page.click("button[type=submit]")
            page.wait_for_selector("text=Studies of")
            page.goto(f"{server['url']}/#/s/{study['id']}/setup")
            panel = page.locator("[data-testid=exports]")
            panel.locator("summary").click()
            panel.locator("text=None yet.").wait_for()
            panel.locator("input[name=sites][value=whole_body]").check()
            page.evaluate(_RECORD_PROGRESS)
            panel.locator("[data-testid=export-start]").click()
            # the job's progress, then its ZIP offered for download
            panel.locator("[data-testid=export-progress]").wait_for()
            offered = panel.locator("[data-testid=export-download]")
            offered.wait_for(timeout=60_000)
            progress = panel.locator("[data-testid=export-progress]").inner_text()
            listed = api.get(f"/studies/{study['id']}/exports").json()["items"]
            assert len(listed) == 1 and listed[0]["state"] == "succeeded", listed
            total = listed[0]["progress"]["total"]
            assert progress == f"Done: {total} file(s)"
            seen = page.evaluate("() => window.progressSeen")
            (shots / "export-progress.json").write_text(json.dumps(seen, ensure_ascii=False))
            assert seen[-1] == progress
            assert all(re.fullmatch(_PROGRESS, line) for line in seen), seen
            row = panel.locator(f"[data-export='{listed[0]['id']}']")
            assert "whole body" in row.inner_text() and listed[0]["zip"]["sha256"][:12] in (
                row.inner_text()
            )
            page.screenshot(path=str(shots / "11-export.png"), full_page=True)

            with page.expect_download() as download:
                offered.click()
            saved = Path(download.value.path()).read_bytes()
            assert download.value.suggested_filename == listed[0]["zip"]["filename"]
            assert saved == api.get(listed[0]["download_url"]).content
            with zipfile.ZipFile(io.BytesIO(saved)) as archive:
                manifest = json.loads(archive.read("MANIFEST.json"))
                assert manifest["study"]["id"] == study["id"]
                assert sorted(archive.namelist()) == sorted(
                    [f["path"] for f in manifest["files"]] + ["MANIFEST.json"]
                )
            assert manifest["export"]["options"]["sites"] == ["whole_body"]

            # deleted with a reason asked for; the reason is in the audit trail
            page.once("dialog", lambda dialog: dialog.accept("exported for the wrong lab meeting"))
            row.locator("[data-testid=export-delete]").click()
            panel.locator("text=None yet.").wait_for()
            assert api.get(f"/studies/{study['id']}/exports").json()["total"] == 0
            events = api.get(f"/studies/{study['id']}/audit", params={"action": "delete_export"})
            assert [e["reason"] for e in events.json()["items"]] == [
                "exported for the wrong lab meeting"
            ]
        finally:
            context.close()
    assert errors == []
