"""Benchmark of the comparison endpoint at two study sizes; prints medians and the growth ratio.

Run: ``.venv/bin/python bench/bench_comparisons.py`` (SQLite in a temporary directory; set
``OSTEOLUX_DATABASE_URL`` to a throwaway PostgreSQL database to measure that instead).

Study sizes: 4 arms × 12 animals × 16 imaging days × 6 sites, and 10× the animals
(4 × 120 × 16 × 6). For one treatment-vs-control comparison at one site it reports the time
of the whole ``POST /comparisons`` request and its parts — loading the measurements from the
database, the statistics (every analysis, mixed model and survival included) and rendering
the growth-curve and Kaplan–Meier PNGs — and the ratio large/small (goal ≤ 12× for 10× data).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

import cohorts
from app.analysis import figures, plots
from app.analysis.cohort_data import build_cohort
from app.analysis.schemas import ComparisonCreate
from app.analysis.service import _outcomes
from app.config import Settings
from app.db import make_engine, make_session_factory, transaction
from app.labs.service import create_lab
from app.main import create_app
from app.measurements.service import load_points
from app.migrations import upgrade_to_head
from app.models import Site, Study

ARMS = (
    ("Vehicle", "control", "vehicle", None),
    ("Isotype IgG1", "control", "isotype_control", None),
    ("LY2109761 50 mg/kg", "treatment", "inhibitor", "Vehicle"),
    ("1D11 10 mg/kg", "treatment", "neutralizing_antibody", "Isotype IgG1"),
)
DAYS = tuple(range(0, 48, 3))  # 16 imaging days
SITES = ("whole_body", "spine", "skull_mandible", "thorax", "forelimbs_scapula", "left_hindlimb")
THRESHOLD = {"flux_ps": 1e6}


def median_time(fn: Callable[[], object], *, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_study(
    client: TestClient, animals_per_arm: int, rng: np.random.Generator
) -> tuple[str, str]:
    study = client.post(
        "/studies",
        json={
            "name": f"bench {animals_per_arm}",
            "cell_line": "MDA-MB-231-luc",
            "injection_model": "intracardiac",
            "day0": "2026-01-05",
        },
    ).json()
    arm_ids: dict[str, str] = {}
    for name, role, agent_class, control in ARMS:
        body = {"name": name, "role": role, "agent_class": agent_class}
        if control:
            body["control_arm_id"] = arm_ids[control]
        arm_ids[name] = client.post(f"/studies/{study['id']}/arms", json=body).json()["id"]
    lines = ["animal,day,site,total_flux_ps"]
    for name, role, _, _ in ARMS:
        rate = 0.09 if role == "control" else 0.05
        for i in range(animals_per_arm):
            animal = f"{name[:3]}-{i}"
            client.post(
                f"/studies/{study['id']}/animals",
                json={"identifier": animal, "arm_id": arm_ids[name]},
            )
            start = rng.normal(4.5, 0.3, len(SITES))
            slope = rng.normal(rate, 0.015)
            for day in DAYS:
                noise = rng.normal(0, 0.2, len(SITES))
                for site, s0, e in zip(SITES, start, noise, strict=True):
                    lines.append(f"{animal},{day},{site},{10 ** (s0 + slope * day + e):.6g}")
    response = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("bench.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    return study["id"], arm_ids["1D11 10 mg/kg"]


def measure(
    client: TestClient, factory, study_id: str, treatment_id: str, repeat: int
) -> dict[str, float]:  # type: ignore[no-untyped-def]
    body = {"treatment_arm_id": treatment_id, "site": "whole_body", "threshold": THRESHOLD}
    request = ComparisonCreate.model_validate(body)
    with factory() as session:
        study = session.get(Study, uuid.UUID(study_id))
        factor = Settings().failed_injection_factor  # the lab's, as the route passes it
        points = load_points(
            session,
            study,
            site=Site.whole_body,
            metric="total_flux_ps",
            failed_injection_factor=factor,
        )
        control_name, treated_name = "Isotype IgG1", "1D11 10 mg/kg"
        pair = [p for p in points if p.arm in (control_name, treated_name)]
        arm_ids = sorted({p.arm_id for p in pair})
        cohort = build_cohort(session, study, pair, site="whole_body")

        def load() -> object:
            return load_points(
                session,
                study,
                site=Site.whole_body,
                metric="total_flux_ps",
                arm_ids=arm_ids,
                failed_injection_factor=factor,
            )

        def stats() -> object:
            return _outcomes(cohort, request, control_name, treated_name)

        def render() -> object:
            summary = cohorts.summarize(cohort, site="whole_body")
            animals = figures.animal_points(session, study, pair)
            survival = cohorts.metastasis_free_survival(
                cohort, control=control_name, treated=treated_name, site="whole_body", threshold=1e6
            )
            plots.render(plots.growth_curves(summary, animals, title="bench", unit="p/s"), "png")
            return plots.render(plots.kaplan_meier(survival, title="bench"), "png")

        timings = {
            "db load": median_time(load, repeat=repeat),
            "statistics": median_time(stats, repeat=repeat),
            "rendering": median_time(render, repeat=repeat),
        }
    timings["whole request"] = median_time(
        lambda: client.post(f"/studies/{study_id}/comparisons", json=body).raise_for_status(),
        repeat=repeat,
    )
    timings["points"] = float(len(pair))
    return timings


def main() -> None:
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=os.environ.get("OSTEOLUX_DATABASE_URL")
        )
        upgrade_to_head(settings.resolved_database_url)
        engine = make_engine(settings.resolved_database_url)
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            _, _, key = create_lab(session, f"bench lab {time.time()}")
        rng = np.random.default_rng(7)
        with TestClient(create_app(settings), headers={"X-API-Key": key}) as client:
            results = {}
            for label, animals in (("small", 12), ("large", 120)):
                start = time.perf_counter()
                study_id, treatment_id = build_study(client, animals, rng)
                took = time.perf_counter() - start
                print(
                    f"built {label} study ({len(ARMS)} arms × {animals} animals × "
                    f"{len(DAYS)} days × {len(SITES)} sites) in {took:.1f} s",
                    flush=True,
                )
                results[label] = measure(client, factory, study_id, treatment_id, repeat)
        engine.dispose()
    print(f"\nmedian of {repeat} runs, one comparison (treatment vs control, whole body)")
    print(f"{'':16}{'small':>12}{'large (10×)':>14}{'ratio':>9}")
    for key in ("points", "db load", "statistics", "rendering", "whole request"):
        small, large = results["small"][key], results["large"][key]
        unit = "" if key == "points" else " s"
        fmt = "{:>10.0f}" if key == "points" else "{:>10.3f}"
        ratio = large / small
        print(f"{key:16}{fmt.format(small)}{unit:2}{fmt.format(large)}{unit:2}  {ratio:>7.1f}×")
    print("goal: whole request ≤ 12× for 10× the data")


if __name__ == "__main__":
    main()
