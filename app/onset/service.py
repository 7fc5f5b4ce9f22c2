"""Interval-censored onset and several-sites analyses of a study, computed by ``cohorts``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.analysis import plots
from app.analysis.cohort_data import animal_ends
from app.analysis.errors import run_cohorts
from app.analysis.service import resolve_arm_pair
from app.auth import Principal
from app.errors import Unprocessable
from app.measurements.schemas import Metric
from app.measurements.service import load_points
from app.models import Arm, ArmRole, Site, Study
from app.onset import figures
from app.onset.schemas import (
    IntervalSurvival,
    IntervalSurvivalRead,
    SiteInvolvementRead,
    SkeletalBurdenRead,
)
from app.responses import csv_text
from app.studies.service import get_study

METRIC: Metric = "total_flux_ps"
BONE_SITES: tuple[Site, ...] = tuple(Site(s) for s in cohorts.BONE_SITES)
# Sites that hold no tumour signal of their own: never an onset site, never summed
_NOT_ANALYSABLE = {Site.background, Site.unassigned}


def _cohort(
    session: Session, study: Study, sites: Sequence[Site], *, failed_injection_factor: float
) -> cohorts.Cohort:
    """Every animal's total flux at ``sites`` (one value per animal, site and day, flagged by
    the lab's ``failed_injection_factor``) with the end records, as a ``cohorts.Cohort``."""
    observations = []
    animal_ids: set[uuid.UUID] = set()
    for site in sites:
        points = load_points(
            session,
            study,
            site=site,
            metric=METRIC,
            failed_injection_factor=failed_injection_factor,
        )
        for p in points:
            if p.value is None:
                continue
            animal_ids.add(p.animal_id)
            observations.append(
                cohorts.Observation(
                    animal=p.animal,
                    arm=p.arm,
                    day=float(p.day),
                    value=p.value,
                    site=site.value,
                    flags=frozenset(p.flags),
                )
            )
    if not observations:
        names = ", ".join(s.value for s in sites)
        raise Unprocessable(f"There are no total flux measurements at {names} to analyse.")
    ends = animal_ends(session, study, animal_ids)
    return run_cohorts(lambda: cohorts.Cohort.from_records(observations, ends=ends))


def _check_sites(sites: Sequence[Site]) -> tuple[Site, ...]:
    chosen = tuple(dict.fromkeys(sites)) or BONE_SITES
    bad = [s.value for s in chosen if s in _NOT_ANALYSABLE or s == Site.whole_body]
    if bad:
        raise Unprocessable(
            f"{', '.join(bad)} is not a bone site; sum and compare bone sites such as "
            f"{', '.join(s.value for s in BONE_SITES)}."
        )
    return chosen


def study_arms(session: Session, study: Study) -> tuple[list[str], set[str]]:
    """Arm names in display order (controls first) and the control arms' names."""
    arms = list(
        session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.role, Arm.name))
    )
    return [a.name for a in arms], {a.name for a in arms if a.role == ArmRole.control}


# ------------------------------------------------------------------ interval-censored onset


def _interval_result(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    treatment_arm_id: uuid.UUID,
    control_arm_id: uuid.UUID | None,
    site: Site,
    threshold: float,
    consecutive: int,
    death_is_event: bool,
    failed_injection_factor: float,
) -> tuple[Study, cohorts.IntervalSurvivalResult]:
    study = get_study(session, principal, study_id)
    if site in _NOT_ANALYSABLE:
        raise Unprocessable(
            f"Site '{site.value}' holds no tumour signal; choose an anatomical site."
        )
    treatment, control = resolve_arm_pair(
        session, principal, study_id, treatment_arm_id, control_arm_id
    )
    cohort = _cohort(session, study, [site], failed_injection_factor=failed_injection_factor)
    result = run_cohorts(
        lambda: cohorts.interval_censored_survival(
            cohort,
            control=control.name,
            treated=treatment.name,
            site=site.value,
            threshold=threshold,
            consecutive=consecutive,
            death_is_event=death_is_event,
        )
    )
    return study, result


def interval_survival(
    session: Session, principal: Principal, study_id: uuid.UUID, **params: Any
) -> IntervalSurvivalRead:
    """Turnbull curves, Weibull and log-normal AFT tests and the conventional Kaplan-Meier."""
    study, result = _interval_result(session, principal, study_id, **params)
    return IntervalSurvivalRead(
        study_id=study.id,
        metric=METRIC,
        result=IntervalSurvival.model_validate(result.to_dict()),
    )


IntervalTable = Literal["animals", "turnbull"]


def interval_csv(read: IntervalSurvivalRead, table: IntervalTable) -> str:
    """The onset intervals per animal, or the Turnbull intervals per arm, as CSV."""
    res = read.result
    if table == "animals":
        return csv_text(
            [
                "animal",
                "arm",
                "left [day]",
                "right [day]",
                "kind",
                "event",
                "reason",
                "threshold [p/s]",
                "n_images",
            ],
            [
                [
                    a.animal,
                    a.arm,
                    a.left,
                    a.right,
                    a.kind,
                    a.event,
                    a.reason,
                    a.threshold,
                    a.n_images,
                ]
                for a in res.animals
            ],
        )
    return csv_text(
        ["arm", "left [day]", "right [day]", "closed_left", "mass", "survival"],
        [
            [c.arm, iv.left, iv.right, iv.closed_left, iv.mass, iv.survival]
            for c in res.turnbull
            for iv in c.intervals
        ],
    )


def interval_plot(
    session: Session, principal: Principal, study_id: uuid.UUID, *, fmt: plots.Format, **params: Any
) -> bytes:
    """Turnbull curves of both arms with the conventional Kaplan-Meier dashed."""
    study, result = _interval_result(session, principal, study_id, **params)
    arms, controls = study_arms(session, study)
    figure = figures.turnbull_curves(
        result,
        colors=plots.arm_colors(arms, controls=controls),
        title=f"{study.name} — {result.site.replace('_', ' ')}: {result.treated} vs "
        f"{result.control}",
    )
    return plots.render(figure, fmt)


# ----------------------------------------------------------------------------- sites


def _burden(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    sites: Sequence[Site],
    *,
    failed_injection_factor: float,
) -> tuple[Study, cohorts.SkeletalBurden]:
    study = get_study(session, principal, study_id)
    chosen = _check_sites(sites)
    cohort = _cohort(session, study, chosen, failed_injection_factor=failed_injection_factor)
    present = [s.value for s in chosen if s.value in cohort.sites]
    return study, run_cohorts(lambda: cohorts.skeletal_burden(cohort, sites=present))


def skeletal_burden(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    sites: Sequence[Site],
    treatment_arm_id: uuid.UUID | None,
    control_arm_id: uuid.UUID | None,
    failed_injection_factor: float,
) -> SkeletalBurdenRead:
    """Total skeletal burden per animal and day; compared by day with a treatment arm."""
    study, burden = _burden(
        session, principal, study_id, sites, failed_injection_factor=failed_injection_factor
    )
    comparison = None
    if treatment_arm_id is not None:
        treatment, control = resolve_arm_pair(
            session, principal, study_id, treatment_arm_id, control_arm_id
        )
        comparison = run_cohorts(
            lambda: cohorts.compare_by_day(
                burden.cohort,
                control=control.name,
                treated=treatment.name,
                site=cohorts.SKELETAL_TOTAL,
            )
        ).to_dict()
    return SkeletalBurdenRead.model_validate(
        burden.to_dict()
        | {"study_id": study.id, "site": cohorts.SKELETAL_TOTAL, "comparison": comparison}
    )


def burden_csv(read: SkeletalBurdenRead) -> str:
    """One row per animal and day: the summed total flux and how many sites it sums."""
    return csv_text(
        ["animal", "arm", "day", "total [p/s]", "n_sites", "sites"],
        [[p.animal, p.arm, p.day, p.total, p.n_sites, read.sites] for p in read.points],
    )


def burden_plot(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    sites: Sequence[Site],
    fmt: plots.Format,
    failed_injection_factor: float,
) -> bytes:
    """One line per animal of its total skeletal burden, a panel per arm."""
    study, burden = _burden(
        session, principal, study_id, sites, failed_injection_factor=failed_injection_factor
    )
    arms, controls = study_arms(session, study)
    ends = {e.animal: e for e in burden.cohort.ends}
    last: dict[str, float] = {}
    for p in burden.points:
        last[p.animal] = max(p.day, last.get(p.animal, p.day))
    points = [
        plots.AnimalPoint(
            p.animal,
            p.arm,
            p.day,
            p.total,
            ends[p.animal].reason if p.animal in ends and p.day == last[p.animal] else None,
        )
        for p in burden.points
    ]
    figure = plots.spaghetti(
        points,
        title=f"{study.name} — total skeletal burden ({' + '.join(burden.sites)})",
        unit="p/s",
        arms=arms,
        controls=controls,
        colors=plots.arm_colors(arms, controls=controls),
    )
    return plots.render(figure, fmt)


def _involvement(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    sites: Sequence[Site],
    threshold: float,
    consecutive: int,
    failed_injection_factor: float,
) -> tuple[Study, cohorts.SiteInvolvement]:
    study = get_study(session, principal, study_id)
    chosen = _check_sites(sites)
    cohort = _cohort(session, study, chosen, failed_injection_factor=failed_injection_factor)
    present = [s.value for s in chosen if s.value in cohort.sites]
    return study, run_cohorts(
        lambda: cohorts.site_involvement(
            cohort, threshold=threshold, sites=present, consecutive=consecutive
        )
    )


def site_involvement(
    session: Session, principal: Principal, study_id: uuid.UUID, **params: Any
) -> SiteInvolvementRead:
    """Per-arm incidence of each site by day and the number of sites involved per mouse."""
    study, inv = _involvement(session, principal, study_id, **params)
    data = inv.to_dict()
    data["onsets"] = [{"site": s, "onset": o} for s, o in data["onsets"]]
    return SiteInvolvementRead.model_validate(data | {"study_id": study.id})


InvolvementTable = Literal["incidence", "per_mouse", "per_arm"]


def involvement_csv(read: SiteInvolvementRead, table: InvolvementTable) -> str:
    """One of the involvement tables as CSV."""
    if table == "incidence":
        return csv_text(
            ["site", "arm", "day", "n_imaged", "positive", "fraction"],
            [[r.site, r.arm, r.day, r.n_imaged, r.positive, r.fraction] for r in read.incidence],
        )
    if table == "per_mouse":
        return csv_text(
            ["animal", "arm", "day", "n_involved", "n_sites", "involved"],
            [[r.animal, r.arm, r.day, r.n_involved, r.n_sites, r.involved] for r in read.per_mouse],
        )
    k = len(read.sites)
    return csv_text(
        ["arm", "day", "n", "mean", "median"] + [f"animals_with_{i}_sites" for i in range(k + 1)],
        [[r.arm, r.day, r.n, r.mean, r.median, *r.distribution] for r in read.per_arm],
    )


InvolvementPlot = Literal["incidence", "per_mouse"]


def involvement_plot(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    kind: InvolvementPlot,
    fmt: plots.Format,
    **params: Any,
) -> bytes:
    """Incidence of each site per arm over time, or sites involved per mouse over time."""
    study, inv = _involvement(session, principal, study_id, **params)
    arms, controls = study_arms(session, study)
    colors = plots.arm_colors(arms, controls=controls)
    if kind == "incidence":
        figure = figures.site_incidence(inv, arms=arms, colors=colors, title=study.name)
    else:
        figure = figures.sites_per_mouse(inv, arms=arms, colors=colors, title=study.name)
    return plots.render(figure, fmt)
