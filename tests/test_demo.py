"""`osteolux demo` end to end: it builds the whole demo study through the API, and what the
API then serves matches the synthetic truth the demo put into its images."""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import cli, demo
from app.config import Settings, get_settings
from app.main import create_app
from tests.live_server import live_server

SITES = ("whole_body", "spine", "skull_mandible", "thorax", "left_hindlimb", "right_hindlimb")


@dataclass
class DemoRun:
    stdout: str
    client: TestClient
    study_id: str
    plan: demo.DemoPlan
    data_dir: Path
    key: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("OSTEOLUX_")]:
            mp.delenv(name)
        mp.setenv("OSTEOLUX_DATA_DIR", str(data_dir))
        mp.setenv("OSTEOLUX_LOG_LEVEL", "WARNING")
        get_settings.cache_clear()
        try:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert cli.main(["demo"]) == 0
                # A second run must not fail: it makes "Demo lab 2" with its own study
                # (--small, 5 mice per arm and 4 sessions, to keep the test short).
                assert cli.main(["demo", "--small"]) == 0
        finally:
            get_settings.cache_clear()
    stdout = out.getvalue()
    keys = re.findall(r"^(olx_\S+)$", stdout, re.MULTILINE)
    assert len(keys) == 2 and "Lab 'Demo lab 2'" in stdout, stdout
    study_id = re.findall(r"^Study id: (\S+)$", stdout, re.MULTILINE)[0]
    settings = Settings(data_dir=data_dir, log_level="WARNING")
    with TestClient(create_app(settings), headers={"X-API-Key": keys[0]}) as client:
        yield DemoRun(stdout, client, study_id, demo.plan_study(), data_dir, keys[0])


def _get(run: DemoRun, path: str, **params: Any) -> Any:
    response = run.client.get(f"/studies/{run.study_id}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json() if "json" in response.headers["content-type"] else response


def _items(body: Any) -> list[dict[str, Any]]:
    return body["items"] if isinstance(body, dict) else body


def test_prints_what_to_open(demo_run: DemoRun) -> None:
    assert "http://127.0.0.1:8000/docs" in demo_run.stdout
    assert "make serve" in demo_run.stdout
    assert len(re.findall(r"^  day +\d+: 16 images uploaded", demo_run.stdout, re.M)) == 8
    assert len(re.findall(r"^  day +\d+: 8 images uploaded", demo_run.stdout, re.M)) == 4


def test_arms_animals_sessions(demo_run: DemoRun) -> None:
    arms = _items(_get(demo_run, "/arms"))
    assert {a["agent_class"] for a in arms} == {
        "vehicle",
        "isotype_control",
        "inhibitor",
        "neutralizing_antibody",
    }
    by_id = {a["id"]: a for a in arms}
    for arm in arms:
        if arm["role"] == "treatment":
            control = by_id[arm["control_arm_id"]]
            expected = "vehicle" if arm["agent_class"] == "inhibitor" else "isotype_control"
            assert control["agent_class"] == expected
    animals = _items(_get(demo_run, "/animals", limit=500))
    assert len(animals) == 40
    assert {len([a for a in animals if a["arm_id"] == arm["id"]]) for arm in arms} == {10}
    assert len({a["cage"] for a in animals}) == 8
    sessions = _items(_get(demo_run, "/sessions", limit=500))
    assert sorted(s["day"] for s in sessions) == list(demo.SESSION_DAYS)


def test_every_cage_imaged_dorsal_and_ventral(demo_run: DemoRun) -> None:
    animals = {a["id"]: a for a in _items(_get(demo_run, "/animals", limit=500))}
    for s in _items(_get(demo_run, "/sessions", limit=500)):
        acquisitions = _get(demo_run, f"/sessions/{s['id']}/acquisitions")
        cages = {animals[x["animal_id"]]["cage"] for a in acquisitions for x in a["animals"]}
        assert len(acquisitions) == 2 * len(cages) == 16
        for cage in cages:
            views = sorted(
                a["view"]
                for a in acquisitions
                if animals[a["animals"][0]["animal_id"]]["cage"] == cage
            )
            assert views == ["dorsal", "ventral"]
        for a in acquisitions:
            assert 1 <= len(a["animals"]) <= 5
            # the sites, and (issue 13) the background square giving their detection limits
            assert {m["site"] for m in a["measurements"]} == {*SITES, "background"}
            assert all(m["saturated_pixels"] == 0 for m in a["measurements"])


def test_measurements_for_every_site(demo_run: DemoRun) -> None:
    for site in SITES:
        points = _get(demo_run, "/series", site=site)["points"]
        assert {p["day"] for p in points} == set(demo.SESSION_DAYS), site
        assert len({p["animal"] for p in points}) == 40, site


def test_ended_animals_are_not_imaged_afterwards(demo_run: DemoRun) -> None:
    animals = _items(_get(demo_run, "/animals", limit=500))
    assert all(a["end"] is not None for a in animals)
    early = {a["identifier"]: a for a in animals if a["end"]["reason"] != "study_end"}
    assert {a["end"]["reason"] for a in early.values()} == {"death", "humane_endpoint"}
    assert 2 <= len(early) <= 8
    day0 = date.fromisoformat(_get(demo_run, "")["day0"])
    points = _get(demo_run, "/series", site="whole_body")["points"]
    for tag, animal in early.items():
        end_day = (date.fromisoformat(animal["end"]["date"]) - day0).days
        days = {p["day"] for p in points if p["animal"] == tag}
        assert days and max(days) <= end_day < demo.SESSION_DAYS[-1], tag
    # ...and those late images really show fewer mice in a hotel
    last = _items(_get(demo_run, "/sessions", day_from=24))[0]
    acquisitions = _get(demo_run, f"/sessions/{last['id']}/acquisitions")
    assert sum(len(a["animals"]) for a in acquisitions) == 2 * (40 - len(early))


def test_comparisons_have_per_day_and_survival(demo_run: DemoRun) -> None:
    stored = _get(demo_run, "/comparisons")
    # the spine's early values lie below the detection limit: the censored (Tobit) model ran
    (spine,) = [c for c in stored if c["site"] == "spine"]
    assert spine["results"]["censoring"]["method"] == "tobit"
    assert spine["results"]["mixed_model"]["status"] == "ok"
    comparisons = [c for c in stored if c["site"] != "spine"]
    assert len(comparisons) == 2
    arms = {a["id"]: a["name"] for a in _items(_get(demo_run, "/arms"))}
    assert {arms[c["treatment_arm_id"]] for c in comparisons} == {
        "LY2109761 50 mg/kg",
        "1D11 10 mg/kg",
    }
    for c in comparisons:
        assert c["site"] == "whole_body"
        for analysis in ("per_day", "survival", "incidence", "mixed_model", "growth_rate"):
            outcome = c["results"][analysis]
            assert outcome["status"] == "ok", (analysis, outcome)
            assert outcome["result"], analysis
        assert not c["inputs_changed"]
        png = _get(demo_run, f"/comparisons/{c['id']}/plots/survival")
        assert png.content.startswith(b"\x89PNG")


def test_growth_plot_is_a_png(demo_run: DemoRun) -> None:
    response = _get(demo_run, "/plots/growth")
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def _truth_whole_body(animal: demo.DemoAnimal, day: int, view: str) -> float:
    """Independent of the demo's own helpers: glow + every lesion + the day-0 seed,
    attenuated per view, from the plan's raw parameters."""
    total = demo.GLOW_PS
    for site, spec in demo.SITES.items():
        flux = animal.seeded_ps * 0.5 ** (day / 1.5) if site == "thorax" else 0.0
        lesion = animal.lesions.get(site)
        if lesion is not None and day >= lesion.onset_day:
            flux += lesion.flux_at_onset * 2.718281828459045 ** (
                lesion.growth_per_day * (day - lesion.onset_day)
            )
        total += flux * (spec.dorsal if view == "dorsal" else spec.ventral)
    return total


def test_recovered_flux_matches_the_synthetic_truth(demo_run: DemoRun) -> None:
    """Every mouse at least 1 % as bright as the brightest of its image (auto-exposure puts
    the dim ones at a few counts, like a real hotel image) is recovered within 5 %."""
    sessions = {s["id"]: s["day"] for s in _items(_get(demo_run, "/sessions", limit=500))}
    checked = 0
    for session_id, day in sessions.items():
        for acq in _get(demo_run, f"/sessions/{session_id}/acquisitions"):
            measured = {
                m["animal"]: m["total_flux_ps"]
                for m in acq["measurements"]
                if m["site"] == "whole_body"
            }
            truth = {
                tag: _truth_whole_body(demo_run.plan.animal(tag), day, acq["view"])
                for tag in measured
            }
            brightest = max(truth.values())
            for tag, value in measured.items():
                if truth[tag] >= 0.01 * brightest:
                    assert value == pytest.approx(truth[tag], rel=0.05), (day, acq["view"], tag)
                    checked += 1
    assert checked > 300


def test_recovered_spine_flux_matches_the_synthetic_truth(demo_run: DemoRun) -> None:
    """Site ROIs too: every bright spine lesion (≥ 1e6 p/s seen, ≥ 1 % of its image's
    brightest mouse) is recovered within 5 %."""
    sessions = {s["id"]: s["day"] for s in _items(_get(demo_run, "/sessions", limit=500))}
    checked = 0
    for session_id, day in sessions.items():
        for acq in _get(demo_run, f"/sessions/{session_id}/acquisitions"):
            tags = [x["identifier"] for x in acq["animals"]]
            brightest = max(
                _truth_whole_body(demo_run.plan.animal(t), day, acq["view"]) for t in tags
            )
            for m in acq["measurements"]:
                if m["site"] != "spine":
                    continue
                animal = demo_run.plan.animal(m["animal"])
                lesion = animal.lesions.get("spine")
                if lesion is None or day < lesion.onset_day:
                    continue
                seen = lesion.flux_at_onset * 2.718281828459045 ** (
                    lesion.growth_per_day * (day - lesion.onset_day)
                )
                spec = demo.SITES["spine"]
                seen *= spec.dorsal if acq["view"] == "dorsal" else spec.ventral
                if seen >= max(1e6, 0.01 * brightest):
                    assert m["total_flux_ps"] == pytest.approx(seen, rel=0.05), (day, m["label"])
                    checked += 1
    assert checked > 50
    # Two explicit pairs: a vehicle mouse late and an antibody mouse early (dorsal).
    for tag, day in (("4104", 21), ("4131", 0)):
        session_id = next(s for s, d in sessions.items() if d == day)
        acq = next(
            a
            for a in _get(demo_run, f"/sessions/{session_id}/acquisitions")
            if a["view"] == "dorsal" and any(x["identifier"] == tag for x in a["animals"])
        )
        value = next(
            m["total_flux_ps"]
            for m in acq["measurements"]
            if m["animal"] == tag and m["site"] == "whole_body"
        )
        assert value == pytest.approx(
            _truth_whole_body(demo_run.plan.animal(tag), day, "dorsal"), rel=0.05
        )


def test_drives_a_running_server_over_http(demo_run: DemoRun) -> None:
    """--url/--key: the same lab already has the demo study, so this one gets "(2)"."""
    out = io.StringIO()
    with live_server(demo_run.data_dir) as url, contextlib.redirect_stdout(out):
        assert cli.main(["demo", "--url", url, "--key", demo_run.key, "--small"]) == 0
    assert f"{url}/docs" in out.getvalue()
    studies = _items(demo_run.client.get("/studies").json())
    second = next(s for s in studies if s["name"] == f"{demo.STUDY_NAME} (2)")
    animals = demo_run.client.get(f"/studies/{second['id']}/animals").json()
    assert animals["total"] == 4 * demo.SMALL_MICE_PER_ARM
    assert len(demo_run.client.get(f"/studies/{second['id']}/comparisons").json()) == 3
