"""Figures of a study or a stored comparison, from the database to PNG/SVG bytes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.analysis import plots
from app.analysis.cohort_data import build_cohort
from app.analysis.service import get_comparison_row, stored_points
from app.auth import Principal
from app.errors import Unprocessable
from app.measurements.schemas import Metric, SeriesPoint
from app.measurements.service import UNITS, load_points
from app.models import Animal, Arm, ArmRole, Site, Study
from app.studies.service import get_study

StudyPlot = Literal["growth", "spaghetti", "waterfall"]
ComparisonPlot = Literal["growth", "spaghetti", "waterfall", "survival", "incidence"]


def _arms(
    session: Session, study: Study, only: Sequence[uuid.UUID] | None = None
) -> tuple[list[str], set[str]]:
    """Arm names in display order (controls first) and the names of the control arms."""
    query = select(Arm).where(Arm.study_id == study.id).order_by(Arm.role, Arm.name)
    if only is not None:
        query = query.where(Arm.id.in_(only))
    arms = list(session.scalars(query))
    return [a.name for a in arms], {a.name for a in arms if a.role == ArmRole.control}


def animal_points(
    session: Session, study: Study, points: Sequence[SeriesPoint]
) -> list[plots.AnimalPoint]:
    """One value per animal and day (duplicate images averaged, as in the statistics);
    each animal's last point carries its end reason if its series ended there."""
    values: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for p in points:
        if p.value is not None:
            values[(p.animal, p.arm, p.day)].append(p.value)
    ends = {
        a.identifier: a.end_reason.value
        for a in session.scalars(
            select(Animal).where(Animal.study_id == study.id, Animal.end_date.is_not(None))
        )
    }
    last_day: dict[str, int] = {}
    for animal, _, day in values:
        last_day[animal] = max(day, last_day.get(animal, day))
    return [
        plots.AnimalPoint(
            animal=animal,
            arm=arm,
            day=float(day),
            value=sum(v) / len(v),
            ended_reason=ends.get(animal) if day == last_day[animal] else None,
        )
        for (animal, arm, day), v in sorted(values.items(), key=lambda kv: (kv[0][0], kv[0][2]))
    ]


def fold_changes(animals: Sequence[plots.AnimalPoint], day: int) -> list[tuple[str, str, float]]:
    """(animal, arm, value on ``day`` / value on the animal's first image) for animals imaged
    on that day with a positive baseline."""
    by_animal: dict[str, list[plots.AnimalPoint]] = defaultdict(list)
    for a in animals:
        by_animal[a.animal].append(a)
    out = []
    for series in by_animal.values():
        series.sort(key=lambda a: a.day)
        on_day = [a for a in series if a.day == day]
        if on_day and series[0].value > 0 and series[0].day < day:
            out.append((series[0].animal, series[0].arm, on_day[0].value / series[0].value))
    if not out:
        raise Unprocessable(
            f"No animal has a baseline image before day {day} and an image on day {day}."
        )
    return out


def _draw(
    session: Session,
    study: Study,
    kind: str,
    points: list[SeriesPoint],
    *,
    arms: list[str],
    controls: set[str],
    site: str,
    metric: str,
    day: int | None,
    title: str,
) -> plots.Figure:
    unit = UNITS[metric]
    animals = animal_points(session, study, points)
    if kind == "growth":
        cohort = build_cohort(session, study, points, site=site)
        summary = _stats(lambda: cohorts.summarize(cohort, site=site, arms=arms))
        return plots.growth_curves(
            summary, animals, title=title, unit=unit, arms=arms, controls=controls
        )
    if kind == "spaghetti":
        return plots.spaghetti(animals, title=title, unit=unit, arms=arms, controls=controls)
    if kind == "waterfall":
        if day is None:
            raise Unprocessable("A waterfall plot needs ?day=<day since injection>.")
        return plots.waterfall(
            fold_changes(animals, day), day=day, title=title, arms=arms, controls=controls
        )
    raise Unprocessable(f"Unknown plot '{kind}'.")


def _stats(compute):  # type: ignore[no-untyped-def]
    try:
        return compute()
    except cohorts.CohortsError as exc:
        raise Unprocessable(str(exc)) from exc


def study_plot(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    kind: StudyPlot,
    *,
    site: Site,
    metric: Metric,
    fmt: plots.Format,
    day: int | None = None,
) -> bytes:
    """A plot of every arm of a study at one site, from its current measurements."""
    study = get_study(session, principal, study_id)
    points = load_points(session, study, site=site, metric=metric)
    if not points:
        raise Unprocessable(f"No {metric} measurements for site '{site.value}' in this study.")
    arms, controls = _arms(session, study)
    title = f"{study.name} — {site.value.replace('_', ' ')}"
    figure = _draw(
        session,
        study,
        kind,
        points,
        arms=arms,
        controls=controls,
        site=site.value,
        metric=metric,
        day=day,
        title=title,
    )
    return plots.render(figure, fmt)


def comparison_plot(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    kind: ComparisonPlot,
    *,
    fmt: plots.Format,
    day: int | None = None,
) -> bytes:
    """A plot of a stored comparison, redrawn from exactly the measurements it used."""
    row, study = get_comparison_row(session, principal, study_id, comparison_id)
    points = stored_points(row)
    arms, controls = _arms(session, study, only=[row.control_arm_id, row.treatment_arm_id])
    control = next(a for a in arms if a in controls)
    treated = next(a for a in arms if a != control)
    title = f"{treated} vs {control} — {row.site.replace('_', ' ')}"
    if kind in ("survival", "incidence"):
        threshold = row.parameters.get("threshold")
        if not threshold:
            raise Unprocessable(
                "This comparison has no threshold, so no incidence or survival to plot."
            )
        rule = {
            # comparisons stored before `value` was introduced name it flux_ps
            "threshold": threshold.get("value", threshold.get("flux_ps")),
            "background": threshold["background"],
            "background_multiple": threshold["background_multiple"],
            "consecutive": threshold["consecutive"],
        }
        cohort = build_cohort(session, study, points, site=row.site)  # already the window
        common = {"control": control, "treated": treated, "site": row.site} | rule
        if kind == "survival":
            death = bool(row.parameters.get("death_is_event", False))
            result = _stats(
                lambda: cohorts.metastasis_free_survival(cohort, **common, death_is_event=death)
            )
            figure = plots.kaplan_meier(result, title=title, arms=arms, controls=controls)
        else:
            result = _stats(
                lambda: cohorts.incidence_by_day(
                    cohort, **common, correction=row.parameters["correction"]
                )
            )
            figure = plots.incidence_bars(result, title=title, arms=arms, controls=controls)
        return plots.render(figure, fmt)
    figure = _draw(
        session,
        study,
        kind,
        points,
        arms=arms,
        controls=controls,
        site=row.site,
        metric=row.metric,
        day=day,
        title=title,
    )
    return plots.render(figure, fmt)
