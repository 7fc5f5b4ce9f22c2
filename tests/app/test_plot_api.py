"""Plot endpoints: real PNG/SVG images of a study and of a stored comparison."""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET

import matplotlib
import matplotlib.image
import pytest
from fastapi.testclient import TestClient

from app.analysis import plots
from tests.app.factories import make_animal, make_treatment
from tests.app.problems import assert_problem
from tests.app.test_analysis_api import study  # noqa: F401  (fixture: 2 arms × 6 mice × 4 days)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def svg_text(client: TestClient, url: str, **params: object) -> str:
    """The text of a plot fetched as SVG, its glyphs kept as text (the server renders in
    this process, so matplotlib's rc settings apply to it)."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        response = client.get(url, params={"format": "svg", **params})
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    return " ".join("".join(t.itertext()) for t in root.iter() if t.tag.endswith("text"))


def svg_colors(content: bytes) -> set[str]:
    return {c.lower() for c in re.findall(r"#[0-9a-fA-F]{6}", content.decode())}


def assert_png(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(io.BytesIO(response.content), format="png")
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500


@pytest.mark.parametrize("kind", ["growth", "spaghetti"])
def test_study_plots(client: TestClient, study: dict, kind: str) -> None:  # noqa: F811
    assert_png(client.get(f"/studies/{study['id']}/plots/{kind}"))
    svg = client.get(f"/studies/{study['id']}/plots/{kind}", params={"format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(svg.content)
    assert root.tag.endswith("svg")


def test_waterfall_defaults_to_the_last_day_and_names_who_is_left_out(
    client: TestClient,
    study: dict,  # noqa: F811
) -> None:
    url = f"/studies/{study['id']}/plots/waterfall"
    text = svg_text(client, url)
    assert "day 21 vs baseline" in text  # the last imaging day of the fixture
    assert "left out" not in text  # every animal has a bar
    # c6 imaged on days 0-14 and ended on day 14, c7 first imaged on day 21: no bars
    make_animal(client, study["id"], study["control"]["id"], "c6")
    make_animal(client, study["id"], study["control"]["id"], "c7")
    rows = ["animal,day,site,total_flux_ps", "c7,21,whole_body,1e7"]
    rows += [f"c6,{d},whole_body,{1e5 * (d + 1)}" for d in (0, 7, 14)]
    r = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("more.csv", "\n".join(rows).encode(), "text/csv")},
    )
    assert r.status_code == 201, r.text
    animals = client.get(f"/studies/{study['id']}/animals", params={"limit": 50}).json()
    c6 = next(a for a in animals["items"] if a["identifier"] == "c6")
    day0 = client.get(f"/studies/{study['id']}").json()["day0"]
    end = (dt.date.fromisoformat(day0) + dt.timedelta(days=14)).isoformat()
    r = client.patch(
        f"/studies/{study['id']}/animals/{c6['id']}",
        json={"end": {"date": end, "reason": "humane_endpoint"}},
    )
    assert r.status_code == 200, r.text
    text = svg_text(client, url)
    assert (
        "2 of 14 animals left out: humane endpoint before day 21 (1); no positive baseline "
        "image before day 21 (1)." in text
    )
    assert_png(client.get(url, params={"day": 21}))
    assert_problem(
        client.get(f"/studies/{study['id']}/plots/waterfall", params={"day": 5}), 422, "day 5"
    )


def test_comparison_plots(client: TestClient, other_lab: TestClient, study: dict) -> None:  # noqa: F811
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={
            "treatment_arm_id": study["treatment"]["id"],
            "analyses": ["survival"],
            "threshold": {"flux_ps": 1e6},
        },
    ).json()
    base = f"/studies/{study['id']}/comparisons/{created['id']}/plots"
    for kind in ("survival", "incidence", "growth", "spaghetti"):
        assert_png(client.get(f"{base}/{kind}"))
    assert_png(client.get(f"{base}/waterfall", params={"day": 14}))
    assert_problem(other_lab.get(f"{base}/survival"), 404)
    assert_problem(client.get(f"{base}/histogram"), 422)


def test_survival_plot_needs_a_threshold(client: TestClient, study: dict) -> None:  # noqa: F811
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["tc"]},
    ).json()
    response = client.get(f"/studies/{study['id']}/comparisons/{created['id']}/plots/survival")
    assert_problem(response, 422, "no threshold")


def test_no_data_for_a_site(client: TestClient, study: dict) -> None:  # noqa: F811
    assert_problem(
        client.get(f"/studies/{study['id']}/plots/growth", params={"site": "skull_mandible"}),
        422,
        "skull_mandible",
    )


def test_an_arm_has_the_same_colour_in_study_and_comparison_plots(
    client: TestClient,
    study: dict,  # noqa: F811
) -> None:
    # a second treatment arm sorted before 1D11: in the study it takes the first treatment
    # colour, so 1D11 has the second one in every figure, comparisons included
    first = make_treatment(
        client, study["id"], study["control"]["id"], name="0-Fresolimumab", agent_class="other"
    )
    assert first["name"] < study["treatment"]["name"]
    second, first_color = plots.TREATMENT_COLORS[1].lower(), plots.TREATMENT_COLORS[0].lower()
    study_svg = client.get(f"/studies/{study['id']}/plots/growth", params={"format": "svg"})
    assert second in svg_colors(study_svg.content)
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={
            "treatment_arm_id": study["treatment"]["id"],
            "analyses": ["survival"],
            "threshold": {"value": 1e6},
        },
    ).json()
    base = f"/studies/{study['id']}/comparisons/{created['id']}/plots"
    for kind in ("growth", "spaghetti", "survival", "incidence", "waterfall"):
        colors = svg_colors(client.get(f"{base}/{kind}", params={"format": "svg"}).content)
        assert second in colors, kind
        assert first_color not in colors, kind


def test_renaming_an_arm_keeps_every_plot_of_a_stored_comparison(
    client: TestClient,
    study: dict,  # noqa: F811
) -> None:
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "threshold": {"value": 1e6}},
    )
    assert created.status_code == 201, created.text
    renamed = client.patch(
        f"/studies/{study['id']}/arms/{study['treatment']['id']}", json={"name": "1D11 renamed"}
    )
    assert renamed.status_code == 200, renamed.text
    base = f"/studies/{study['id']}/comparisons/{created.json()['id']}/plots"
    for kind in ("survival", "incidence", "growth", "spaghetti", "waterfall"):
        assert_png(client.get(f"{base}/{kind}"))


def test_a_comparison_growth_plot_uses_the_floor_the_comparison_was_computed_with(
    client: TestClient,
    study: dict,  # noqa: F811
) -> None:
    from tests.app.test_analysis_api import CONTROL

    # A mouse whose signal fell to 0 on a later day: its log needs the floor.
    zero = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={
            "file": ("late.csv", f"animal,day,site,total_flux_ps\n{CONTROL[0]},35,whole_body,0\n")
        },
    )
    assert zero.status_code == 201, zero.text
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "floor": 1e4},
    )
    assert created.status_code == 201, created.text
    base = f"/studies/{study['id']}/comparisons/{created.json()['id']}/plots"
    assert_png(client.get(f"{base}/growth"))
