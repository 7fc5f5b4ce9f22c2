"""Figures of interval-censored onset and of several sites per mouse (matplotlib, no pyplot).

Same conventions as :mod:`app.analysis.plots`: a new Figure per call, arm colours from the
study's palette, rendered by :func:`app.analysis.plots.render`.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import cast

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, PercentFormatter

import cohorts
from app.analysis.plots import fitted_title

FIGSIZE = (8.0, 5.0)
_FOOT = 7.5


def _figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _aft_line(fit: cohorts.AFTFit) -> str:
    tr = fit.time_ratio
    why = f": {fit.warnings[0]}" if fit.warnings else ""
    if tr.estimate is None or fit.likelihood_ratio is None:
        return f"{fit.distribution} AFT: not estimable{why}"
    lr = f"LR {_fmt_p(fit.likelihood_ratio.p_value)}"
    if fit.warnings:  # the intervals hardly determine the ratio: no CI worth printing
        return f"{fit.distribution} AFT: time ratio {tr.estimate:.3g}, {lr}{why}"
    return (
        f"{fit.distribution} AFT: time ratio {tr.estimate:.3g} "
        f"(95 % CI {tr.ci_low:.3g}–{tr.ci_high:.3g}), {lr}"
    )


def turnbull_curves(
    result: cohorts.IntervalSurvivalResult, *, colors: Mapping[str, str], title: str
) -> Figure:
    """Turnbull NPMLE per arm: S(t) is drawn where it is unique; a shaded box spans each
    Turnbull interval, where only the mass (the drop) is known. The conventional
    Kaplan-Meier (onset = first positive image) is dashed."""
    fig = _figure()
    ax = fig.add_subplot()
    t_end = max([a.left for a in result.animals] + [a.right or 0.0 for a in result.animals])
    t_end = max(t_end, 1.0) * 1.05
    for curve in result.turnbull:
        color = colors.get(curve.arm, "#0072B2")
        s_prev, t_prev = 1.0, 0.0
        for iv in curve.intervals:
            if iv.right is None:  # mass beyond the last image: unknown when, not a drop
                ax.hlines(s_prev, t_prev, iv.left, color=color, lw=2)
                t_prev = t_end
                break
            right = iv.right
            ax.hlines(s_prev, t_prev, iv.left, color=color, lw=2)
            if iv.mass > 0:
                ax.add_patch(
                    Rectangle(
                        (iv.left, iv.survival),
                        max(right - iv.left, t_end * 0.004),
                        s_prev - iv.survival,
                        facecolor=color,
                        alpha=0.18,
                        edgecolor=color,
                        lw=0.6,
                    )
                )
            s_prev, t_prev = iv.survival, right
        ax.plot([], [], color=color, lw=2, label=f"{curve.arm} (n = {curve.n}), Turnbull")
    if result.conventional is not None:
        for km in result.conventional.curves:
            color = colors.get(km.arm, "#0072B2")
            times = [0.0] + [p.time for p in km.points] + [t_end]
            surv = [1.0] + [p.survival for p in km.points]
            surv.append(surv[-1])
            ax.step(times, surv, where="post", color=color, lw=1, ls="--", alpha=0.8)
        ax.plot([], [], color="0.4", lw=1, ls="--", label="conventional Kaplan-Meier")
    ax.set_xlim(0, t_end)
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("days since injection")
    ax.set_ylabel("metastasis-free")
    ax.set_title(fitted_title(fig, title, 10), fontsize=10)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    notes = [
        _aft_line(result.weibull),
        _aft_line(result.lognormal),
        f"Onset between the last negative and first positive image ({result.rule}); "
        "shaded: Turnbull intervals, where only the drop is known; the curve ends where "
        "the remaining animals were last seen negative.",
    ]
    lines = [part for note in notes for part in textwrap.wrap(note, 120)]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=_FOOT, color="0.25", va="bottom")
    bottom = 0.03 + 0.032 * len(lines)
    cast(ConstrainedLayoutEngine, fig.get_layout_engine()).set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def _arm_order(arms: Sequence[str], present: set[str]) -> list[str]:
    return [a for a in arms if a in present] + sorted(present - set(arms))


def site_incidence(
    inv: cohorts.SiteInvolvement, *, arms: Sequence[str], colors: Mapping[str, str], title: str
) -> Figure:
    """One panel per site: the fraction of each arm's imaged animals positive by each day."""
    n = len(inv.sites)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = _figure((FIGSIZE[0], max(FIGSIZE[1], 2.6 * nrows)))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    order = _arm_order(arms, {r.arm for r in inv.incidence})
    for ax, site in zip(axes, inv.sites, strict=False):
        rows = [r for r in inv.incidence if r.site == site]
        for arm in order:
            pts = sorted((r.day, r.fraction) for r in rows if r.arm == arm)
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    drawstyle="steps-post",
                    marker="o",
                    ms=3,
                    color=colors.get(arm),
                    label=arm,
                )
        ax.set_title(site.replace("_", " "), fontsize=9)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(-0.03, 1.03)
    _label(list(axes), ncols, nrows, "days since injection", "animals positive")
    axes[0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(fitted_title(fig, f"{title} — incidence per site", 10), fontsize=10)
    return fig


def sites_per_mouse(
    inv: cohorts.SiteInvolvement, *, arms: Sequence[str], colors: Mapping[str, str], title: str
) -> Figure:
    """Number of sites involved per mouse: one thin line per animal, the arm mean bold."""
    fig = _figure()
    ax = fig.add_subplot()
    series: dict[str, list[tuple[float, int]]] = defaultdict(list)
    arm_of: dict[str, str] = {}
    for m in inv.per_mouse:
        series[m.animal].append((m.day, m.n_involved))
        arm_of[m.animal] = m.arm
    order = _arm_order(arms, set(arm_of.values()))
    offsets = {a: (i - (len(order) - 1) / 2) * 0.06 for i, a in enumerate(order)}
    for animal, pts in series.items():
        arm = arm_of[animal]
        days, counts = zip(*sorted(pts), strict=True)
        ax.plot(days, [c + offsets[arm] for c in counts], color=colors.get(arm), lw=0.6, alpha=0.35)
    for arm in order:
        rows = sorted((r.day, r.mean) for r in inv.per_arm if r.arm == arm)
        ax.plot(*zip(*rows, strict=True), color=colors.get(arm), lw=2.2, marker="o", label=arm)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.2, len(inv.sites) + 0.2)
    ax.set_xlabel("days since injection")
    ax.set_ylabel(f"sites involved (of {len(inv.sites)})")
    ax.set_title(
        fitted_title(fig, f"{title} — sites involved per mouse (arm mean bold)", 10), fontsize=10
    )
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return fig


def _label(axes: Sequence[Axes], ncols: int, nrows: int, xlabel: str, ylabel: str) -> None:
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        if i // ncols == nrows - 1 or i + ncols >= len(axes):
            ax.set_xlabel(xlabel, fontsize=8)
