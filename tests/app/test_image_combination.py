"""How the images of one animal on one day become one value is an explicit, recorded rule
(study setting, request parameter), never a silent average. Expected values are the
arithmetic of the rule on the imported numbers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from tests.app.factories import make_animal, make_control, make_study
from tests.app.problems import assert_problem

# Animal m1 on day 7: a dorsal, a ventral and a left lateral image; m2 only dorsal.
CSV = (
    "animal,day,site,view,total_flux_ps\n"
    "m1,7,spine,dorsal,1.0e6\n"
    "m1,7,spine,ventral,3.0e6\n"
    "m1,7,spine,lateral_left,5.0e5\n"
    "m2,7,spine,dorsal,2.0e6\n"
)
EXPECTED_M1 = {
    "mean": (1.0e6 + 3.0e6 + 5.0e5) / 3,
    "sum_of_views": 1.0e6 + 3.0e6 + 5.0e5,
    "dorsal": 1.0e6,
    "ventral": 3.0e6,
    "peak": 3.0e6,
}


@pytest.fixture
def study(client: TestClient) -> dict:
    study = make_study(client)
    control = make_control(client, study["id"])
    for animal in ("m1", "m2"):
        make_animal(client, study["id"], control["id"], animal)
    imported = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("views.csv", CSV.encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    return study


@pytest.mark.parametrize("rule", sorted(EXPECTED_M1))
def test_each_rule_gives_one_value_per_animal_and_day(
    client: TestClient, study: dict, rule: str
) -> None:
    series = client.get(
        f"/studies/{study['id']}/series", params={"site": "spine", "combine": rule}
    ).json()
    assert series["image_combination"] == rule
    by_animal = {p["animal"]: p for p in series["points"]}
    assert_allclose(by_animal["m1"]["value"], EXPECTED_M1[rule], rtol=1e-12)
    used = {"dorsal": 1, "ventral": 1}.get(rule, 3)
    assert by_animal["m1"]["images"] == used and len(by_animal["m1"]["measurement_ids"]) == used
    # m2 has no ventral image: under "ventral" it has no value that day, it is not invented.
    assert ("m2" in by_animal) == (rule != "ventral")


def test_the_study_setting_is_the_default_and_is_recorded_everywhere(
    client: TestClient, study: dict
) -> None:
    base = f"/studies/{study['id']}"
    assert client.get(base).json()["image_combination"] == "mean"
    series = client.get(f"{base}/series", params={"site": "spine"}).json()
    assert series["image_combination"] == "mean"
    # Changing the rule changes every output: it needs a reason once there are images.
    assert_problem(
        client.patch(base, json={"image_combination": "sum_of_views"}),
        422,
        "changes every series, summary, export and plot",
        "X-Change-Reason",
    )
    changed = client.patch(
        base,
        json={"image_combination": "sum_of_views"},
        headers={"X-Change-Reason": "dorsal + ventral is our lab's total burden"},
    )
    assert changed.status_code == 200, changed.text
    series = client.get(f"{base}/series", params={"site": "spine", "format": "csv"})
    header, *rows = series.text.strip().split("\r\n")
    assert header.endswith(",images,views,image_combination")
    assert all(row.endswith(",sum_of_views") for row in rows)
    summary = client.get(f"{base}/summary", params={"site": "spine", "scale": "linear"}).json()
    assert summary["image_combination"] == "sum_of_views"
    prism = client.get(f"{base}/export/prism.csv", params={"site": "spine"})
    assert "sum_of_views" in prism.headers["content-disposition"]
