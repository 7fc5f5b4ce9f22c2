"""Readouts compared between arms and correlated with each animal's final BLI flux per site;
their tables as CSV and the correlation as a scatter plot.

Why one long module: the comparison and the correlation are the two analyses of one
readout's values; they share the study's arms and the values query, and the correlation
section (below its marker) reads on its own.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.analysis.errors import run_cohorts
from app.analysis.plots import Format, _footnotes, arm_colors, render
from app.auth import Principal
from app.errors import Unprocessable
from app.measurements.schemas import SeriesPoint
from app.measurements.service import load_points
from app.models import Animal, Arm, ArmRole, Readout, Site, Study
from app.readouts.schemas import (
    READOUT_SITES,
    Correction,
    CorrelationPoint,
    ReadoutComparison,
    ReadoutComparisons,
    ReadoutCorrelation,
    SiteCorrelation,
    SkippedReadout,
)
from app.readouts.service import get_readout, values_query
from app.responses import csv_text
from app.studies.service import get_study

FINAL_FLUX_RULE = (
    "each animal's last image of the site on or before its readout date (the value's "
    "measured_on, else the animal's end date, else its last image), images with an "
    "excluded QC flag left out"
)


def _arms(session: Session, study: Study) -> list[Arm]:
    """The study's arms, controls first, then by name."""
    arms = session.scalars(
        select(Arm).where(Arm.study_id == study.id, Arm.archived_at.is_(None))
    ).all()
    return sorted(arms, key=lambda a: (a.role != ArmRole.control, a.name))


def _values(session: Session, readout: Readout) -> list[tuple[float, date | None, Animal, Arm]]:
    query = values_query().where(Readout.id == readout.id, Animal.archived_at.is_(None))
    return [(v.value, v.measured_on, animal, arm) for v, _, animal, arm in session.execute(query)]


def _compare(
    session: Session,
    study: Study,
    arms: Sequence[Arm],
    readout: Readout,
    *,
    threshold: float,
    correction: Correction,
) -> ReadoutComparison:
    """One readout's comparison; a cohorts error (too few animals) propagates."""
    by_arm: dict[str, list[float]] = {a.name: [] for a in arms}
    for value, _, _, arm in _values(session, readout):
        by_arm.setdefault(arm.name, []).append(value)
    names = {a.id: a.name for a in arms}
    pairs = [
        (names[a.control_arm_id], a.name)
        for a in arms
        if a.control_arm_id is not None and a.control_arm_id in names
    ]
    result = cohorts.compare_readout(
        by_arm,
        pairs=pairs,
        kind=readout.kind.value,
        threshold=threshold,
        correction=correction,
        readout=readout.name,
        unit=readout.unit,
    )
    return ReadoutComparison.model_validate(
        result.to_dict()
        | {
            "study_id": study.id,
            "readout_id": readout.id,
            "kind": readout.kind,
            "site": readout.site,
        }
    )


def compare(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    *,
    threshold: float = 0.0,
    correction: Correction = "holm",
) -> ReadoutComparison:
    """Each treatment arm against its control on one readout (Welch, Mann-Whitney, Fisher)."""
    readout = get_readout(session, principal, study_id, readout_id)
    study = session.get_one(Study, readout.study_id)
    arms = _arms(session, study)
    return run_cohorts(
        lambda: _compare(session, study, arms, readout, threshold=threshold, correction=correction)
    )


def compare_all(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    threshold: float = 0.0,
    correction: Correction = "holm",
) -> ReadoutComparisons:
    """Every readout of the study compared between arms; those without 2 animals per arm
    in any treated-control pair are listed as skipped with the reason."""
    study = get_study(session, principal, study_id)
    arms = _arms(session, study)
    readouts = session.scalars(
        select(Readout)
        .where(Readout.study_id == study.id, Readout.archived_at.is_(None))
        .order_by(Readout.name, Readout.site)
    )
    done, skipped = [], []
    for readout in readouts:
        try:
            done.append(
                _compare(session, study, arms, readout, threshold=threshold, correction=correction)
            )
        except cohorts.CohortsError as exc:
            skipped.append(
                SkippedReadout(readout_id=readout.id, readout=readout.name, reason=str(exc))
            )
    return ReadoutComparisons(study_id=study.id, readouts=done, skipped=skipped)


COMPARISON_CSV_HEADER = (
    "readout",
    "site",
    "unit",
    "control",
    "treated",
    "n_control",
    "n_treated",
    "mean_difference",
    "mean_difference_ci_low",
    "mean_difference_ci_high",
    "welch_t",
    "welch_df",
    "welch_p",
    "welch_p_adjusted",
    "mann_whitney_u",
    "mann_whitney_p",
    "mann_whitney_p_adjusted",
    "mann_whitney_method",
    "threshold",
    "positive_control",
    "positive_treated",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "fisher_p",
    "fisher_p_adjusted",
    "correction",
)


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


def comparison_csv(results: Sequence[ReadoutComparison]) -> str:
    """One row per readout and treated arm against its control."""
    rows = []
    for result, c in ((r, c) for r in results for c in r.comparisons):
        rows.append(
            [
                result.readout,
                result.site,
                result.unit,
                c.control,
                c.treated,
                c.n_control,
                c.n_treated,
                _get(c.mean_difference, "estimate"),
                _get(c.mean_difference, "ci_low"),
                _get(c.mean_difference, "ci_high"),
                _get(c.welch, "statistic"),
                _get(c.welch, "df"),
                _get(c.welch, "p_value"),
                _get(c.welch, "p_adjusted"),
                _get(c.mann_whitney, "statistic"),
                _get(c.mann_whitney, "p_value"),
                _get(c.mann_whitney, "p_adjusted"),
                _get(c.mann_whitney, "method"),
                result.threshold,
                c.positive_control,
                c.positive_treated,
                c.odds_ratio.estimate,
                c.odds_ratio.ci_low,
                c.odds_ratio.ci_high,
                c.fisher.p_value,
                c.fisher.p_adjusted,
                result.correction,
            ]
        )
    return csv_text(COMPARISON_CSV_HEADER, rows)


# ------------------------------------------------------------------------------ correlation


def _final_flux(
    points: Sequence[SeriesPoint], cutoff_day: int | None, excluded: frozenset[str]
) -> SeriesPoint | None:
    usable = [
        p
        for p in points
        if p.value is not None
        and math.isfinite(p.value)
        and not excluded.intersection(p.flags)
        and (cutoff_day is None or p.day <= cutoff_day)
    ]
    return max(usable, key=lambda p: p.day, default=None)


def _site_correlation(
    study: Study,
    site: Site,
    points: Sequence[SeriesPoint],
    values: Sequence[tuple[float, date | None, Animal, Arm]],
) -> SiteCorrelation:
    by_animal: dict[uuid.UUID, list[SeriesPoint]] = defaultdict(list)
    for p in points:
        by_animal[p.animal_id].append(p)
    excluded = cohorts.DEFAULT_EXCLUDE_FLAGS
    pairs: list[CorrelationPoint] = []
    without: list[str] = []
    for value, measured_on, animal, arm in values:
        cutoff = measured_on or animal.end_date
        final = _final_flux(
            by_animal.get(animal.id, []),
            None if cutoff is None else (cutoff - study.day0).days,
            excluded,
        )
        if final is None or final.value is None:
            without.append(animal.identifier)
            continue
        pairs.append(
            CorrelationPoint(
                animal=animal.identifier,
                arm=arm.name,
                value=value,
                total_flux_ps=final.value,
                day=final.day,
                measurement_ids=final.measurement_ids,
            )
        )
    result = run_cohorts(
        lambda: cohorts.spearman([p.value for p in pairs], [p.total_flux_ps for p in pairs])
    )
    return SiteCorrelation(site=site.value, **result.to_dict(), without_flux=without, points=pairs)


def correlate(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    *,
    site: Site | None = None,
    failed_injection_factor: float,
) -> ReadoutCorrelation:
    """Spearman correlation of a readout with final BLI total flux: at ``site``, else at the
    readout's own site, else at every site the study has images of."""
    readout = get_readout(session, principal, study_id, readout_id)
    study = session.get_one(Study, readout.study_id)
    if site is not None and site not in READOUT_SITES:
        raise Unprocessable(f"site {site.value} has no BLI flux to correlate with.")
    values = _values(session, readout)
    sites = [site] if site else [Site(readout.site)] if readout.site else list(READOUT_SITES)
    rows = []
    for s in sites:
        points = load_points(
            session,
            study,
            site=s,
            metric="total_flux_ps",
            failed_injection_factor=failed_injection_factor,
        )
        if points or len(sites) == 1:
            rows.append(_site_correlation(study, s, points, values))
    return ReadoutCorrelation(
        study_id=study.id,
        readout_id=readout.id,
        readout=readout.name,
        unit=readout.unit,
        final_flux_rule=FINAL_FLUX_RULE,
        image_combination=study.image_combination.value,
        excluded_flags=sorted(cohorts.DEFAULT_EXCLUDE_FLAGS),
        sites=rows,
    )


CORRELATION_CSV_HEADER = (
    "readout",
    "unit",
    "site",
    "n",
    "rho",
    "p_value",
    "animals_without_flux",
    "reason",
    "method",
)


def correlation_csv(result: ReadoutCorrelation) -> str:
    """One row per site: n, Spearman rho and p."""
    return csv_text(
        CORRELATION_CSV_HEADER,
        (
            [
                result.readout,
                result.unit,
                s.site,
                s.n,
                s.rho,
                s.p_value,
                s.without_flux,
                s.reason,
                s.method,
            ]
            for s in result.sites
        ),
    )


def correlation_figure(result: ReadoutCorrelation, *, arms: Sequence[str]) -> Figure:
    """Readout against final total flux (log10 axis), one panel per site, arms in colour,
    Spearman rho, p and n in each panel's title."""
    sites = result.sites or []
    cols = min(3, max(len(sites), 1))
    rows = max(1, math.ceil(len(sites) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows + 0.6), layout="constrained")
    colors = arm_colors(list(arms))
    unit = f" ({result.unit})" if result.unit else ""
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    not_drawn = 0
    for ax, site in zip(axes, sites, strict=False):
        for arm in dict.fromkeys([*arms, *(p.arm for p in site.points)]):
            drawn = [p for p in site.points if p.arm == arm and p.total_flux_ps > 0]
            not_drawn += sum(1 for p in site.points if p.arm == arm and p.total_flux_ps <= 0)
            if drawn:
                ax.scatter(
                    [p.total_flux_ps for p in drawn],
                    [p.value for p in drawn],
                    color=colors.get(arm, "#0072B2"),
                    label=arm,
                    s=28,
                    zorder=3,
                )
        if any(p.total_flux_ps > 0 for p in site.points):
            ax.set_xscale("log")
        stats = (
            f"rho = {site.rho:.2f}, p = {site.p_value:.3g}, n = {site.n}"
            if site.rho is not None and site.p_value is not None
            else f"n = {site.n}: {site.reason}"
        )
        ax.set_title(f"{site.site}\n{stats}", fontsize=9)
        ax.set_xlabel("Final total flux (p/s, log scale)", fontsize=8)
        ax.set_ylabel(f"{result.readout}{unit}", fontsize=8)
        ax.grid(True, which="major", color="0.9", zorder=0)
        if site.points:
            ax.legend(fontsize=7, frameon=False)
    for ax in axes[len(sites) :]:
        ax.set_axis_off()
    note = f"Spearman rank correlation; final flux: {result.final_flux_rule}."
    if not_drawn:
        note += f" {not_drawn} point(s) with flux ≤ 0 not drawn (log axis)."
    fig.suptitle(f"{result.readout} vs final BLI flux", fontsize=11)
    _footnotes(fig, [note])
    return fig


def correlation_plot(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    *,
    site: Site | None,
    fmt: Format,
    failed_injection_factor: float,
) -> bytes:
    """The correlation scatter plot as PNG or SVG bytes."""
    result = correlate(
        session,
        principal,
        study_id,
        readout_id,
        site=site,
        failed_injection_factor=failed_injection_factor,
    )
    study = session.get_one(Study, result.study_id)
    arms = [a.name for a in _arms(session, study)]
    return render(correlation_figure(result, arms=arms), fmt)
