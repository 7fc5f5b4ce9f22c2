"""Server-side figures of a BLI study: growth curves, spaghetti, Kaplan-Meier, waterfall, incidence.

Every function takes plain values or ``cohorts`` results and returns a new
:class:`matplotlib.figure.Figure` (never pyplot, so figures are independent and can be built
in parallel threads); :func:`render` turns one into PNG or SVG bytes, deterministically.

Conventions shared by all figures:

- Arms keep the order given (``arms=``); an arm present in the data but not listed is
  appended after the listed ones, so no animal silently disappears.
- Colours come from a fixed colour-blind-safe palette (Okabe-Ito): control arms (vehicle,
  isotype, IgG, PBS, ... or those named in ``controls=``) in black / greys, treatments in
  colours, assigned by position in the arm order, so a study's arms keep their colours
  across figures when the same ``arms`` are passed.
- Values <= 0 (or missing) cannot go on a log axis: they are left out of the drawing and a
  footnote on the figure says how many points were not drawn.
- Inputs are never modified.

Why one long module: all figures share the conventions above (arm order, palette, log-axis
footnote, deterministic rendering), implemented once in shared helpers; each figure function
below is independent and reads on its own.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import textwrap
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter
from matplotlib.transforms import offset_copy

import cohorts

__all__ = [
    "AnimalPoint",
    "Figure",
    "Format",
    "arm_colors",
    "growth_curves",
    "incidence_bars",
    "is_control",
    "kaplan_meier",
    "render",
    "spaghetti",
    "waterfall",
]

Format = Literal["png", "svg"]

FIGSIZE = (8.0, 5.0)
PNG_DPI = 150

# Okabe & Ito (2008) colour-blind-safe palette; yellow (#F0E442) left out: unreadable on white.
TREATMENT_COLORS: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
)
CONTROL_COLORS: tuple[str, ...] = ("#000000", "#7F7F7F", "#4D4D4D", "#B3B3B3")
_CONTROL_NAME = re.compile(
    r"(?<![a-z])(vehicle|veh|control|ctrl|ctl|isotype|igg|pbs|saline|sham|untreated|placebo|"
    r"mock|dmso)(?![a-z])",
    re.IGNORECASE,
)
_ENDED_BY_DEATH = frozenset({"death", "humane_endpoint"})
_LABEL_LIMIT = 12  # animal ids are written at the end of the lines up to this many per panel
_FOOT_SIZE = 7.5

# SVG ids matplotlib derives from a random salt and object addresses (clip paths, markers,
# hatches, path collections, images): renamed in order of appearance by :func:`_stable_ids`.
_SVG_HASHED_ID = re.compile(r'id="([^"]*[0-9a-f]{10}[^"]*)"')
_SVG_HASH_END = re.compile(r"[0-9a-f]{10}$")
_SVG_ID_REF = re.compile(r'(id="|url\(#|href="#)([^")]+)')


@dataclass(frozen=True)
class AnimalPoint:
    """One animal's value on one day; ``ended_reason`` on its last point says why it ended."""

    animal: str
    arm: str
    day: float
    value: float
    ended_reason: str | None = None


# ---------------------------------------------------------------------------------- render


def render(figure: Figure, fmt: Format) -> bytes:
    """Render ``figure`` as PNG (150 dpi) or SVG bytes; identical input gives identical bytes.

    No timestamp or software version is written. matplotlib's SVG ids come from a random
    salt and object addresses; they are renamed in order of appearance, prefixed with a
    digest of the document so that two different figures inlined in one page never share
    an id. No global rcParams are touched, so renders in parallel threads are safe.
    """
    buf = io.BytesIO()
    if fmt == "png":
        figure.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
        return buf.getvalue()
    if fmt == "svg":
        figure.savefig(buf, format="svg", metadata={"Date": None})
        return _stable_ids(buf.getvalue().decode("utf-8")).encode("utf-8")
    raise ValueError(f"unknown figure format {fmt!r}; use 'png' or 'svg'")


def _stable_ids(svg: str) -> str:
    """Rename matplotlib's hashed SVG ids deterministically (see :func:`render`)."""
    hashed = dict.fromkeys(_SVG_HASHED_ID.findall(svg))
    if not hashed:
        return svg

    def renamed(names: dict[str, str]) -> str:
        def sub(m: re.Match[str]) -> str:
            return m.group(1) + names.get(m.group(2), m.group(2))

        return _SVG_ID_REF.sub(sub, svg)

    def kind(name: str) -> str:
        # matplotlib's ids are f"{type}{10 hex digits}" (type: p, m, h, image, C<n>_<i>_)
        return (name[:-10] if _SVG_HASH_END.search(name) else name) or "id"

    plain = renamed({old: f"{kind(old)}{i}" for i, old in enumerate(hashed)})
    digest = hashlib.sha256(plain.encode("utf-8")).hexdigest()[:8]
    return renamed({old: f"{kind(old)}{digest}_{i}" for i, old in enumerate(hashed)})


# --------------------------------------------------------------------------------- colours


def is_control(arm: str, controls: Collection[str] | None = None) -> bool:
    """True if ``arm`` is a control: listed in ``controls`` or named like one (vehicle, IgG...)."""
    if controls is not None:
        return arm in controls
    words = {m.lower() for m in _CONTROL_NAME.findall(arm)}
    if words == {"igg"} and re.search(r"(?<![a-z])anti", arm, re.IGNORECASE):
        return False  # "anti-RANKL IgG1" is a treatment antibody, "rat IgG2a" a control
    return bool(words)


def arm_colors(arms: Sequence[str], *, controls: Collection[str] | None = None) -> dict[str, str]:
    """Colour of each arm: controls in black / greys, treatments in Okabe-Ito colours, by order."""
    out: dict[str, str] = {}
    n_ctrl = n_treat = 0
    for arm in arms:
        if arm in out:
            continue
        if is_control(arm, controls):
            out[arm] = CONTROL_COLORS[n_ctrl % len(CONTROL_COLORS)]
            n_ctrl += 1
        else:
            out[arm] = TREATMENT_COLORS[n_treat % len(TREATMENT_COLORS)]
            n_treat += 1
    return out


# --------------------------------------------------------------------------------- helpers


def _colors(
    order: Sequence[str], controls: Collection[str] | None, given: Mapping[str, str] | None
) -> dict[str, str]:
    """``given`` colours (the study's, so an arm looks the same in every figure), the
    order-based colours for arms it does not name."""
    own = arm_colors(order, controls=controls)
    return {arm: (given or {}).get(arm, own[arm]) for arm in order}


def _arm_order(given: Iterable[str] | None, present: Iterable[str]) -> list[str]:
    """Arms as given, then arms present in the data but not given, in order of appearance."""
    order = list(dict.fromkeys(given or ()))
    order.extend(a for a in dict.fromkeys(present) if a not in order)
    return order


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _not_drawn_note(n: int, what: str = "point") -> str:
    return f"{_plural(n, what)} ≤ 0 or missing not drawn (a log axis cannot show them)."


def _wrapped(fig: Figure | SubFigure, lines: Sequence[str], fontsize: float) -> list[str]:
    """``lines`` wrapped to as many characters as the figure's width holds at ``fontsize``
    (an average glyph is about 0.56 em wide)."""
    root = fig if isinstance(fig, Figure) else fig.figure
    width = max(20, int(root.get_figwidth() * 72 / (fontsize * 0.56)))
    return [part for line in lines if line for part in textwrap.wrap(line, width)]


def fitted_title(fig: Figure | SubFigure, title: str, fontsize: float = 12.0) -> str:
    """``title`` with each of its lines wrapped to the figure's width (a long study or arm
    name, or the censoring note, was cut off at both edges of the image)."""
    return "\n".join(_wrapped(fig, title.split("\n"), fontsize))


def _footnotes(fig: Figure, lines: Sequence[str]) -> None:
    """Write ``lines`` under the axes, left-aligned, reserving room in the layout."""
    lines = _wrapped(fig, lines, _FOOT_SIZE)
    if not lines:
        return
    height_in = fig.get_figheight()
    line_in = _FOOT_SIZE * 1.45 / 72
    bottom = (len(lines) * line_in + 0.06) / height_in
    engine = fig.get_layout_engine()
    if engine is not None:
        # cast: the stub's LayoutEngine.set() takes no arguments; our figures are constrained
        # (_new_figure), whose set() takes rect
        cast(ConstrainedLayoutEngine, engine).set(rect=(0, bottom, 1, 1 - bottom))
    fig.text(
        0.01,
        0.03 / height_in,
        "\n".join(lines),
        ha="left",
        va="bottom",
        fontsize=_FOOT_SIZE,
        color="0.25",
        linespacing=1.3,
    )


def _empty_message(ax: Axes, message: str) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=10,
        color="0.4",
    )


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p not defined"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _fmt_num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.3g}"


def _flux_label(unit: str, relative: bool = False) -> str:
    if relative:
        return "Total flux relative to baseline (fold change)"
    return f"Total flux ({unit})"


CENSORING_LABELS = {
    "tobit": "Tobit model (left-censored at the limit)",
    "half_min": "min/2 substitution",
    "half_limit": "limit/2 substitution",
    "limit": "raised to the limit (floor)",
    "drop": "dropped",
}


def censoring_title(censoring: Mapping[str, object] | None) -> str:
    """Title suffix for a comparison's plots saying how values below the detection limit
    were handled and how many there were per arm ('' when none was, or for comparisons
    stored before censoring was recorded)."""
    if not censoring or censoring.get("method") not in CENSORING_LABELS:
        return ""
    counts = censoring.get("n_censored")
    per_arm = ", ".join(
        f"{c['arm']} {c['n_censored']}/{c['n_points']}"
        for c in (counts if isinstance(counts, list) else [])
        if isinstance(c, Mapping)
    )
    label = CENSORING_LABELS[str(censoring["method"])]
    return f"\nbelow detection limit: {label}" + (f" — {per_arm}" if per_arm else "")


def _series(points: Iterable[AnimalPoint]) -> dict[str, list[AnimalPoint]]:
    """Points grouped by animal (first-appearance order), each series sorted by day."""
    by_animal: dict[str, list[AnimalPoint]] = {}
    for p in points:
        by_animal.setdefault(p.animal, []).append(p)
    return {a: sorted(ps, key=lambda p: p.day) for a, ps in by_animal.items()}


# --------------------------------------------------------------------------- growth curves


def growth_curves(
    summary: cohorts.SummaryTable,
    animals: Sequence[AnimalPoint],
    *,
    title: str,
    unit: str,
    arms: Sequence[str] | None = None,
    controls: Collection[str] | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Geometric mean ± 95 % CI of each arm over time on a log axis, animals faint behind.

    Draws, per arm in its colour, the geometric mean per day (line + markers) with its 95 %
    CI as error bars (``summary.rows``; slightly dodged so arms do not hide each other),
    and each animal's series (``animals``) as a faint thin line. The legend gives each arm
    with its n (first day → last day when it changes); a dotted line marks the detection
    floor when the summary used one. ``arms`` fixes the order / colours (default: the
    summary's order).
    """
    rows_by_arm: dict[str, list[cohorts.ArmDaySummary]] = {}
    for row in summary.rows:
        rows_by_arm.setdefault(row.arm, []).append(row)
    order = _arm_order(arms, [*rows_by_arm, *(p.arm for p in animals)])
    colors = _colors(order, controls, colors)
    relative = summary.baseline is not None

    fig = _new_figure()
    ax = fig.add_subplot()
    not_drawn = 0
    no_mean = 0
    drawn_any = False
    days = [r.day for r in summary.rows] + [p.day for p in animals if math.isfinite(p.day)]
    span = (max(days) - min(days)) if days else 0.0
    dodge_step = 0.006 * span if span > 0 else 0.0
    series = _series(animals)

    for i, arm in enumerate(order):
        color = colors[arm]
        for pts in series.values():
            if pts[0].arm != arm:
                continue
            keep = [p for p in pts if _positive(p.value) and math.isfinite(p.day)]
            not_drawn += len(pts) - len(keep)
            if keep:
                ax.plot(
                    [p.day for p in keep],
                    [p.value for p in keep],
                    color=color,
                    alpha=0.22,
                    linewidth=0.8,
                    zorder=1,
                )
                drawn_any = True
        rows = sorted(rows_by_arm.get(arm, []), key=lambda r: r.day)
        good = [r for r in rows if _positive(r.geometric_mean)]
        no_mean += len(rows) - len(good)
        ns = [r.n for r in rows]
        if not ns:
            label = f"{arm} (no summary)"
        elif ns[0] == ns[-1] and min(ns) == max(ns):
            label = f"{arm} (n = {ns[0]})"
        else:
            label = f"{arm} (n = {ns[0]}→{ns[-1]})"
        if not good:
            ax.plot([], [], color=color, marker="o", linewidth=2, label=label)
            continue
        drawn_any = True
        dodge = dodge_step * (i - (len(order) - 1) / 2)
        x = np.array([r.day for r in good]) + dodge
        y = np.array([r.geometric_mean for r in good], dtype=float)
        ax.plot(x, y, color=color, marker="o", markersize=5, linewidth=2, zorder=3, label=label)
        ci = [
            (xx, r)
            for xx, r in zip(x, good, strict=True)
            if _positive(r.geometric_ci_low) and _positive(r.geometric_ci_high)
        ]
        if ci:
            gm = np.array([r.geometric_mean for _, r in ci], dtype=float)
            lo = np.array([r.geometric_ci_low for _, r in ci], dtype=float)
            hi = np.array([r.geometric_ci_high for _, r in ci], dtype=float)
            ax.errorbar(
                [xx for xx, _ in ci],
                gm,
                yerr=np.vstack([np.clip(gm - lo, 0, None), np.clip(hi - gm, 0, None)]),
                fmt="none",
                ecolor=color,
                elinewidth=1.2,
                capsize=3,
                zorder=3,
            )

    if drawn_any:
        ax.set_yscale("log")
        if summary.floor is not None and _positive(summary.floor) and not relative:
            ax.axhline(
                summary.floor,
                color="0.45",
                linestyle=":",
                linewidth=1,
                zorder=0,
                label=f"Detection floor ({summary.floor:.3g} {unit})",
            )
        ax.legend(loc="best", fontsize=8.5, frameon=False)
    else:
        _empty_message(ax, "No positive values to draw")
    ax.set_title(fitted_title(ax.figure, title))
    ax.set_xlabel("Days since injection")
    ax.set_ylabel(_flux_label(unit, relative))
    ax.grid(True, which="major", axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)

    notes = [
        "Points: geometric mean ± 95 % CI (t interval on log values); faint lines: "
        f"individual animals. Site: {summary.site}."
    ]
    if summary.exclusions:
        notes.append(
            f"{_plural(len(summary.exclusions), 'exclusion')} applied before summarising "
            "(see the analysis report)."
        )
    if not_drawn:
        notes.append(_not_drawn_note(not_drawn, "animal value"))
    if no_mean:
        notes.append(
            f"{_plural(no_mean, 'arm-day summary')} without a positive geometric mean "
            f"(scale {summary.scale}) not drawn."
        )
    _footnotes(fig, notes)
    return fig


# ------------------------------------------------------------------------------- spaghetti


def _spread(fracs: list[float], gap: float) -> list[float]:
    """Push sorted-by-value positions apart to at least ``gap`` (keeps their mean)."""
    if len(fracs) < 2:
        return fracs
    idx = sorted(range(len(fracs)), key=lambda i: fracs[i])
    pos = [fracs[i] for i in idx]
    for k in range(1, len(pos)):
        pos[k] = max(pos[k], pos[k - 1] + gap)
    shift = (sum(fracs[i] for i in idx) - sum(pos)) / len(pos)
    pos = [p + shift for p in pos]
    out = [0.0] * len(fracs)
    for k, i in enumerate(idx):
        out[i] = pos[k]
    return out


def spaghetti(
    animals: Sequence[AnimalPoint],
    *,
    title: str,
    unit: str,
    arms: Sequence[str],
    controls: Collection[str] | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per arm, one line per animal on a shared log axis, with end markers.

    Each animal's series is a line in its arm's colour; its last point is marked × when the
    series ended by death or humane endpoint (``ended_reason`` of the last point), a dot
    otherwise. With at most 12 animals in a panel the animal id is written at the end of
    each line (labels pushed apart so they do not overlap).
    """
    series = _series(animals)
    order = _arm_order(arms, (pts[0].arm for pts in series.values()))
    colors = _colors(order, controls, colors)
    n_panels = max(len(order), 1)
    ncols = n_panels if n_panels <= 4 else 3
    nrows = math.ceil(n_panels / ncols)
    fig = _new_figure((FIGSIZE[0], FIGSIZE[1] if nrows <= 2 else 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    # characters of a 10 pt title that fit a panel (~0.55 em per character, 85 % usable)
    title_chars = max(int(0.85 * fig.get_figwidth() / ncols * 72 / (10 * 0.55)), 8)

    kept: dict[str, dict[str, list[AnimalPoint]]] = {arm: {} for arm in order}
    not_drawn = 0
    for animal, pts in series.items():
        keep = [p for p in pts if _positive(p.value) and math.isfinite(p.day)]
        not_drawn += len(pts) - len(keep)
        if keep:
            kept[pts[0].arm][animal] = keep
    any_drawn = any(kept[arm] for arm in order)
    all_days = [p.day for d in kept.values() for s in d.values() for p in s]
    died = False

    for ax, arm in zip(axes, order, strict=False):
        color = colors[arm]
        n_animals = sum(1 for pts in series.values() if pts[0].arm == arm)
        # wrapped to the panel's width so neighbouring titles do not run into each other
        ax.set_title(
            textwrap.fill(f"{arm} (n = {n_animals})", width=title_chars), fontsize=10, color=color
        )
        ax.grid(True, which="major", axis="y", color="0.9", linewidth=0.8)
        ax.set_axisbelow(True)
        if not kept[arm]:
            _empty_message(ax, "no values to draw")
        for animal, pts in kept[arm].items():
            x = [p.day for p in pts]
            y = [p.value for p in pts]
            ax.plot(x, y, color=color, alpha=0.75, linewidth=1.1, marker="o", markersize=2.5)
            last = series[animal][-1]
            if last.ended_reason in _ENDED_BY_DEATH:
                died = True
                ax.plot(x[-1], y[-1], marker="x", markersize=8, markeredgewidth=2, color="#000000")
            else:
                ax.plot(x[-1], y[-1], marker="o", markersize=4.5, color=color)

    if any_drawn:
        axes[0].set_yscale("log")
        lo_day, hi_day = min(all_days), max(all_days)
        span = hi_day - lo_day if hi_day > lo_day else 1.0
        labelled = any(0 < len(kept[arm]) <= _LABEL_LIMIT for arm in order)
        axes[0].set_xlim(lo_day - 0.03 * span, hi_day + (0.2 if labelled else 0.03) * span)
        values = [p.value for d in kept.values() for s in d.values() for p in s]
        ylo, yhi = math.log10(min(values)), math.log10(max(values))
        pad = 0.06 * (yhi - ylo) if yhi > ylo else 0.5
        ylo, yhi = ylo - pad, yhi + pad
        axes[0].set_ylim(10**ylo, 10**yhi)
        # label gap in axes fraction: ~8.5 pt of text over the panel's approximate height
        panel_pt = fig.get_figheight() * 72 * 0.78 / nrows
        gap = 8.5 / panel_pt
        for ax, arm in zip(axes, order, strict=False):
            if not 0 < len(kept[arm]) <= _LABEL_LIMIT:
                continue
            ends = [(animal, pts[-1]) for animal, pts in kept[arm].items()]
            # cluster ends that share (nearly) the same day, then spread their labels
            ends.sort(key=lambda e: e[1].day)
            clusters: list[list[tuple[str, AnimalPoint]]] = []
            for e in ends:
                if clusters and e[1].day - clusters[-1][-1][1].day <= 0.08 * span:
                    clusters[-1].append(e)
                else:
                    clusters.append([e])
            for cluster in clusters:
                fracs = [(math.log10(p.value) - ylo) / (yhi - ylo) for _, p in cluster]
                for (animal, p), f in zip(cluster, _spread(fracs, gap), strict=True):
                    ax.annotate(
                        animal,
                        xy=(p.day, p.value),
                        xytext=(p.day, 10 ** (ylo + f * (yhi - ylo))),
                        textcoords=offset_copy(ax.transData, fig=fig, x=6, units="points"),
                        xycoords="data",
                        fontsize=7,
                        color="0.2",
                        va="center",
                        ha="left",
                        annotation_clip=False,
                    )
    for k, ax in enumerate(axes[:n_panels]):
        if k % ncols == 0:
            ax.set_ylabel(_flux_label(unit))
        if k + ncols >= n_panels:  # lowest panel of its column
            ax.set_xlabel("Days since injection")
            ax.tick_params(axis="x", labelbottom=True)
    fig.suptitle(fitted_title(fig, title))
    if died:
        handles = [
            Line2D([], [], color="#000000", marker="x", linestyle="none", markersize=7, mew=2),
            Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=4.5),
        ]
        axes[0].legend(
            handles,
            ["died / humane endpoint", "last image"],
            loc="lower right",
            fontsize=7,
            frameon=True,
            framealpha=0.9,
            handletextpad=0.3,
            borderpad=0.3,
        )
    notes = []
    if not_drawn:
        notes.append(_not_drawn_note(not_drawn))
    _footnotes(fig, notes)
    return fig


# --------------------------------------------------------------------------- Kaplan-Meier


def _km_steps(curve: cohorts.KMCurve, t_end: float) -> tuple[np.ndarray, ...]:
    """Step coordinates (time, S, CI low, CI high) from t = 0 to ``t_end``, 'post' style."""
    t = [0.0]
    s = [1.0]
    lo: list[float | None] = [1.0]
    hi: list[float | None] = [1.0]
    for p in curve.points:
        if p.time <= 0:
            t, s, lo, hi = [0.0], [p.survival], [p.ci_low], [p.ci_high]
        else:
            t.append(p.time)
            s.append(p.survival)
            lo.append(p.ci_low)
            hi.append(p.ci_high)
    lo = [v if v is not None else sv for v, sv in zip(lo, s, strict=True)]
    hi = [v if v is not None else sv for v, sv in zip(hi, s, strict=True)]
    if t_end > t[-1]:
        t.append(t_end)
        s.append(s[-1])
        lo.append(lo[-1])
        hi.append(hi[-1])
    return tuple(np.asarray(v, dtype=float) for v in (t, s, lo, hi))


_Corner = Literal["lower left", "upper right", "lower right", "upper left", "center right"]
_CORNERS: tuple[_Corner, ...] = (
    "lower left",
    "upper right",
    "lower right",
    "upper left",
    "center right",
)


def _free_corner(
    ax: Axes,
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    lines: Sequence[str],
    *,
    fontsize: float,
    t_max: float,
) -> _Corner:
    """Legend location whose (estimated) box covers the fewest points of the step curves.

    matplotlib's ``loc="best"`` counts the CI bands' bounding boxes as occupied, which rules
    out the empty lower left of most survival plots; this counts only the curves.
    """
    fig = ax.get_figure()
    pos = ax.get_position()
    ax_w = fig.get_figwidth() * 72 * max(pos.width, 0.5) * 0.95  # type: ignore[union-attr]
    ax_h = fig.get_figheight() * 72 * max(pos.height, 0.4) * 0.85  # type: ignore[union-attr]
    w = (max(len(s) for s in lines) * fontsize * 0.55 + 40) / ax_w
    h = (len(lines) * fontsize * 1.45 + 12) / ax_h
    pts: list[tuple[float, float]] = []
    for t, s in curves:
        for k in range(len(t) - 1):  # horizontal then vertical part of each step
            for f in np.linspace(0, 1, 12):
                pts.append((t[k] + f * (t[k + 1] - t[k]), s[k]))
                pts.append((t[k + 1], s[k] + f * (s[k + 1] - s[k])))
    xs = np.array([p[0] for p in pts]) / t_max if pts else np.zeros(0)
    ys = (np.array([p[1] for p in pts]) + 0.02) / 1.07 if pts else np.zeros(0)
    boxes: dict[_Corner, tuple[float, float]] = {
        "lower left": (0.0, 0.0),
        "upper right": (1 - w, 1 - h),
        "lower right": (1 - w, 0.0),
        "upper left": (0.0, 1 - h),
        "center right": (1 - w, 0.5 - h / 2),
    }
    best, best_n = _CORNERS[0], None
    for name in _CORNERS:
        x0, y0 = boxes[name]
        inside = (xs >= x0) & (xs <= x0 + w) & (ys >= y0) & (ys <= y0 + h)
        n = int(inside.sum())
        if best_n is None or n < best_n:
            best, best_n = name, n
    return best


def _step_points(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Points along the step curves (data coordinates), dense enough to test for overlap."""
    pts = []
    for t, s in curves:
        for k in range(len(t) - 1):
            for f in np.linspace(0, 1, 24):
                pts.append((t[k] + f * (t[k + 1] - t[k]), s[k]))
                pts.append((t[k + 1], s[k] + f * (s[k + 1] - s[k])))
    return np.array(pts) if pts else np.zeros((0, 2))


def _covers(
    ax: Axes, legend: Legend, curves: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[bool, float]:
    """Whether the legend, as laid out, lies over a point of a curve; its width (inches)."""
    fig = ax.get_figure()
    fig.draw_without_rendering()  # type: ignore[union-attr]
    box = legend.get_window_extent()
    width_in = box.width / fig.dpi  # type: ignore[union-attr]
    pts = ax.transData.transform(_step_points(curves)) if curves else np.zeros((0, 2))
    x, y = pts[:, 0], pts[:, 1]
    return bool(((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)).any()), width_in


def _survival_at(curve: cohorts.KMCurve, time: float) -> float:
    s = 1.0
    for p in curve.points:
        if p.time <= time:
            s = p.survival
    return s


# censoring mark and legend text per reason an animal's follow-up ended without the event
_CENSOR_MARKS: dict[str, tuple[str, str]] = {
    "study_end": ("+", "censored: study end"),
    "humane_endpoint": ("v", "censored: humane endpoint"),
    "death": ("x", "censored: death"),
    "withdrawn": ("D", "censored: withdrawn"),
    "last_image": ("|", "censored: last image (no end record)"),
    "unknown": ("+", "censored"),
}


def _censor_times(
    result: cohorts.SurvivalResult, curve: cohorts.KMCurve
) -> tuple[list[tuple[str, float]], bool]:
    """(reason, time) of each censored animal of an arm, and whether the times are exact
    (from the animals) or derived from the numbers at risk (reason ``unknown``)."""
    animals = [a for a in result.animals if a.arm == curve.arm]
    if animals:
        censored = [a for a in animals if not a.event]
        return sorted(
            (a.reason if a.reason in _CENSOR_MARKS else "unknown", a.time) for a in censored
        ), True
    # derived from the at-risk drops that are not events: the time is only known to lie in
    # [t_i, t_(i+1)); the tick goes at t_i (0 before the first event).
    times: list[float] = []
    prev_t, prev_left = 0.0, curve.n
    for p in curve.points:
        times.extend([prev_t] * max(prev_left - p.at_risk, 0))
        prev_t, prev_left = p.time, p.at_risk - p.events
    times.extend([prev_t] * max(prev_left, 0))
    return [("unknown", t) for t in times], False


def _at_risk(result: cohorts.SurvivalResult, curve: cohorts.KMCurve, t: float) -> str:
    animals = [a for a in result.animals if a.arm == curve.arm]
    if animals:
        return str(sum(1 for a in animals if a.time >= t))
    if t <= 0:
        return str(curve.n)
    for p in curve.points:
        if p.time >= t:
            return str(p.at_risk)
    return "–"


def kaplan_meier(
    result: cohorts.SurvivalResult,
    *,
    title: str,
    arms: Sequence[str] | None = None,
    controls: Collection[str] | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Kaplan-Meier curves of metastasis-free survival with CI, censor ticks and risk table.

    Draws each arm's step curve (control first) with its 95 % CI shaded, ``+`` ticks where
    animals were censored, a "Number at risk" table under the axes at the day ticks, and a
    box with the log-rank p and the Cox hazard ratio (95 % CI). ``arms`` (the study's full
    arm order) keeps colours consistent with the study's other figures.
    """
    order = _arm_order(arms, [c.arm for c in result.curves])
    ctrl = {a for a in order if is_control(a, controls)} | {result.control}
    colors = _colors(order, ctrl, colors)
    curves = sorted(result.curves, key=lambda c: order.index(c.arm))
    t_max = 0.0
    for c in curves:
        times = [a.time for a in result.animals if a.arm == c.arm] + [p.time for p in c.points]
        t_max = max([t_max, *times])
    t_max = t_max if t_max > 0 else 1.0

    fig = _new_figure((FIGSIZE[0], FIGSIZE[1] + 0.25 * max(len(curves) - 2, 0)))
    gs = fig.add_gridspec(2, 1, height_ratios=[4.2, 0.55 + 0.3 * len(curves)])
    ax = fig.add_subplot(gs[0])
    tab = fig.add_subplot(gs[1], sharex=ax)

    exact = True
    censor_reasons: set[str] = set()
    curve_xy: list[tuple[np.ndarray, np.ndarray]] = []
    for c in curves:
        color = colors[c.arm]
        arm_times = [a.time for a in result.animals if a.arm == c.arm]
        # follow-up ends at the arm's last animal; without animals it is not known: the
        # curve is drawn to the figure's last time
        t, s, lo, hi = _km_steps(c, max(arm_times) if arm_times else t_max)
        median = f"median {c.median_time:g} d" if c.median_time is not None else "median n.r."
        label = f"{c.arm} (n = {c.n}, events = {c.n_events}, {median})"
        ax.step(t, s, where="post", color=color, linewidth=2, label=label, zorder=3)
        ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, linewidth=0, zorder=1)
        censors, ok = _censor_times(result, c)
        exact = exact and ok
        curve_xy.append((t, s))
        by_reason: dict[str, list[float]] = defaultdict(list)
        for reason, ct in censors:
            by_reason[reason].append(ct)
        for reason, times in by_reason.items():
            censor_reasons.add(reason)
            ax.plot(
                times,
                [_survival_at(c, ct) for ct in times],
                linestyle="none",
                marker=_CENSOR_MARKS[reason][0],
                markersize=8,
                markeredgewidth=1.5,
                markerfacecolor="none",
                color=color,
                zorder=4,
            )

    ax.set_xlim(0, t_max * 1.03)
    ax.set_ylim(-0.02, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=3))
    ticks = [float(x) for x in ax.get_xticks() if 0 <= x <= t_max * 1.03]
    ax.set_xticks(ticks)
    ax.set_xlim(0, t_max * 1.03)
    ax.set_ylabel("Metastasis-free survival (%)")
    ax.set_xlabel("Days since injection")
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(fitted_title(ax.figure, title))
    handles, labels = ax.get_legend_handles_labels()
    for reason, (mark, text) in _CENSOR_MARKS.items():
        if reason in censor_reasons:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.3",
                    marker=mark,
                    markerfacecolor="none",
                    linestyle="none",
                    markersize=8,
                    markeredgewidth=1.5,
                )
            )
            labels.append(text)
    stats_lines = [f"Log-rank {_fmt_p(result.logrank.p_value)}"]
    hr = result.hazard_ratio
    if hr is not None and hr.estimate is not None:
        ci = (
            f" (95 % CI {_fmt_num(hr.ci_low)}–{_fmt_num(hr.ci_high)})"
            if hr.ci_low is not None and hr.ci_high is not None
            else ""
        )
        stats_lines.append(
            f"Cox HR {result.treated} vs {result.control}: {_fmt_num(hr.estimate)}{ci}"
        )
    else:
        stats_lines.append("Cox HR not estimable (all events in one arm)")
    # one box, placed where it hides the least of the curves: the arms, the tests as its title
    box_lines = [*stats_lines, *labels]
    legend = ax.legend(
        handles,
        labels,
        loc=_free_corner(ax, curve_xy, box_lines, fontsize=8.2, t_max=t_max * 1.03),
        fontsize=8,
        title="\n".join(stats_lines),
        title_fontsize=8.5,
        alignment="left",
        frameon=True,
        framealpha=0.92,
        edgecolor="0.6",
    )
    legend.set_zorder(5)
    covered, legend_in = _covers(ax, legend, curve_xy)
    if covered:
        # no corner is free: the box goes beside the axes (the figure widened for it)
        legend.remove()
        fig.set_figwidth(fig.get_figwidth() + legend_in + 0.3)
        legend = ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize=8,
            title="\n".join(stats_lines),
            title_fontsize=8.5,
            alignment="left",
            frameon=True,
            framealpha=0.92,
            edgecolor="0.6",
        )

    # number-at-risk table, one row per arm, at the day ticks of the main axis
    tab.set_ylim(len(curves) - 0.5, -0.5)
    tab.set_yticks(range(len(curves)))
    tab.set_yticklabels([c.arm for c in curves], fontsize=8)
    for lab, c in zip(tab.get_yticklabels(), curves, strict=True):
        lab.set_color(colors[c.arm])
    for row, c in enumerate(curves):
        for tk in ticks:
            tab.text(tk, row, _at_risk(result, c, tk), ha="center", va="center", fontsize=8)
    tab.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    tab.tick_params(axis="y", length=0, pad=14)
    for spine in tab.spines.values():
        spine.set_visible(False)
    tab.set_title("Number at risk", loc="left", fontsize=9)

    notes = [f"Site: {result.site}; metastasis = {result.rule}. Shaded: 95 % CI (log-log)."]
    if not exact:
        notes.append("Censoring ticks placed at the start of the interval they occurred in.")
    _footnotes(fig, notes)
    return fig


# ------------------------------------------------------------------------------- waterfall


def waterfall(
    fold_changes: Sequence[tuple[str, str, float]],
    *,
    day: int,
    title: str,
    arms: Sequence[str],
    controls: Collection[str] | None = None,
    colors: Mapping[str, str] | None = None,
    left_out: Sequence[str] = (),
) -> Figure:
    """Per-animal fold change vs baseline on ``day`` as bars sorted descending (log2 scale).

    One bar per (animal, arm, fold change), tallest first, coloured by arm, height log2 of
    the fold change with a line at 0 (no change); the legend gives each arm with its n.
    Animal ids label the bars when there are at most 40. ``left_out``: lines saying which
    animals have no bar and why, written under the axes.
    """
    order = _arm_order(arms, (arm for _, arm, _ in fold_changes))
    colors = _colors(order, controls, colors)
    keep = [(a, arm, float(fc)) for a, arm, fc in fold_changes if _positive(float(fc))]
    not_drawn = len(fold_changes) - len(keep)
    keep.sort(key=lambda r: (-r[2], order.index(r[1]), r[0]))

    fig = _new_figure()
    ax = fig.add_subplot()
    if keep:
        x = np.arange(len(keep))
        heights = np.log2([fc for _, _, fc in keep])
        ax.bar(x, heights, width=0.8, color=[colors[arm] for _, arm, _ in keep], zorder=2)
        ax.set_xlim(-0.7, len(keep) - 0.3)
        if len(keep) <= 40:
            ax.set_xticks(x)
            ax.set_xticklabels([a for a, _, _ in keep], rotation=90, fontsize=7)
        else:
            ax.set_xticks([])
        lo, hi = min(float(heights.min()), -1.0), max(float(heights.max()), 1.0)
        pad = 0.06 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    else:
        ax.set_xticks([])
        _empty_message(ax, "No positive fold change to draw")
    ax.axhline(0, color="0.2", linewidth=1, zorder=3)
    ax.set_xlabel("Animal (sorted by fold change)")
    ax.set_ylabel(f"Total flux fold change, day {day:g} vs baseline (log2)")
    ax.set_title(fitted_title(ax.figure, title))
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    counts = {arm: sum(1 for _, a, _ in keep if a == arm) for arm in order}
    ax.legend(
        [Patch(color=colors[arm]) for arm in order],
        [f"{arm} (n = {counts[arm]})" for arm in order],
        loc="best",
        fontsize=8.5,
        frameon=True,
        framealpha=0.9,
        edgecolor="none",
    )
    notes = ["log2 fold change: +1 = doubled, −1 = halved relative to the animal's baseline."]
    notes.extend(left_out)
    if not_drawn:
        notes.append(_not_drawn_note(not_drawn, "fold change"))
    _footnotes(fig, notes)
    return fig


# --------------------------------------------------------------------------- incidence bars


def incidence_bars(
    incidence: cohorts.IncidenceTable,
    *,
    title: str,
    arms: Sequence[str] | None = None,
    controls: Collection[str] | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Percentage of positive animals per arm on each day as grouped bars, with Fisher p.

    Per imaging day, a control bar and a treated bar of % positive (positive / n written
    above each bar); when the adjusted Fisher exact p is < 0.05 the day group gets
    asterisks and the p value above it. ``arms`` keeps colours consistent across figures.
    """
    pair = [incidence.control, incidence.treated]
    order = _arm_order(arms, pair)
    ctrl = {a for a in order if is_control(a, controls)} | {incidence.control}
    colors = _colors(order, ctrl, colors)
    rows = sorted(incidence.rows, key=lambda r: r.day)

    fig = _new_figure()
    ax = fig.add_subplot()
    width = 0.38
    x = np.arange(len(rows))
    for k, (arm, get) in enumerate(
        [
            (incidence.control, lambda r: (r.positive_control, r.n_control)),
            (incidence.treated, lambda r: (r.positive_treated, r.n_treated)),
        ]
    ):
        counts = [get(r) for r in rows]
        pct = [100.0 * p / n if n else 0.0 for p, n in counts]
        xs = x + (k - 0.5) * width
        ax.bar(xs, pct, width=width * 0.95, color=colors[arm], label=arm, zorder=2)
        for xx, h, (p, n) in zip(xs, pct, counts, strict=True):
            ax.text(xx, h + 1.5, f"{p}/{n}", ha="center", va="bottom", fontsize=7.5)
    for xx, r in zip(x, rows, strict=True):
        p = r.fisher.p_adjusted if r.fisher.p_adjusted is not None else r.fisher.p_value
        if p is not None and math.isfinite(p) and p < 0.05:
            top = max(
                100.0 * r.positive_control / r.n_control if r.n_control else 0.0,
                100.0 * r.positive_treated / r.n_treated if r.n_treated else 0.0,
            )
            ax.text(float(xx), top + 8.5, _fmt_p(p), ha="center", va="bottom", fontsize=8)
            ax.text(float(xx), top + 12.5, _stars(p), ha="center", va="bottom", fontsize=13)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r.day:g}" for r in rows])
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_ylim(0, 125)
    ax.set_yticks(range(0, 101, 20))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.set_xlabel("Days since injection")
    ax.set_ylabel(f"Animals positive at {incidence.site} (%)")
    fig.suptitle(fitted_title(fig, title))
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=9, frameon=False, ncols=2)
    if not rows:
        _empty_message(ax, "No day with animals in both arms")
    adjusted = {
        "holm": "Holm-adjusted across days",
        "bh": "Benjamini-Hochberg-adjusted across days",
        "none": "not adjusted",
    }.get(incidence.correction, f"{incidence.correction}-adjusted across days")
    notes = [
        f"Positive: {incidence.rule}. Fisher exact test per day ({adjusted}); "
        "* p < 0.05, ** p < 0.01, *** p < 0.001. Bar labels: positive / imaged."
    ]
    if incidence.skipped_days:
        days = ", ".join(f"{s.day:g}" for s in incidence.skipped_days)
        notes.append(f"Not compared (an arm had no animal imaged): day {days}.")
    _footnotes(fig, notes)
    return fig
