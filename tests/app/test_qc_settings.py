"""The lab's QC settings reach every output that shows or uses a QC flag (issue 13 §2): the
suspected-failed-injection factor (``OSTEOLUX_FAILED_INJECTION_FACTOR``) is the lab's in a
comparison's stored inputs and parameters (synchronous and as a job), its ``inputs_changed``
check, the kinetic curves of a session, and in every analysis that loads flagged points
(summary, Prism, plots, onset and sites, randomisation, power pilot, readout correlation,
the study export).

The data are built so the factor decides: animal c1's spine flux drops 4x on day 7 (4x below
its days 0 and 14, 4.4x below its arm's median that day) and recovers, so it is flagged at
factor 3 and not at factor 5; nobody else moves by more than 1.5x between neighbours.
Expected flags are read off that construction, not from the code."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.measurements import repository as measurement_queries
from tests.app.clicks import ANIMALS, url
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.jobs import run_queued_jobs, succeeded
from tests.app.test_acquisition_qc import SESSION_AT, click_zip, new_study, upload

FLAG = "suspected_failed_injection"
DAYS = (0, 7, 14)
FLUX = {  # spine total flux, p/s, on days 0, 7, 14
    "c1": (1e6, 2.5e5, 1e6),  # the 4x miss on day 7; its arm's others that day: 1.2e6, 1e6
    "c2": (1e6, 1.2e6, 1.5e6),
    "c3": (8e5, 1e6, 1.3e6),
    "t1": (5e5, 6e5, 7e5),
    "t2": (4e5, 5e5, 6e5),
    "t3": (6e5, 7e5, 8e5),
}
# factor → the (animal, day) flagged
CASES = [(3.0, {("c1", 7)}), (5.0, set())]


@pytest.fixture
def study(client: TestClient) -> dict[str, Any]:
    study = make_study(client, name=f"qc settings {uuid.uuid4().hex[:6]}")
    control = make_control(client, study["id"])
    treated = make_treatment(client, study["id"], control["id"])
    for animal in FLUX:
        make_animal(client, study["id"], (control if animal[0] == "c" else treated)["id"], animal)
    rows = ["animal,day,site,total_flux_ps"] + [
        f"{animal},{day},spine,{value!r}"
        for animal, values in FLUX.items()
        for day, value in zip(DAYS, values, strict=True)
    ]
    response = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", ("\n".join(rows) + "\n").encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    return study | {"control": control, "treated": treated}


def flagged(points: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(p["animal"], int(p["day"])) for p in points if FLAG in p["flags"]}


@pytest.mark.parametrize("prefer", [{}, {"Prefer": "respond-async"}], ids=["request", "job"])
@pytest.mark.parametrize(("factor", "expected"), CASES)
def test_a_comparison_stores_the_flags_of_the_labs_factor(
    client: TestClient,
    study: dict[str, Any],
    settings: Settings,
    prefer: dict[str, str],
    factor: float,
    expected: set[Any],
) -> None:
    """Its inputs carry the flags of the lab's factor, which its parameters record; computed
    by the request or by a job (the runner reads the same settings object, app.state's)."""
    settings.failed_injection_factor = factor  # the app reads the settings object it was given
    body = {"treatment_arm_id": study["treated"]["id"], "site": "spine", "analyses": ["per_day"]}
    response = client.post(f"/studies/{study['id']}/comparisons", json=body, headers=prefer)
    if prefer:
        comparison_id = succeeded(client, response)["comparison_id"]
    else:
        assert response.status_code == 201, response.text
        comparison_id = response.json()["id"]
    stored = f"/studies/{study['id']}/comparisons/{comparison_id}"
    comparison = client.get(stored).json()
    inputs = client.get(comparison["links"]["inputs"]).json()
    assert flagged(inputs["points"]) == expected
    text = client.get(comparison["links"]["inputs"], params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["animal"], int(r["day"])) for r in rows if FLAG in r["flags"]} == expected
    assert len(rows) == len(FLUX) * len(DAYS)  # flagged, never dropped
    assert comparison["parameters"]["failed_injection_factor"] == factor
    assert comparison["inputs_changed"] is False
    # a later change of the setting is not a change of the data the comparison used
    settings.failed_injection_factor = 8.0 if factor == 3.0 else 3.0
    assert client.get(stored).json()["inputs_changed"] is False
    listed = client.get(f"/studies/{study['id']}/comparisons").json()
    assert [c["inputs_changed"] for c in listed] == [False]


@pytest.mark.parametrize(("factor", "flagged_3467"), [(3.0, True), (5.0, False)])
def test_kinetic_curves_flag_by_the_labs_factor(
    client: TestClient, tmp_path: Path, settings: Settings, factor: float, flagged_3467: bool
) -> None:
    """Day 14's session images the mice twice (a kinetic sequence); 3467 is 4x below its days
    7 and 21 and 3.6x below its arm's others in both clicks (peak 2.75e6 vs 1e7, 1.1e7)."""
    study = new_study(client)  # the five mice of the click, one control arm
    base = (1e7,) * len(ANIMALS)
    low = (1e7, 2.5e6, 1e7, 1e7, 1e7)
    plan: dict[int, list[tuple[float, ...]]] = {
        7: [base],
        14: [low, tuple(f * 1.1 for f in low)],
        21: [base],
    }
    kinetic = None
    for day, clicks in plan.items():
        at = SESSION_AT + timedelta(days=day - 14)
        opened = client.post(f"/studies/{study}/sessions", json={"acquired_at": at.isoformat()})
        assert opened.status_code == 201, opened.text
        session = opened.json() | {"study_id": study}
        for k, fluxes in enumerate(clicks):
            content = click_zip(
                tmp_path,
                f"QC{day}{k}",
                acquired_at=at + timedelta(minutes=5 * k),
                fluxes=fluxes,
                exposure_s=120.0,
            )
            upload(client, session, content)
        if day == 14:
            kinetic = session
    assert kinetic is not None
    settings.failed_injection_factor = factor
    response = client.get(f"{url(kinetic)}/kinetics")
    assert response.status_code == 200, response.text
    (sequence,) = response.json()["sequences"]
    curves = {c["animal"]: c for c in sequence["curves"] if c["site"] == "spine"}
    assert sorted(curves) == ANIMALS
    for animal, curve in curves.items():
        marked = {FLAG in p["flags"] for p in curve["points"]}
        assert marked == {flagged_3467 and animal == "3467"}, (animal, curve["points"])


def _requests(client: TestClient, study: dict[str, Any]) -> list[Callable[[], Any]]:
    """Every route that loads the study's flagged points, as a call each."""
    s = f"/studies/{study['id']}"
    spine = {"site": "spine"}
    onset = spine | {"treatment_arm_id": study["treated"]["id"], "threshold": 9e5}
    sites = {"sites": "spine", "threshold": 9e5}
    pilot = {"arm_id": study["control"]["id"], "site": "spine"}
    power = {"pilot": pilot, "n_per_arm": [6], "n_sim": 10, "seed": 1}
    body = {"name": "tumour area", "unit": "mm²", "kind": "numeric"}
    readout = client.post(f"{s}/readouts", json=body).json()
    gets = [
        ("summary", spine),
        ("summary", spine | {"format": "csv"}),
        ("export/prism", spine),
        ("plots/growth", spine | {"format": "svg"}),
        ("onset/interval-censored", onset),
        ("onset/interval-censored/plot", onset | {"format": "svg"}),
        ("sites/burden", {"sites": "spine"}),
        ("sites/burden/plot", {"sites": "spine", "format": "svg"}),
        ("sites/involvement", sites),
        ("sites/involvement/plot", sites | {"format": "svg"}),
        (f"readouts/{readout['id']}/correlation", spine),
        (f"readouts/{readout['id']}/plots/correlation", spine | {"format": "svg"}),
    ]
    posts = [
        ("randomisation", {"site": "spine", "apply": False, "seed": 1}),
        ("power", power | {"slope_ratio": 0.5}),
        ("power/onset", power | {"threshold": 2e6, "slope_ratio": 0.5}),
    ]
    return [
        *(lambda p=path, q=query: client.get(f"{s}/{p}", params=q) for path, query in gets),
        *(lambda p=path, b=data: client.post(f"{s}/{p}", json=b) for path, data in posts),
    ]


@pytest.fixture
def factors_used(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The factor of every call of the one function that decides the flag."""
    factors: list[float] = []
    decide = measurement_queries.failed_injection_ids

    def spy(rows: Any, *, factor: float) -> set[uuid.UUID]:
        factors.append(factor)
        return decide(rows, factor=factor)

    monkeypatch.setattr(measurement_queries, "failed_injection_ids", spy)
    return factors


def test_every_analysis_flags_its_points_with_the_labs_factor(
    client: TestClient, study: dict[str, Any], settings: Settings, factors_used: list[float]
) -> None:
    """These outputs use the flags (an excluding flag would drop a point) but do not print
    them, and ``suspected_failed_injection`` excludes nothing: what is checked is that each
    of them decides the flags, with the lab's factor."""
    settings.failed_injection_factor = 3.0
    for request in _requests(client, study):
        response = request()
        assert response.status_code < 500, response.text
        assert factors_used and set(factors_used) == {3.0}, (response.request.url, response.text)
        factors_used.clear()


def test_the_export_flags_by_the_labs_factor(
    client: TestClient, study: dict[str, Any], settings: Settings, factors_used: list[float]
) -> None:
    """measurements.csv carries the flag of factor 3, and every part (summary, Prism) that
    loads points decides it with the same factor."""
    settings.failed_injection_factor = 3.0
    response = client.post(f"/studies/{study['id']}/exports", json={"comparisons": False})
    assert response.status_code == 202, response.text
    run_queued_jobs(client)
    job = client.get(response.headers["Location"]).json()
    assert job["state"] == "succeeded", job
    archive = zipfile.ZipFile(io.BytesIO(client.get(job["result_url"]).content))
    rows = list(csv.DictReader(io.StringIO(archive.read("measurements.csv").decode())))
    assert {(r["Animal Number"], r["Day"]) for r in rows if FLAG in r["Flags"]} == {("c1", "7")}
    assert len(factors_used) >= 3 and set(factors_used) == {3.0}
