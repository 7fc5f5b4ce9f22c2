"""The lab workspace end to end in a real browser, as a lab uses it.

Sign in → create a study with arms and a roster import → open a session and upload two
real-format clicks (Living Image's reference click and a synthetic one) → review an
acquisition → draw and move an ROI and see the flux the API reports → compare arms and
download the Prism CSV. Each step leaves a screenshot in ``test-output/workspace/`` and its
time in ``timings.json`` there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import zip_folder

pytestmark = pytest.mark.browser

ROSTER = """Ear tag,Arm,Cage,Sex,Strain,Date of birth
3466,Isotype IgG1,C1,F,NSG,2021-10-01
3467,Isotype IgG1,C1,F,NSG,2021-10-01
3468,Isotype IgG1,C1,F,NSG,2021-10-01
3469,1D11 10 mg/kg,C2,F,NSG,2021-10-01
3470,1D11 10 mg/kg,C2,F,NSG,2021-10-01
"""


def _measured(page: Any) -> int:
    """How many server measurements the ROI editor has shown so far."""
    return int(
        page.evaluate(
            "() => document.querySelector('[data-testid=selected-flux]')?.dataset.measured ?? 0"
        )
    )


def _wait_measured(page: Any, seen: int) -> None:
    """Until the editor shows the server's answer to the latest ROI change."""
    page.wait_for_function(
        "n => { const e = document.querySelector('[data-testid=selected-flux]');"
        " return e && Number(e.dataset.measured) > n && !e.textContent.includes('measuring'); }",
        arg=seen,
    )


def _flux(api: httpx2.Client, acq_path: str, roi_id: str) -> float:
    measurements = api.get(acq_path).json()["measurements"]
    return next(m["total_flux_ps"] for m in measurements if m["roi_id"] == roi_id)


class Steps:
    """Times each step and saves its screenshot."""

    def __init__(self, page: Any, out: Path) -> None:
        self.page, self.out, self.times = page, out, {}

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.out / f"{name}.png"), full_page=True)

    def timed(self, name: str, started: float) -> None:
        self.times[name] = round(time.perf_counter() - started, 3)
        self.shot(name)


@pytest.fixture(scope="module")
def page(browser: Any, server: dict[str, str], shots: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    p = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("request", lambda r: requests.append(r.url))
    yield p
    context.close()
    # offline: nothing but this server (and blob:/data: URLs made in the page)
    assert [u for u in requests if not u.startswith((server["url"], "blob:", "data:"))] == []
    # the key never travels in a URL
    assert [u for u in requests if server["key"] in u] == []
    # 4xx answers the workspace shows to the user, and the deliberate network cut, are logged
    # by Chromium as failed loads
    assert [e for e in errors if "status of 4" not in e and "ERR_CONNECTION_RESET" not in e] == []


@pytest.fixture(scope="module")
def clicks(tmp_path_factory: pytest.TempPathFactory, ivis_reference_folder: Path) -> list[Path]:
    """Living Image's reference click and a synthetic five-mouse click, zipped."""
    folder = tmp_path_factory.mktemp("clicks")
    ref = folder / "DG20220105114235.zip"
    ref.write_bytes(zip_folder(ivis_reference_folder))
    mice, sources = default_hotel((2.0e5, 1.0e7, 8.0e6, 5.0e5, 1.0e5))
    click = write_synthetic_click(
        folder / "SY20220105120000", mice=mice, sources=sources, click_number="SY20220105120000"
    )
    syn = folder / "SY20220105120000.zip"
    syn.write_bytes(zip_folder(click.path))
    # a week later: the control mice's signal grew tenfold, the treated mice's stayed
    mice, sources = default_hotel((2.0e6, 1.0e8, 8.0e7, 5.0e5, 1.0e5))
    click = write_synthetic_click(
        folder / "SY20220112120000", mice=mice, sources=sources, click_number="SY20220112120000"
    )
    later = folder / "SY20220112120000.zip"
    later.write_bytes(zip_folder(click.path))
    return [ref, syn, later]


def test_workspace_end_to_end(
    page: Any,
    server: dict[str, str],
    shots: Path,
    clicks: list[Path],
    ivis_reference_folder: Path,
) -> None:
    base, key = server["url"], server["key"]
    steps = Steps(page, shots)
    with httpx2.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as api:
        try:
            _scenario(page, steps, api, base, key, clicks, shots, ivis_reference_folder)
        finally:
            steps.shot("last")  # where it stopped, when it fails


def _scenario(
    page: Any,
    steps: Steps,
    api: httpx2.Client,
    base: str,
    key: str,
    clicks: list[Path],
    shots: Path,
    reference_folder: Path,
) -> None:
    # 1. cold open: the page, its script and style, and the sign-in form
    t = time.perf_counter()
    response = page.goto(f"{base}/")
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page.wait_for_selector("input[name=key]")
    nav = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {load: n.loadEventEnd, dcl: n.domContentLoadedEventEnd,"
        " form: performance.now()}; }"
    )
    steps.timed("01-sign-in", t)
    steps.times["cold_open_ms"] = nav
    assert nav["load"] < 1000, nav

    # sign in: the key stays in sessionStorage, never in a URL
    t = time.perf_counter()
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Studies of Bone Metastasis Lab")
    assert page.evaluate("() => sessionStorage.getItem('osteolux.apiKey')") == key
    assert key not in page.url
    steps.timed("02-studies", t)

    # 2. a study with a control and a treatment arm, animals from a roster CSV
    t = time.perf_counter()
    page.click("text=New study…")
    form = page.locator("form[aria-label='New study']")
    form.locator("input[name=name]").fill("BM-07 1D11 vs isotype")
    form.locator("input[name=cell_line]").fill("MDA-MB-231-luc")
    form.locator("input[name=day0]").fill("2021-12-20")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("h1:has-text('BM-07 1D11 vs isotype')")
    arm = page.locator("form[aria-label='Add an arm']")
    arm.locator("input[name=name]").fill("Isotype IgG1")
    arm.locator("select[name=role]").select_option("control")
    arm.locator("select[name=agent_class]").select_option("isotype_control")
    arm.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=arms] >> text=Isotype IgG1")
    arm.locator("input[name=name]").fill("1D11 10 mg/kg")
    arm.locator("select[name=role]").select_option("treatment")
    arm.locator("select[name=agent_class]").select_option("neutralizing_antibody")
    arm.locator("input[name=agent]").fill("1D11")
    arm.locator("input[name=target]").fill("TGF-β")
    arm.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=arms] >> text=1D11 10 mg/kg")
    one = page.locator("form[aria-label='Add an animal']")
    one.locator("input[name=identifier]").fill("3471")
    one.locator("select[name=arm_id]").select_option(label="1D11 10 mg/kg")
    one.locator("input[name=cage]").fill("C2")
    one.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=animals] >> text=3471")
    page.set_input_files(
        "input[aria-label='Roster CSV file']",
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": ROSTER.encode()}],
    )
    page.wait_for_selector("[data-testid=roster-status] >> text=5 of 5 animals added.")
    page.wait_for_selector("[data-testid=animals] >> text=3470")
    study_id = page.url.split("#/s/")[1].split("/")[0]
    # the ROI site template on the body outline: move the left hindlimb lower, save
    site = page.locator("[data-testid=template-body] [data-site='left hindlimb']")
    site.scroll_into_view_if_needed()
    box = site.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 17, steps=4)  # 17 px = 0.1 of the 170 px semi-major axis
    page.mouse.up()
    page.fill("input[aria-label='Template reason']", "femur lower in this strain")
    page.click("text=Save template")
    page.wait_for_selector("[data-testid=template-saved]")
    steps.timed("03-study-set-up", t)
    template = api.get(f"/studies/{study_id}/roi-template").json()
    hind = next(s for s in template["sites"] if s["name"] == "left hindlimb")
    assert template["is_default"] is False
    assert hind["u"] == pytest.approx(0.7, abs=0.01) and hind["v"] == pytest.approx(-0.6, abs=0.01)
    animals = api.get(f"/studies/{study_id}/animals").json()["items"]
    assert sorted(a["identifier"] for a in animals) == [
        "3466",
        "3467",
        "3468",
        "3469",
        "3470",
        "3471",
    ]

    # 3. a session, two clicks dropped at once; each ends with a review card
    t = time.perf_counter()
    page.click("a[role=tab]:has-text('Imaging sessions')")
    session_form = page.locator("form[aria-label='Open a session']")
    session_form.locator("input[name=acquired_at]").fill("2022-01-05T11:42")
    session_form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=sessions] >> text=2022-01-05")
    # the reference click as its Living Image folder (zipped in the browser), the synthetic
    # one as a zip
    page.set_input_files("input[aria-label='Click folders']", files=str(reference_folder))
    cards = page.locator("[data-testid=upload-card]")
    # the folder is zipped in the browser first: its card comes once that is done, and the
    # cards are in the order their uploads start (a loaded machine zipped it after the zip's)
    cards.first.wait_for(timeout=60_000)
    page.set_input_files("input[aria-label='Click zips']", files=[str(clicks[1])])
    for i in range(2):
        cards.nth(i).locator("text=Review").wait_for(timeout=60_000)
    steps.timed("04-uploads", t)
    # a second session a week later, for the comparison
    session_form.locator("input[name=acquired_at]").fill("2022-01-12T11:00")
    session_form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=sessions] >> text=2022-01-12")
    # ...through a network cut: the server stores the click but its answer is lost; the
    # browser retries with the same Idempotency-Key and gets the first answer back
    keys: list[str] = []

    def cut_first_answer(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/acquisitions", cut_first_answer)
    page.set_input_files("input[aria-label='Click zips']", files=[str(clicks[2])])
    cards.nth(2).locator("text=Review").wait_for(timeout=60_000)
    page.unroute("**/acquisitions")
    assert len(keys) == 2 and keys[0] == keys[1] != ""
    later = page.locator("[data-testid=sessions] tr:has-text('2022-01-12') a.chip")
    later.first.wait_for()
    assert later.count() == 1  # stored once

    # 4. review the synthetic acquisition
    t = time.perf_counter()
    cards.nth(1).locator("a:has-text('Review')").click()
    page.wait_for_selector("[data-testid=measurements]")
    page.wait_for_selector("[data-testid=roi-layer] text[data-tag='3467']")
    page.wait_for_function("() => document.querySelector('img.photo')?.complete")
    steps.timed("05-review", t)

    base_path = page.url.split("#")[1].replace("/s/", "/studies/", 1)
    study_path, rest = base_path.split("/a/")
    session_id, acquisition_id = rest.split("/")
    acq_path = f"{study_path}/sessions/{session_id}/acquisitions/{acquisition_id}"

    # 4b. the first two mice were swapped on the stage: on the image, drag tag 3466 onto the
    # second mouse (the tags swap), give the reason, save
    t = time.perf_counter()
    page.evaluate("() => window.scrollTo(0, 0)")
    first = page.locator("[data-testid=roi-layer] text[data-tag='3466']").bounding_box()
    second = page.locator("[data-testid=roi-layer] text[data-tag='3467']").bounding_box()
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(second["x"] + second["width"] / 2, second["y"] + 40, steps=8)
    page.mouse.up()
    page.wait_for_selector("[data-testid=roi-layer] text.tag.changed[data-tag='3467']")
    listed = page.locator("[data-testid=mice] li[data-position='0'] select")
    assert listed.input_value() == "3467"  # the list below follows
    steps.shot("05a-tags-dragged")
    page.fill("input[aria-label='Field correction reason']", "mice 1 and 2 swapped on the stage")
    page.click("text=Save mouse order")
    page.wait_for_selector("text=Save mouse order", state="detached")
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid=mice] li[data-position='0'] select\")"
        "?.value === '3467'"
    )
    page.wait_for_selector("[data-testid=roi-layer] text[data-tag='3466']")
    page.wait_for_selector("[data-testid=measurements] tr:has-text('3466 spine') >> text=1.00e+7")
    page.evaluate("() => window.scrollTo(0, 0)")  # the drags below use viewport coordinates
    steps.timed("05b-mouse-order-fixed", t)
    field = [a["identifier"] for a in api.get(acq_path).json()["animals"]]
    assert field == ["3467", "3466", "3468", "3469", "3470"]
    # the signal stayed where it was: the bright second mouse is now 3466
    rois = api.get(f"{acq_path}/image").json()["rois"]
    spine = next(r for r in rois if r["animal"] == "3466" and r["site"] == "spine")
    assert _flux(api, acq_path, spine["roi_id"]) == pytest.approx(1.0e7, rel=0.02)

    # 5. move the spine ROI of mouse 3466 off its lesion: the flux shown is the API's
    before = _flux(api, acq_path, spine["roi_id"])
    box = page.locator(f"path[data-roi='{spine['roi_id']}']").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    t = time.perf_counter()
    seen = _measured(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 10, steps=6)
    page.mouse.up()
    flux = page.locator("[data-testid=selected-flux]")
    _wait_measured(page, seen)
    steps.timed("06-roi-moved", t)
    steps.times["roi_release_to_flux_ms"] = int(flux.get_attribute("data-ms"))
    now = api.get(f"{acq_path}/image").json()["rois"]
    moved = next(r for r in now if r["animal"] == "3466" and r["site"] == "spine")
    assert moved["roi_id"] != spine["roi_id"]  # a new version; the old one is history
    after = _flux(api, acq_path, moved["roi_id"])
    assert after < before / 10  # off the lesion
    shown = float(flux.inner_text().split()[0])
    assert shown == pytest.approx(after, rel=0.006)  # 3 significant digits
    # and back onto the lesion: the flux returns to the synthetic truth
    seen = _measured(page)
    page.mouse.move(x + 60, y + 10)
    page.mouse.down()
    page.mouse.move(x, y, steps=6)
    page.mouse.up()
    _wait_measured(page, seen)
    back = next(
        r
        for r in api.get(f"{acq_path}/image").json()["rois"]
        if r["animal"] == "3466" and r["site"] == "spine"
    )
    assert _flux(api, acq_path, back["roi_id"]) == pytest.approx(1.0e7, rel=0.02)
    assert float(flux.inner_text().split()[0]) == pytest.approx(1.0e7, rel=0.02)
    # its history, newest first: moved back, moved off, given to 3466 by the order fix, and
    # Living Image's original — each with its reason
    page.click("details.history summary")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=roi-history] li').length === 4"
    )
    history = page.locator("[data-testid=roi-history] li").all_inner_texts()
    assert ["adjusted in the workspace" in h for h in history] == [True, True, False, False]
    assert "mice 1 and 2 swapped on the stage" in history[2]
    assert "living_image" in history[3]

    # the colour scale: a linear 0–2e5 scale, then the whole session's range
    page.select_option("select[aria-label='Scale type']", "linear")
    # the new type's default range reaches the boxes in an effect after the next render; on
    # a loaded machine it landed in the middle of a fill ("1.95e+6" + "2e5"): fill again
    # until what was typed stays
    boxes = {"input[aria-label='Colour max']": "2e5", "input[aria-label='Colour min']": "0"}
    for _ in range(10):
        for box, value in boxes.items():
            page.fill(box, value)
        page.wait_for_timeout(300)
        if all(page.input_value(box) == value for box, value in boxes.items()):
            break
    page.click("section[aria-label='Colour scale'] >> text=Apply")
    page.wait_for_selector("[data-testid=colourbar] >> text=2.00e+5")
    page.click("text=Range of this session")
    page.wait_for_function(
        "() => document.querySelector(\"input[aria-label='Colour max']\").value !== '2.00e+5'"
    )
    steps.shot("06a-colour-scale")

    # 5b. draw a new circle on mouse 3468's lesion: measured at once, as the API says
    t = time.perf_counter()
    lesion = next(r for r in now if r["animal"] == "3468" and r["site"] == "spine")
    page.select_option("select[aria-label='New ROI mouse']", "3468")
    page.click("[role=toolbar] >> text=circle")
    seen = _measured(page)
    target = page.locator(f"path[data-roi='{lesion['roi_id']}']")
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] / 2, y, steps=5)
    page.mouse.up()
    _wait_measured(page, seen)
    steps.timed("06b-roi-drawn", t)
    drawn = [
        r
        for r in api.get(f"{acq_path}/image").json()["rois"]
        if r["animal"] == "3468" and r["site"] == "custom"
    ]
    assert len(drawn) == 1 and drawn[0]["geometry"]["type"] == "circle"
    value = _flux(api, acq_path, drawn[0]["roi_id"])
    assert float(flux.inner_text().split()[0]) == pytest.approx(value, rel=0.006)
    assert value > 0.5 * 8.0e6  # most of the 8e6 p/s lesion lies inside

    # keyboard: three nudges right (one binned pixel = 8 sensor px each), saved when released
    before_nudge = drawn[0]["geometry"]["center_col"]
    seen = _measured(page)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    _wait_measured(page, seen)
    nudged = [
        r
        for r in api.get(f"{acq_path}/image").json()["rois"]
        if r["animal"] == "3468" and r["site"] == "custom"
    ]
    assert nudged[0]["geometry"]["center_col"] == pytest.approx(before_nudge + 24, abs=0.1)

    # a polygon around mouse 3469's lesion: click the corners, Enter closes it
    page.select_option("select[aria-label='New ROI mouse']", "3469")
    page.click("[role=toolbar] >> text=polygon")
    box = page.locator(
        f"path[data-roi='{next(r for r in now if r['animal'] == '3469')['roi_id']}']"
    ).bounding_box()
    cx, cy, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 2
    seen = _measured(page)
    for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h)):
        page.mouse.click(cx + dx, cy + dy)
    page.keyboard.press("Enter")
    _wait_measured(page, seen)
    polygon = next(
        r
        for r in api.get(f"{acq_path}/image").json()["rois"]
        if r["animal"] == "3469" and r["geometry"]["type"] == "polygon"
    )
    assert len(polygon["geometry"]["vertices"]) == 4
    # the square around Living Image's 4σ circle holds the whole 5e5 p/s source
    assert _flux(api, acq_path, polygon["roi_id"]) == pytest.approx(5.0e5, rel=0.02)

    # 5c. the study's template on mouse 3470 (Living Image only drew its spine)
    page.select_option("select[aria-label='New ROI mouse']", "3470")
    page.click("text=Apply the study template to 3470")
    page.wait_for_selector("[data-testid=measurements] >> text=3470 left_hindlimb")
    sites = {
        r["site"] for r in api.get(f"{acq_path}/image").json()["rois"] if r["animal"] == "3470"
    }
    assert {"thorax", "spine", "left_hindlimb", "right_hindlimb"} <= sites
    steps.shot("06c-template-applied")

    # 7. compare the arms: a form with visible defaults, tables, inline plots, downloads
    t = time.perf_counter()
    page.click("a[role=tab]:has-text('Compare arms')")
    compare = page.locator("form[aria-label='Compare arms']")
    assert compare.locator("input[name=floor]").input_value() == "10000"
    # arms by day first: geometric means at the spine, day 23 of the isotype arm
    page.select_option("select[aria-label='Summary site']", "spine")
    page.wait_for_selector("[data-testid=summary] >> text=23")
    compare.locator("select[name=site]").select_option("spine")  # the synthetic mice's site
    compare.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=comparison]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-testid=plot]')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 3"
    )
    steps.timed("07-compare", t)
    # each number's definition on hover, from the API's own OpenAPI descriptions
    defined = page.locator("[data-analysis=per_day] th.defined")
    assert defined.count() >= 3
    assert all(len(defined.nth(i).get_attribute("title") or "") > 10 for i in range(3))
    with page.expect_download() as download:
        compare.locator("text=Download Prism CSV").click()
    saved = Path(download.value.path()).read_bytes()
    assert saved == api.get(f"/studies/{study_id}/export/prism.csv").content
    # and a result table of the comparison, as CSV
    comparison_id = api.get(f"/studies/{study_id}/comparisons").json()[0]["id"]
    with page.expect_download() as download:
        page.click("[data-testid=comparison] >> text=per_day.csv")
    table = Path(download.value.path()).read_bytes()
    assert (
        table == api.get(f"/studies/{study_id}/comparisons/{comparison_id}/tables/per_day").content
    )

    # 6. follow mouse 3466: both sessions' images on one scale, its growth curve
    t = time.perf_counter()
    page.click("a[role=tab]:has-text('Set-up')")
    page.click("[data-testid=animals] >> text=3466")
    page.select_option("select[aria-label='Growth site']", "spine")
    page.wait_for_selector("[data-testid=animal-series] >> text=23")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=sequence] canvas.lum').length === 3"
    )
    steps.timed("08-follow-an-animal", t)

    # 8. the audit trail says who fixed the mouse order, when and why
    t = time.perf_counter()
    page.click("a[role=tab]:has-text('Audit trail')")
    page.select_option("form[aria-label='Audit filters'] select >> nth=0", "acquisition")
    page.select_option("form[aria-label='Audit filters'] select >> nth=1", "update")
    page.wait_for_selector("[data-testid=audit] >> text=mice 1 and 2 swapped on the stage")
    steps.timed("09-audit", t)

    # sign out: the key is gone from the tab
    page.click("text=Sign out")
    page.wait_for_selector("input[name=key]")
    assert page.evaluate("() => sessionStorage.getItem('osteolux.apiKey')") is None
    (shots / "timings.json").write_text(json.dumps(steps.times, indent=2))
