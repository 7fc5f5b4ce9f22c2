"""Figures of app.analysis.plots, built from real cohorts results on a synthetic BLI study."""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import matplotlib
import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import cohorts
from app.analysis import plots
from app.analysis.plots import AnimalPoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAYS = (0, 7, 14, 21, 28, 35)
ARMS = ("Vehicle", "Drug A", "Isotype IgG", "Anti-RANKL")
SLOPE = {"Vehicle": 0.1, "Isotype IgG": 0.1, "Drug A": 0.06, "Anti-RANKL": 0.05}
OFFSETS = (-0.3, -0.15, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # log10 shift per animal
ENDS = {
    "Veh-2": (21.0, "death"),
    "Veh-5": (28.0, "humane_endpoint"),
    "DrA-3": (14.0, "withdrawn"),
}
PREFIX = {"Vehicle": "Veh", "Drug A": "DrA", "Isotype IgG": "Iso", "Anti-RANKL": "Rkl"}
THRESHOLD = 1e7  # p/s: whole-body flux counted as metastasis


def flux(arm: str, k: int, day: float) -> float:
    """Control arms grow 10-fold in 10 days, treated arms slower: 1e5 * 10^(slope day + off)."""
    return 1e5 * 10 ** (SLOPE[arm] * day + OFFSETS[k])


def build_study() -> tuple[cohorts.Cohort, list[AnimalPoint]]:
    observations = []
    points = []
    ends = []
    for arm in ARMS:
        for k in range(len(OFFSETS)):
            animal = f"{PREFIX[arm]}-{k + 1}"
            end_day, reason = ENDS.get(animal, (35.0, "study_end"))
            ends.append(cohorts.AnimalEnd(animal, end_day, reason))
            days = [d for d in DAYS if d <= end_day]
            for d in days:
                value = flux(arm, k, d)
                observations.append(cohorts.Observation(animal, arm, float(d), value))
                last = d == days[-1]
                points.append(AnimalPoint(animal, arm, float(d), value, reason if last else None))
    return cohorts.Cohort.from_records(observations, ends=ends), points


COHORT, POINTS = build_study()
SUMMARY = cohorts.summarize(COHORT, arms=ARMS)
SURVIVAL = cohorts.metastasis_free_survival(
    COHORT, control="Vehicle", treated="Drug A", site="whole_body", threshold=THRESHOLD
)
INCIDENCE = cohorts.incidence_by_day(
    COHORT, control="Vehicle", treated="Drug A", site="whole_body", threshold=THRESHOLD
)


def fold_changes(day: float) -> list[tuple[str, str, float]]:
    by = {(p.animal, p.day): p for p in POINTS}
    out = []
    for p in POINTS:
        if p.day == day:
            out.append((p.animal, p.arm, p.value / by[(p.animal, 0.0)].value))
    return out


FOLD_CHANGES = fold_changes(28.0)

FIGURES: dict[str, Callable[[], Figure]] = {
    "growth_curves": lambda: plots.growth_curves(
        SUMMARY, POINTS, title="MDA-MB-231 bone metastasis", unit="p/s", arms=ARMS
    ),
    "spaghetti": lambda: plots.spaghetti(
        POINTS, title="Whole-body flux per animal", unit="p/s", arms=ARMS
    ),
    "kaplan_meier": lambda: plots.kaplan_meier(
        SURVIVAL, title="Metastasis-free survival", arms=ARMS
    ),
    "waterfall": lambda: plots.waterfall(
        FOLD_CHANGES, day=28, title="Response on day 28", arms=ARMS
    ),
    "incidence_bars": lambda: plots.incidence_bars(
        INCIDENCE, title="Whole-body incidence", arms=ARMS
    ),
}


def svg_as_text(fig: Figure) -> bytes:
    """The figure's SVG with text kept as <text> elements (not glyph paths)."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        return plots.render(fig, "svg")


def text_of(svg: bytes) -> str:
    """All text of an SVG document, space-joined."""
    root = ET.fromstring(svg)
    return " ".join(" ".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


def svg_text(fig: Figure) -> str:
    return text_of(svg_as_text(fig))


@pytest.fixture(scope="module")
def pngs() -> dict[str, bytes]:
    return {name: plots.render(make(), "png") for name, make in FIGURES.items()}


@pytest.fixture(scope="module")
def svgs() -> dict[str, bytes]:
    return {name: svg_as_text(make()) for name, make in FIGURES.items()}


# ----------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_png_has_the_signature_and_decodes_to_8_by_5_inches(
    name: str, pngs: dict[str, bytes]
) -> None:
    data = pngs[name]
    assert data.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[1] == 8 * plots.PNG_DPI
    assert image.shape[0] == 5 * plots.PNG_DPI
    assert image[..., :3].std() > 0.05  # something is drawn


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_svg_rendering_is_deterministic(name: str, svgs: dict[str, bytes]) -> None:
    """A figure built and rendered again gives the same SVG (no date, no random ids).
    PNG: see the parallel-threads test, which compares fresh renders with ``pngs``."""
    assert svg_as_text(FIGURES[name]()) == svgs[name]
    assert b"<dc:date>" not in svgs[name]


def test_the_same_figure_renders_twice_identically() -> None:
    fig = FIGURES["incidence_bars"]()
    assert plots.render(fig, "svg") == plots.render(fig, "svg")
    assert plots.render(fig, "png") == plots.render(fig, "png")


def test_svg_ids_are_unique_across_figures_and_no_rcparam_changes(
    svgs: dict[str, bytes],
) -> None:
    before = dict(matplotlib.rcParams)
    plots.render(FIGURES["waterfall"](), "svg")
    assert dict(matplotlib.rcParams) == before
    ids = {}
    for name, data in svgs.items():
        found = {el.get("id") for el in ET.fromstring(data).iter() if el.get("id")}
        # the ids of clip paths / markers matplotlib hashes, renamed <type><digest>_<n>
        renamed = {i for i in found if re.fullmatch(r"(p|m)[0-9a-f]{8}_\d+", i)}
        assert renamed, name
        ids[name] = renamed
    names = sorted(ids)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not ids[a] & ids[b], (a, b)


def test_render_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown figure format"):
        plots.render(FIGURES["waterfall"](), "pdf")  # type: ignore[arg-type]


def test_figures_can_be_built_and_rendered_in_parallel_threads(pngs: dict[str, bytes]) -> None:
    # (no rc_context here: it changes the process-wide rcParams, which threads share)
    names = ["incidence_bars", "waterfall", "kaplan_meier"]
    serial_svg = {n: plots.render(FIGURES[n](), "svg") for n in set(names)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        out = list(pool.map(lambda n: plots.render(FIGURES[n](), "png"), names))
        svg = list(pool.map(lambda n: plots.render(FIGURES[n](), "svg"), names))
    assert out == [pngs[n] for n in names]
    assert svg == [serial_svg[n] for n in names]


# ------------------------------------------------------------------------ figure content


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "growth_curves",
            ["Days since injection", "Total flux (p/s)", "MDA-MB-231 bone metastasis"],
        ),
        ("spaghetti", ["Days since injection", "Total flux (p/s)", "Veh-1", "died"]),
        ("kaplan_meier", ["Days since injection", "Metastasis-free survival (%)"]),
        ("waterfall", ["day 28 vs baseline (log2)", "Veh-1", "Response on day 28"]),
        ("incidence_bars", ["Days since injection", "Animals positive at whole_body (%)"]),
    ],
)
def test_svg_parses_and_names_the_arms_and_axes(
    name: str, expected: list[str], svgs: dict[str, bytes]
) -> None:
    text = text_of(svgs[name])
    arms = ("Vehicle", "Drug A") if name in ("kaplan_meier", "incidence_bars") else ARMS
    for s in [*arms, *expected]:
        assert s in text, s


def test_svg_without_text_as_text_still_parses() -> None:
    root = ET.fromstring(plots.render(FIGURES["growth_curves"](), "svg"))
    assert root.tag.endswith("svg")


def test_growth_curve_legend_gives_n_per_arm_in_the_order_given() -> None:
    fig = plots.growth_curves(SUMMARY, POINTS, title="t", unit="p/s", arms=ARMS)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # Vehicle loses two animals (death day 21, humane endpoint day 28), Drug A one (day 14)
    assert labels == [
        "Vehicle (n = 8→6)",
        "Drug A (n = 8→7)",
        "Isotype IgG (n = 8)",
        "Anti-RANKL (n = 8)",
    ]
    assert fig.axes[0].get_yscale() == "log"
    assert fig.get_size_inches().tolist() == [8.0, 5.0]


def test_controls_are_grey_or_black_and_treatments_coloured() -> None:
    colors = plots.arm_colors(ARMS)
    assert colors["Vehicle"] == "#000000"
    assert colors["Isotype IgG"] in plots.CONTROL_COLORS
    assert colors["Drug A"] in plots.TREATMENT_COLORS
    assert colors["Anti-RANKL"] in plots.TREATMENT_COLORS
    assert colors["Drug A"] != colors["Anti-RANKL"]
    assert plots.arm_colors(["A", "B"], controls={"B"}) == {"A": "#0072B2", "B": "#000000"}
    for name in ("PBS", "vehicle (DMSO)", "Rat IgG2a", "Isotype control", "Ctrl"):
        assert plots.is_control(name), name
    for name in ("Anti-RANKL IgG1", "Zoledronate", "Drug A 10 mg/kg", "Vehiculum-free"):
        assert not plots.is_control(name), name


def test_kaplan_meier_has_the_risk_table_and_the_tests(svgs: dict[str, bytes]) -> None:
    fig = FIGURES["kaplan_meier"]()
    text = text_of(svgs["kaplan_meier"])
    assert "Number at risk" in text
    assert f"Log-rank p = {SURVIVAL.logrank.p_value:.3f}" in text
    hr = SURVIVAL.hazard_ratio
    assert hr.estimate is not None
    assert f"Cox HR Drug A vs Vehicle: {hr.estimate:.2f}" in text
    assert f"95 % CI {hr.ci_low:.2f}–{hr.ci_high:.2f}" in text
    # the table's first column (day 0) holds every animal of each arm
    table = fig.axes[1]
    day0 = [t.get_text() for t in table.texts if t.get_position()[0] == 0]
    assert day0 == [str(c.n) for c in SURVIVAL.curves] == ["8", "8"]


def test_kaplan_meier_marks_each_censored_animal_by_its_reason() -> None:
    fig = FIGURES["kaplan_meier"]()
    marks = {"study_end": "+", "humane_endpoint": "v", "death": "x", "withdrawn": "D"}
    marks["last_image"] = "|"
    lines = fig.axes[0].get_lines()
    censored = [a for a in SURVIVAL.animals if not a.event]
    reasons = {a.reason for a in censored}
    assert len(reasons) >= 2, reasons  # the fixture censors for more than one reason
    for reason in reasons:
        drawn = [ln for ln in lines if ln.get_marker() == marks[reason]]
        assert sum(len(ln.get_xdata()) for ln in drawn) == sum(
            1 for a in censored if a.reason == reason
        ), reason
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for reason in reasons:
        assert f"censored: {reason.replace('_', ' ')}" in " ".join(legend), reason


def test_kaplan_meier_without_animals_derives_the_censoring_from_the_curve() -> None:
    import dataclasses

    bare = dataclasses.replace(SURVIVAL, animals=())
    fig = plots.kaplan_meier(bare, title="t")
    ticks = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "+"]
    n_censored = sum(1 for a in SURVIVAL.animals if not a.event)
    assert sum(len(ln.get_xdata()) for ln in ticks) == n_censored
    assert "start of the interval" in svg_text(fig)


def test_spaghetti_marks_deaths_with_a_cross_and_labels_animals() -> None:
    fig = FIGURES["spaghetti"]()
    crosses = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 2  # Veh-2 (death) and Veh-5 (humane endpoint); not DrA-3
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(ARMS)
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"Veh-1", "DrA-8", "Rkl-4"} <= labels


def test_spaghetti_skips_the_labels_above_twelve_animals_per_panel() -> None:
    many = [
        AnimalPoint(f"m{k}", "Vehicle", d, 1e5 * (k + 1) * (d + 1))
        for k in range(13)
        for d in (0, 7)
    ]
    fig = plots.spaghetti(many, title="t", unit="p/s", arms=["Vehicle"])
    assert not [t for t in fig.axes[0].texts if t.get_text().startswith("m")]


def test_waterfall_sorts_descending_and_colours_by_arm() -> None:
    fig = FIGURES["waterfall"]()
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == sorted(heights, reverse=True)
    assert len(heights) == len(FOLD_CHANGES)
    arm_of = {a: arm for a, arm, _ in FOLD_CHANGES}
    order = [arm_of[t.get_text()] for t in ax.get_xticklabels()]
    assert order[0] in ("Vehicle", "Isotype IgG") and order[-1] == "Anti-RANKL"
    assert [bar.get_facecolor() for bar in ax.patches][-1] == matplotlib.colors.to_rgba(
        plots.arm_colors(ARMS)["Anti-RANKL"]
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "Vehicle (n = 7)",
        "Drug A (n = 7)",
        "Isotype IgG (n = 8)",
        "Anti-RANKL (n = 8)",
    ]


def test_incidence_bars_mark_significant_days() -> None:
    fig = FIGURES["incidence_bars"]()
    texts = [t.get_text() for t in fig.axes[0].texts]
    significant = [
        r for r in INCIDENCE.rows if r.fisher.p_adjusted is not None and r.fisher.p_adjusted < 0.05
    ]
    assert significant  # day 21: 6/8 vehicle vs 0/7 Drug A positive
    assert sum(1 for t in texts if t.startswith("*")) == len(significant)
    assert "6/8" in texts and "0/7" in texts
    assert fig.axes[0].get_ylim()[1] > 100


# --------------------------------------------------------------------- non-positive data


def test_non_positive_values_are_left_out_with_a_note() -> None:
    bad = [
        *POINTS,
        AnimalPoint("Veh-1", "Vehicle", 36.0, 0.0),
        AnimalPoint("Veh-1", "Vehicle", 37.0, -5.0),
        AnimalPoint("Veh-1", "Vehicle", 38.0, float("nan")),
    ]
    text = svg_text(plots.growth_curves(SUMMARY, bad, title="t", unit="p/s"))
    assert "3 animal values ≤ 0 or missing not drawn" in text
    vehicle = [p for p in bad if p.arm == "Vehicle"]
    text = svg_text(plots.spaghetti(vehicle, title="t", unit="p/s", arms=["Vehicle"]))
    assert "3 points ≤ 0 or missing not drawn" in text
    fcs = [*FOLD_CHANGES, ("x1", "Vehicle", 0.0)]
    text = svg_text(plots.waterfall(fcs, day=28, title="t", arms=ARMS))
    assert "1 fold change ≤ 0 or missing not drawn" in text


def test_clean_data_has_no_not_drawn_note(svgs: dict[str, bytes]) -> None:
    for data in svgs.values():
        assert "not drawn" not in text_of(data)


def test_nothing_drawable_gives_an_empty_figure_not_a_warning() -> None:
    zeros = [AnimalPoint("a", "Vehicle", 0.0, 0.0), AnimalPoint("a", "Vehicle", 7.0, 0.0)]
    text = svg_text(plots.spaghetti(zeros, title="t", unit="p/s", arms=["Vehicle"]))
    assert "no values to draw" in text and "2 points" in text
    text = svg_text(plots.waterfall([("a", "Vehicle", -1.0)], day=7, title="t", arms=["Vehicle"]))
    assert "No positive fold change to draw" in text


def test_arms_missing_from_the_order_are_appended_not_dropped() -> None:
    fig = plots.spaghetti(POINTS, title="t", unit="p/s", arms=["Drug A"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == [
        "Drug A (n = 8)",
        "Vehicle (n = 8)",
        "Isotype IgG (n = 8)",
        "Anti-RANKL (n = 8)",
    ]


def test_inputs_are_not_mutated() -> None:
    points = list(POINTS)
    fcs = list(FOLD_CHANGES)
    arms = list(ARMS)
    saved = (copy.deepcopy(points), copy.deepcopy(fcs), list(arms))
    saved_results = (SUMMARY.to_dict(), SURVIVAL.to_dict(), INCIDENCE.to_dict())
    plots.growth_curves(SUMMARY, points, title="t", unit="p/s", arms=arms)
    plots.spaghetti(points, title="t", unit="p/s", arms=arms)
    plots.kaplan_meier(SURVIVAL, title="t", arms=arms)
    plots.waterfall(fcs, day=28, title="t", arms=arms)
    plots.incidence_bars(INCIDENCE, title="t", arms=arms)
    assert (points, fcs, arms) == saved
    assert [p is q for p, q in zip(points, POINTS, strict=True)] == [True] * len(POINTS)
    assert (SUMMARY.to_dict(), SURVIVAL.to_dict(), INCIDENCE.to_dict()) == saved_results


def test_no_pyplot_figure_is_created() -> None:
    import sys

    for make in FIGURES.values():
        make()
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    assert isinstance(FIGURES["waterfall"]().axes[0].get_lines()[0], Line2D)


def test_spaghetti_panel_titles_do_not_collide() -> None:
    long_names = [
        "Vehicle (10 % DMSO in corn oil)",
        "Anti-TGF-beta 1D11 10 mg/kg i.p. twice weekly",
        "LY2109761 50 mg/kg p.o. daily",
        "Zoledronic acid 100 ug/kg s.c. weekly",
    ]
    pts = [
        AnimalPoint(f"m{k}", arm, d, 1e5 * (k + 1) * (d + 1))
        for k, arm in enumerate(long_names)
        for d in (0, 7)
    ]
    fig = plots.spaghetti(pts, title="t", unit="p/s", arms=long_names)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # constrained layout runs here
    renderer = canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    assert len(boxes) == 4
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (long_names[i], long_names[j])


def _legend_over_curves(fig: Figure) -> int:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent(canvas.get_renderer())
    n = 0
    for line in ax.get_lines():
        if line.get_drawstyle() != "steps-post":
            continue
        t, s = (np.asarray(v, dtype=float) for v in line.get_data())
        for k in range(len(t) - 1):
            for f in np.linspace(0, 1, 50):
                for x, y in (
                    (t[k] + f * (t[k + 1] - t[k]), s[k]),
                    (t[k + 1], s[k] + f * (s[k + 1] - s[k])),
                ):
                    px, py = ax.transData.transform((x, y))
                    n += box.x0 <= px <= box.x1 and box.y0 <= py <= box.y1
    return n


def test_kaplan_meier_legend_does_not_cover_the_curves() -> None:
    import dataclasses

    assert _legend_over_curves(FIGURES["kaplan_meier"]()) == 0
    # long arm names: the box is too big for any corner and goes beside the axes
    renamed = dataclasses.replace(
        SURVIVAL,
        curves=tuple(
            dataclasses.replace(
                c, arm=c.arm + " — a very long arm name, 10 mg/kg i.p. twice weekly"
            )
            for c in SURVIVAL.curves
        ),
    )
    assert _legend_over_curves(plots.kaplan_meier(renamed, title="t")) == 0


@pytest.mark.parametrize("fontsize", [10.0, 12.0])
def test_a_long_title_is_wrapped_inside_the_figure(fontsize: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    title = (
        "DEMO BM-01 TGF-β blockade in MDA-MB-231 bone metastasis — total skeletal burden "
        "(skull_mandible + spine + thorax + left_hindlimb + right_hindlimb)\n"
        "below detection limit: Tobit model (left-censored at the limit) — Vehicle 10/19, "
        "LY2109761 50 mg/kg 15/20"
    )
    fig = Figure(figsize=plots.FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    text = fig.add_subplot().set_title(plots.fitted_title(fig, title, fontsize), fontsize=fontsize)
    fig.canvas.draw()
    box = text.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, (box, fig.bbox)
    assert text.get_text().count("\n") >= 3  # both lines wrapped, none dropped
    assert text.get_text().replace("\n", " ").split() == title.split()
