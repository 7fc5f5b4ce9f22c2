"""Plot endpoints: real PNG/SVG images of a study and of a stored comparison."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import matplotlib.image
import pytest
from fastapi.testclient import TestClient

from tests.app.problems import assert_problem
from tests.app.test_analysis_api import study  # noqa: F401  (fixture: 2 arms × 6 mice × 4 days)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def test_waterfall_needs_a_day(client: TestClient, study: dict) -> None:  # noqa: F811
    assert_problem(client.get(f"/studies/{study['id']}/plots/waterfall"), 422, "day=")
    assert_png(client.get(f"/studies/{study['id']}/plots/waterfall", params={"day": 21}))
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
