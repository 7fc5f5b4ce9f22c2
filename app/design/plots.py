"""Power curves: power against mice per arm, one line per imaging schedule (growth) or
imaging schedule and follow-up (onset)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from app.analysis.plots import FIGSIZE, TREATMENT_COLORS
from app.design.schemas import OnsetPowerRead, OnsetPowerRowRead, PowerRead, PowerRowRead

Row = PowerRowRead | OnsetPowerRowRead


def _curves(
    lines: Sequence[tuple[str, Sequence[Row]]],
    *,
    alpha: float,
    note: str,
    target: float,
    title: str = "Power by simulation",
) -> Figure:
    """Power (with 95 % Monte Carlo intervals) against n per arm, a line per (label, rows);
    the target power dotted; ``note`` as a footnote."""
    # the bottom 8 % holds the footnote
    fig = Figure(figsize=FIGSIZE, layout=ConstrainedLayoutEngine(rect=(0, 0.08, 1, 0.92)))
    ax = fig.add_subplot()
    for k, (label, unsorted) in enumerate(lines):
        rows = sorted(unsorted, key=lambda r: r.n_per_arm)
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
            label=label,
        )
    ax.axhline(target, color="#7F7F7F", linestyle=":", linewidth=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mice per arm")
    ax.set_ylabel(f"power (two-sided alpha = {alpha:g})")
    ax.set_title(title)
    ax.legend(title="imaging schedule", fontsize=8, loc="lower right")
    fig.text(0.01, 0.0, "\n".join(textwrap.wrap(note, 130)), fontsize=7, va="bottom")
    return fig


def power_curves(read: PowerRead, *, target: float = 0.8) -> Figure:
    """Growth power by n per arm, a line per (interval, length); the effect, test and n_sim
    as a footnote."""
    schedules = sorted({(r.interval_days, r.length_days) for r in read.rows})
    lines = []
    for interval, length in schedules:
        rows = [r for r in read.rows if (r.interval_days, r.length_days) == (interval, length)]
        lines.append((f"every {interval:g} d to day {length:g} ({rows[0].n_images} images)", rows))
    note = (
        f"{read.effect}; control {read.control_slope:.3g} log10/day, "
        f"between-animal SD of the rate {read.parameters.sd_slope:.3g}, residual SD "
        f"{read.parameters.sd_residual:.3g}, dropout {read.parameters.dropout_per_day:.3g}/day. "
        f"{read.test}; {read.n_sim} simulated studies per point (seed {read.seed}); bars: 95 % "
        "Monte Carlo intervals."
    )
    return _curves(lines, alpha=read.alpha, note=note, target=target)


def onset_power_curves(read: OnsetPowerRead, *, target: float = 0.8) -> Figure:
    """Onset (log-rank) power by n per arm, a line per (interval or continuous, follow-up);
    the model, effect, test and n_sim as a footnote."""
    schedules = sorted(
        {(r.interval_days, r.follow_up_days) for r in read.rows},
        key=lambda s: (s[0] is not None, s[0] or 0.0, s[1]),
    )
    lines = []
    for interval, end in schedules:
        rows = [r for r in read.rows if (r.interval_days, r.follow_up_days) == (interval, end)]
        seen = (
            "continuously"
            if interval is None
            else f"every {interval:g} d ({rows[0].n_images} images)"
        )
        lines.append((f"{seen}, follow-up {end:g} d", rows))
    if read.distribution is not None:
        d = read.distribution
        model = (
            f"control median onset {d.median_days:g} d (Weibull shape {d.weibull_shape:g}), "
            f"dropout {d.dropout_per_day:.3g}/day"
        )
    else:
        model = read.parameters_source
    note = (
        f"{read.effect}; {model}. {read.test}; {read.n_sim} simulated studies per point "
        f"(seed {read.seed}); bars: 95 % Monte Carlo intervals."
    )
    title = "Power of the log-rank test for time to onset, by simulation"
    return _curves(lines, alpha=read.alpha, note=note, target=target, title=title)
