"""Summaries, stored comparisons and exports through the API, checked against scipy,
statsmodels and numpy applied directly to the same data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from scipy import stats
from sqlalchemy.orm import Session
from statsmodels.stats.multitest import multipletests

from app.models import Comparison
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.problems import assert_problem, row_counts

DAYS = (0, 7, 14, 21)
CONTROL = [f"c{i}" for i in range(6)]
TREATED = [f"t{i}" for i in range(6)]


def true_log10_flux() -> dict[tuple[str, int], float]:
    """Control grows 0.10 log10/day, treated 0.05 log10/day, with animal-level noise."""
    rng = np.random.default_rng(20261124)
    values = {}
    for animal in CONTROL + TREATED:
        rate = 0.10 if animal.startswith("c") else 0.05
        start = 5.0 + rng.normal(0, 0.2)
        for day in DAYS:
            values[(animal, day)] = start + rate * day + rng.normal(0, 0.15)
    return values


@pytest.fixture
def study(client: TestClient) -> dict:
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    for animal in CONTROL:
        make_animal(client, study["id"], control["id"], animal)
    for animal in TREATED:
        make_animal(client, study["id"], treatment["id"], animal)
    lines = ["animal,day,site,total_flux_ps"] + [
        f"{animal},{day},whole_body,{10**value!r}"
        for (animal, day), value in true_log10_flux().items()
    ]
    response = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    return study | {"control": control, "treatment": treatment}


def arm_values(day: int, animals: list[str]) -> np.ndarray:
    truth = true_log10_flux()
    return np.array([truth[(a, day)] for a in animals])


def test_summary_matches_numpy(client: TestClient, study: dict) -> None:
    body = client.get(f"/studies/{study['id']}/summary").json()
    # the statistics are log10 values: the response names that scale, not just "p/s"
    assert body["scale"] == "log10" and body["statistics_unit"] == "log10(p/s)"
    assert body["metric_unit"] == body["geometric_mean_unit"] == "p/s"
    assert "unit" not in body
    linear = client.get(f"/studies/{study['id']}/summary", params={"scale": "linear"}).json()
    assert linear["statistics_unit"] == "p/s"
    folds = client.get(f"/studies/{study['id']}/summary", params={"baseline": "first"}).json()
    assert folds["statistics_unit"] == "log10(fold change)"
    rows = {(r["arm"], r["day"]): r for r in body["summary"]["rows"]}
    for day in DAYS:
        log_values = arm_values(day, CONTROL)
        row = rows[("Isotype IgG1", day)]
        assert row["n"] == 6
        assert_allclose(row["mean"], log_values.mean(), rtol=1e-12)
        assert_allclose(row["sd"], log_values.std(ddof=1), rtol=1e-12)
        assert_allclose(row["geometric_mean"], stats.gmean(10**log_values), rtol=1e-9)


def test_comparison_per_day_matches_scipy(client: TestClient, study: dict) -> None:
    response = client.post(
        f"/studies/{study['id']}/comparisons",
        json={
            "treatment_arm_id": study["treatment"]["id"],
            "analyses": ["per_day", "growth_rate", "mixed_model"],
        },
    )
    assert response.status_code == 201, response.text
    comparison = response.json()
    assert comparison["control_arm_id"] == study["control"]["id"]  # the arm's own control
    assert comparison["n_animals"] == {"Isotype IgG1": 6, "1D11 10 mg/kg": 6}
    assert comparison["n_inputs"] == 48
    assert comparison["input_measurement_ids"] is None  # not inline unless asked for
    rows = comparison["results"]["per_day"]["result"]["rows"]
    welch_p, mw_p = [], []
    for row in rows:
        treated, control = (
            arm_values(int(row["day"]), TREATED),
            arm_values(int(row["day"]), CONTROL),
        )
        welch = stats.ttest_ind(treated, control, equal_var=False)
        mw = stats.mannwhitneyu(treated, control, alternative="two-sided", method="exact")
        assert_allclose(row["welch"]["p_value"], welch.pvalue, rtol=1e-9)
        assert_allclose(row["mann_whitney"]["p_value"], mw.pvalue, rtol=1e-9)
        welch_p.append(welch.pvalue)
        mw_p.append(mw.pvalue)
    assert_allclose(
        [r["welch"]["p_adjusted"] for r in rows],
        multipletests(welch_p, method="holm")[1],
        rtol=1e-9,
    )
    # Per-animal OLS slopes on log10 flux, compared with Welch.
    slopes = {
        arm: [
            stats.linregress(DAYS, [true_log10_flux()[(a, d)] for d in DAYS]).slope for a in animals
        ]
        for arm, animals in (("c", CONTROL), ("t", TREATED))
    }
    growth = comparison["results"]["growth_rate"]["result"]
    assert_allclose(
        growth["welch"]["p_value"],
        stats.ttest_ind(slopes["t"], slopes["c"], equal_var=False).pvalue,
        rtol=1e-9,
    )
    model = comparison["results"]["mixed_model"]["result"]
    assert model["converged"] is True
    assert model["df_method"] == "kenward-roger"
    contrast = model["fixed_effects"][-1]
    assert contrast["name"] == "arm[1D11 10 mg/kg]:day"
    # 12 mice: Kenward-Roger df far from the infinite df of a Wald z test
    assert 5 < contrast["df"] < 20
    treated_rate = next(g for g in model["growth_rates"] if g["arm"] == "1D11 10 mg/kg")
    assert_allclose(
        treated_rate["difference"]["estimate"], -0.05, atol=0.02
    )  # true slope difference
    assert treated_rate["difference"]["ci_low"] < -0.05 < treated_rate["difference"]["ci_high"]


def test_stored_comparison_is_unchanged_when_data_change(client: TestClient, study: dict) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["per_day"]},
    ).json()
    url = f"/studies/{study['id']}/comparisons/{created['id']}"
    assert client.get(url).json()["inputs_changed"] is False
    extra = "animal,day,site,total_flux_ps\nc0,28,whole_body,1e9\nt0,28,whole_body,1e7\n"
    client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("more.csv", extra.encode(), "text/csv")},
    )
    later = client.get(url).json()
    assert later["inputs_changed"] is True
    assert later["results"] == created["results"]
    assert later["input_fingerprint"] == created["input_fingerprint"]
    assert [c["id"] for c in client.get(f"/studies/{study['id']}/comparisons").json()] == [
        created["id"]
    ]


def test_survival_and_incidence_need_a_threshold(client: TestClient, study: dict) -> None:
    without = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["survival", "incidence"]},
    ).json()
    assert without["results"]["survival"]["status"] == "not_computed"
    assert "threshold" in without["results"]["survival"]["reason"]
    with_threshold = client.post(
        f"/studies/{study['id']}/comparisons",
        json={
            "treatment_arm_id": study["treatment"]["id"],
            "analyses": ["survival", "incidence"],
            "threshold": {"flux_ps": 1e6},
        },
    ).json()
    survival = with_threshold["results"]["survival"]
    assert survival["status"] == "ok", survival
    assert with_threshold["parameters"]["threshold"]["value"] == 1e6  # flux_ps: old name
    # Independent check: the first day each animal's flux reached 1e6 p/s.
    truth = true_log10_flux()
    for animal in survival["result"]["animals"]:
        crossing = [d for d in DAYS if truth[(animal["animal"], d)] >= 6.0]
        assert animal["event"] == bool(crossing)
        if crossing:
            assert animal["time"] == crossing[0]


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"window": {"day_from": 30, "day_to": 40}}, ["No measurements between day 30 and day 40"]),
        ({"site": "spine"}, ["No total_flux_ps measurements for site 'spine'"]),
        ({"window": {"day_from": 5, "day_to": 3}}, ["day_to must be after day_from"]),
        ({"threshold": {"flux_ps": 1e6, "background": 1e4}}, ["go together"]),
        ({"threshold": {"consecutive": 2}}, ["either value"]),
        ({"threshold": {"value": 1e6, "flux_ps": 2e6}}, ["not both"]),
        (
            {"metric": "radiance_mean", "threshold": {"flux_ps": 1e6}},
            ["flux_ps is a total-flux threshold", "threshold.value"],
        ),
    ],
)
def test_bad_comparisons(
    client: TestClient, study: dict, db_session: Session, body: dict, fragments: list[str]
) -> None:
    before = row_counts(db_session, Comparison)
    response = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"]} | body,
    )
    assert_problem(response, 422, *fragments)
    assert row_counts(db_session, Comparison) == before


def test_arm_with_one_animal_and_arms_of_other_studies(client: TestClient, study: dict) -> None:
    lonely = make_treatment(
        client, study["id"], study["control"]["id"], name="LY2109761", agent_class="inhibitor"
    )
    make_animal(client, study["id"], lonely["id"], "l1")
    client.post(
        f"/studies/{study['id']}/measurements/import",
        files={
            "file": ("l1.csv", b"animal,day,site,total_flux_ps\nl1,0,whole_body,1e5\n", "text/csv")
        },
    )
    assert_problem(
        client.post(f"/studies/{study['id']}/comparisons", json={"treatment_arm_id": lonely["id"]}),
        422,
        "at least 2 animals",
        "'LY2109761' has 1",
    )
    other = make_study(client, name="BM-02")
    foreign_control = make_control(client, other["id"])
    assert_problem(
        client.post(
            f"/studies/{study['id']}/comparisons",
            json={
                "treatment_arm_id": study["treatment"]["id"],
                "control_arm_id": foreign_control["id"],
            },
        ),
        422,
        "different studies",
    )


def test_other_lab_cannot_read_comparisons(
    client: TestClient, other_lab: TestClient, study: dict
) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["tc"]},
    ).json()
    assert_problem(other_lab.get(f"/studies/{study['id']}/comparisons/{created['id']}"), 404)


def test_prism_export(client: TestClient, study: dict) -> None:
    response = client.get(f"/studies/{study['id']}/export/prism.csv")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:2] == ["Day (total_flux_ps [p/s])", "Isotype IgG1"]
    assert rows[0][7] == "1D11 10 mg/kg" and rows[0][8] == ""
    assert rows[1] == ["day", *CONTROL, *TREATED]
    assert [r[0] for r in rows[2:]] == [str(d) for d in DAYS]
    truth = true_log10_flux()
    assert_allclose(float(rows[3][1 + CONTROL.index("c2")]), 10 ** truth[("c2", 7)], rtol=1e-12)


def test_moving_an_animal_changes_the_inputs_not_the_stored_comparison(
    client: TestClient, study: dict
) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["per_day"]},
    ).json()
    animals = client.get(f"/studies/{study['id']}/animals", params={"limit": 50}).json()["items"]
    c0 = next(a for a in animals if a["identifier"] == "c0")
    client.patch(
        f"/studies/{study['id']}/animals/{c0['id']}", json={"arm_id": study["treatment"]["id"]}
    )
    later = client.get(f"/studies/{study['id']}/comparisons/{created['id']}").json()
    assert later["inputs_changed"] is True
    assert later["n_animals"] == {"Isotype IgG1": 6, "1D11 10 mg/kg": 6}  # as computed
    assert later["results"] == created["results"]


def test_death_is_event_and_each_animals_reason(client: TestClient, study: dict) -> None:
    animals = client.get(f"/studies/{study['id']}/animals", params={"limit": 50}).json()["items"]
    ids = {a["identifier"]: a["id"] for a in animals}
    day0 = client.get(f"/studies/{study['id']}").json()["day0"]
    truth = true_log10_flux()
    never = [a for a in CONTROL + TREATED if max(truth[(a, d)] for d in DAYS) < 6.5]
    assert len(never) >= 2
    died = dt.date.fromisoformat(day0) + dt.timedelta(days=21)
    for animal in never[:2]:
        r = client.patch(
            f"/studies/{study['id']}/animals/{ids[animal]}",
            json={"end": {"date": died.isoformat(), "reason": "humane_endpoint"}},
        )
        assert r.status_code == 200, r.text
    body = {
        "treatment_arm_id": study["treatment"]["id"],
        "analyses": ["survival"],
        "threshold": {"value": 10**6.5},
    }
    censored = client.post(f"/studies/{study['id']}/comparisons", json=body).json()
    counted = client.post(
        f"/studies/{study['id']}/comparisons", json=body | {"death_is_event": True}
    ).json()
    assert censored["parameters"]["death_is_event"] is False
    assert counted["parameters"]["death_is_event"] is True
    before = {a["animal"]: a for a in censored["results"]["survival"]["result"]["animals"]}
    after = {a["animal"]: a for a in counted["results"]["survival"]["result"]["animals"]}
    for animal in never[:2]:
        assert before[animal]["reason"] == after[animal]["reason"] == "humane_endpoint"
        assert before[animal]["event"] is False and after[animal]["event"] is True
        assert before[animal]["time"] == after[animal]["time"] == 21
    for animal in never[2:]:
        assert before[animal]["reason"] == "last_image" and before[animal]["event"] is False
    assert sum(a["event"] for a in after.values()) == sum(a["event"] for a in before.values()) + 2
    plot = client.get(
        f"/studies/{study['id']}/comparisons/{counted['id']}/plots/survival",
        params={"format": "svg"},
    )
    assert plot.status_code == 200


def test_inputs_are_retrievable_separately(client: TestClient, study: dict) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["per_day"]},
    ).json()
    url = f"/studies/{study['id']}/comparisons/{created['id']}"
    assert created["links"]["inputs"] == f"{url}/inputs"
    with_ids = client.get(url, params={"include": "input_measurement_ids"}).json()
    assert len(with_ids["input_measurement_ids"]) == 48
    listed = client.get(
        f"/studies/{study['id']}/comparisons", params={"include": "input_measurement_ids"}
    ).json()
    assert listed[0]["input_measurement_ids"] == with_ids["input_measurement_ids"]
    inputs = client.get(f"{url}/inputs").json()
    assert sorted(p["measurement_id"] for p in inputs["points"]) == sorted(
        with_ids["input_measurement_ids"]
    )
    truth = true_log10_flux()
    for p in inputs["points"]:
        assert_allclose(np.log10(p["value"]), truth[(p["animal"], p["day"])], rtol=1e-12)
    rows = list(csv.DictReader(io.StringIO(client.get(f"{url}/inputs?format=csv").text)))
    assert len(rows) == 48 and "total_flux_ps [p/s]" in rows[0]
    assert_problem(client.get(f"{url}/inputs", params={"format": "xml"}), 422)


def _csv(client: TestClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def test_comparison_tables_as_csv(client: TestClient, study: dict) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={
            "treatment_arm_id": study["treatment"]["id"],
            "analyses": ["per_day", "auc", "growth_rate", "mixed_model", "survival"],
            "threshold": {"value": 10**6.5},
        },
    ).json()
    links = created["links"]
    per_day = _csv(client, links["tables.per_day"])
    assert [float(r["day"]) for r in per_day] == list(DAYS)
    for r in per_day:
        treated, control = (
            arm_values(int(float(r["day"])), TREATED),
            arm_values(int(float(r["day"])), CONTROL),
        )
        welch = stats.ttest_ind(treated, control, equal_var=False)
        assert_allclose(float(r["welch_p"]), welch.pvalue, rtol=1e-12)
        mw = stats.mannwhitneyu(treated, control, method="exact")
        assert_allclose(float(r["mann_whitney_p"]), mw.pvalue, rtol=1e-12)
        assert r["mann_whitney_method"].startswith("exact")
    animals = _csv(client, links["tables.animals"])
    assert len(animals) == 12
    for r in animals:
        slope = stats.linregress(DAYS, [true_log10_flux()[(r["animal"], d)] for d in DAYS]).slope
        assert_allclose(float(r["growth_rate"]), slope, rtol=1e-12)
        assert r["end_reason"] in {"onset", "last_image"}
        assert float(r["auc"]) > 0
    model = {r["term"]: r for r in _csv(client, links["tables.mixed_model"])}
    fe = created["results"]["mixed_model"]["result"]["fixed_effects"]
    for f in fe:
        assert float(model[f["name"]]["df"]) == f["df"]
        assert model[f["name"]]["df_method"] == "kenward-roger"
    assert "variance: residual" in model and "growth rate 1D11 10 mg/kg - Isotype IgG1" in model
    km = _csv(client, links["tables.survival"])
    curves = created["results"]["survival"]["result"]["curves"]
    assert len(km) == sum(len(c["points"]) for c in curves)
    # the same tables as sheets of one workbook, numbers as numbers
    book = client.get(links["tables.xlsx"])
    assert book.status_code == 200 and "attachment" in book.headers["content-disposition"]
    import openpyxl

    sheets = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True)
    assert sheets.sheetnames == ["per_day", "animals", "mixed_model", "survival", "parameters"]
    rows = list(sheets["per_day"].iter_rows(values_only=True))
    column = rows[0].index("welch_p")
    # (openpyxl writes 16 significant digits)
    assert_allclose(
        [r[column] for r in rows[1:]], [float(r["welch_p"]) for r in per_day], rtol=1e-15
    )
    # a table of analyses that were not run is refused, with the reason
    only = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["tc"]},
    ).json()
    assert_problem(client.get(only["links"]["tables.mixed_model"]), 422, "no mixed-model")


def test_openapi_documents_the_results(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    mw = schemas["DayComparison"]["properties"]["mann_whitney"]
    assert "exact" in mw["description"] or "exact" in str(schemas["TestResult"])
    model = schemas["GrowthModel"]["properties"]
    assert "kenward-roger" in model["df_method"]["description"]
    assert "isSingular" in model["singular"]["description"]
    km = schemas["KMCurve"]["properties"]["median_time"]
    assert "0.5" in km["description"]
    onset = schemas["AnimalOnset"]["properties"]["reason"]
    assert "humane_endpoint" in onset["description"]
    summary = schemas["SummaryRead"]["properties"]
    assert "statistics_unit" in summary and "unit" not in summary


def test_a_comparison_stored_before_the_typed_results_still_reads(
    client: TestClient, study: dict, db_session: Session
) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["mixed_model"]},
    ).json()
    row = db_session.get(Comparison, uuid.UUID(created["id"]))
    old = dict(row.results)
    result = dict(old["mixed_model"]["result"])
    # the shape of a comparison stored before Kenward-Roger: Wald z, no df / singular
    for key in ("df_method", "singular", "reductions"):
        result.pop(key)
    result["fixed_effects"] = [
        {k: v for k, v in f.items() if k not in ("df", "t")} | {"z": 1.0}
        for f in result["fixed_effects"]
    ]
    row.results = {"mixed_model": {"status": "ok", "reason": None, "result": result}}
    db_session.commit()
    got = client.get(f"/studies/{study['id']}/comparisons/{created['id']}")
    assert got.status_code == 200, got.text
    fixed = got.json()["results"]["mixed_model"]["result"]["fixed_effects"][0]
    assert fixed["z"] == 1.0 and fixed["df"] is None


def test_typed_results_name_every_field_cohorts_returns() -> None:
    import dataclasses

    import cohorts
    from app.analysis import results

    pairs = {
        cohorts.Effect: results.Effect,
        cohorts.TestResult: results.TestResult,
        cohorts.Exclusion: results.Exclusion,
        cohorts.Adjustment: results.Adjustment,
        cohorts.SkippedDay: results.SkippedDay,
        cohorts.ArmDaySummary: results.ArmDaySummary,
        cohorts.SummaryTable: results.SummaryTable,
        cohorts.DayComparison: results.DayComparison,
        cohorts.DayComparisonTable: results.DayComparisonTable,
        cohorts.AnimalMetric: results.AnimalMetric,
        cohorts.AnimalMetricComparison: results.AnimalMetricComparison,
        cohorts.FixedEffect: results.FixedEffect,
        cohorts.GrowthRate: results.GrowthRate,
        cohorts.OptimizerAttempt: results.OptimizerAttempt,
        cohorts.ModelReduction: results.ModelReduction,
        cohorts.GrowthModelResult: results.GrowthModel,
        cohorts.TCDay: results.TCDay,
        cohorts.TCTable: results.TCTable,
        cohorts.TGIResult: results.TGIResult,
        cohorts.AnimalOnset: results.AnimalOnset,
        cohorts.IncidenceDay: results.IncidenceDay,
        cohorts.IncidenceTable: results.IncidenceTable,
        cohorts.KMPoint: results.KMPoint,
        cohorts.KMCurve: results.KMCurve,
        cohorts.SurvivalResult: results.SurvivalResult,
    }
    for dc, model in pairs.items():
        assert {f.name for f in dataclasses.fields(dc)} == set(model.model_fields), dc.__name__
