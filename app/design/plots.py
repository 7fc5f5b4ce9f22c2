"""The power curve: power against mice per arm, one line per imaging schedule."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from app.analysis.plots import FIGSIZE, TREATMENT_COLORS
from app.design.schemas import PowerRead


def power_curves(read: PowerRead, *, target: float = 0.8) -> Figure:
    """Power (with 95 % Monte Carlo intervals) against n per arm, a line per (interval,
    length); the target power dashed; the effect, test and n_sim as a footnote."""
    # the bottom 8 % holds the footnote
    fig = Figure(figsize=FIGSIZE, layout=ConstrainedLayoutEngine(rect=(0, 0.08, 1, 0.92)))
    ax = fig.add_subplot()
    schedules = sorted({(r.interval_days, r.length_days) for r in read.rows})
    for k, (interval, length) in enumerate(schedules):
        rows = sorted(
            (r for r in read.rows if (r.interval_days, r.length_days) == (interval, length)),
            key=lambda r: r.n_per_arm,
        )
        n = np.array([r.n_per_arm for r in rows], dtype=np.float64)
        p = np.array([r.power for r in rows])
        err = np.clip(
            [[r.power - r.ci_low for r in rows], [r.ci_high - r.power for r in rows]], 0, 1
        )
        ax.errorbar(
            n,
            p,
            yerr=err,
            marker="o",
            capsize=3,
            color=TREATMENT_COLORS[k % len(TREATMENT_COLORS)],
            linestyle="-" if k < len(TREATMENT_COLORS) else "--",
            label=f"every {interval:g} d to day {length:g} ({rows[0].n_images} images)",
        )
    ax.axhline(target, color="#7F7F7F", linestyle=":", linewidth=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mice per arm")
    ax.set_ylabel(f"power (two-sided alpha = {read.alpha:g})")
    ax.set_title("Power by simulation")
    ax.legend(title="imaging schedule", fontsize=8, loc="lower right")
    note = (
        f"{read.effect}; control {read.control_slope:.3g} log10/day, "
        f"between-animal SD of the rate {read.parameters.sd_slope:.3g}, residual SD "
        f"{read.parameters.sd_residual:.3g}, dropout {read.parameters.dropout_per_day:.3g}/day. "
        f"{read.test}; {read.n_sim} simulated studies per point (seed {read.seed}); bars: 95 % "
        "Monte Carlo intervals."
    )
    fig.text(0.01, 0.0, "\n".join(textwrap.wrap(note, 130)), fontsize=7, va="bottom")
    return fig
