"""Figures of a study or a stored comparison, from the database to PNG/SVG bytes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import cohorts
from app.analysis import plots
from app.analysis.cohort_data import build_cohort, end_record
from app.analysis.service import get_comparison_row, stored_points
from app.auth import Principal
from app.errors import Unprocessable
from app.measurements.schemas import Metric, SeriesPoint
from app.measurements.service import UNITS, load_points
from app.models import Animal, Arm, ArmRole, Site, Study
from app.studies.service import get_study

StudyPlot = Literal["growth", "spaghetti", "waterfall"]
ComparisonPlot = Literal["growth", "spaghetti", "waterfall", "survival", "incidence"]


def study_colors(session: Session, study: Study) -> dict[str, str]:
    """Every arm's colour, from all arms of the study (archived too), so that an arm has
    the same colour in each study and comparison figure."""
    arms, controls = _arms(session, study)
    return plots.arm_colors(arms, controls=controls)


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
        a.identifier: end_record(a)[1].value
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


def waterfall_day(animals: Sequence[plots.AnimalPoint]) -> int:
    """The last day on which an animal has an image after its baseline (first) image."""
    first: dict[str, float] = {}
    for a in animals:
        first[a.animal] = min(a.day, first.get(a.animal, a.day))
    days = [a.day for a in animals if a.day > first[a.animal]]
    if not days:
        raise Unprocessable(
            "No animal has an image after its first one: a waterfall needs a baseline and a "
            "later image."
        )
    return int(max(days))


def fold_changes(
    animals: Sequence[plots.AnimalPoint], day: int
) -> tuple[list[tuple[str, str, float]], list[str]]:
    """(animal, arm, value on ``day`` / value on the animal's first image) for animals imaged
    on that day with a positive baseline, and a line saying which animals were left out
    and why."""
    by_animal: dict[str, list[plots.AnimalPoint]] = defaultdict(list)
    for a in animals:
        by_animal[a.animal].append(a)
    out = []
    ended: dict[str, list[str]] = defaultdict(list)
    missing: list[str] = []
    no_baseline: list[str] = []
    for animal, series in sorted(by_animal.items()):
        series.sort(key=lambda a: a.day)
        on_day = [a for a in series if a.day == day]
        if not on_day:
            last = series[-1]
            if last.day < day and last.ended_reason is not None:
                ended[last.ended_reason.replace("_", " ")].append(animal)
            else:
                missing.append(animal)
        elif series[0].day >= day or not series[0].value > 0:
            no_baseline.append(animal)
        else:
            out.append((animal, series[0].arm, on_day[0].value / series[0].value))
    if not out:
        raise Unprocessable(
            f"No animal has a baseline image before day {day} and an image on day {day}."
        )
    reasons = [f"{reason} before day {day} ({len(ids)})" for reason, ids in ended.items()]
    if missing:
        reasons.append(f"no image on day {day} ({len(missing)})")
    if no_baseline:
        reasons.append(f"no positive baseline image before day {day} ({len(no_baseline)})")
    left = len(by_animal) - len(out)
    note = [f"{left} of {len(by_animal)} animals left out: {'; '.join(reasons)}."] if left else []
    return out, note


def _draw(
    session: Session,
    study: Study,
    kind: str,
    points: list[SeriesPoint],
    *,
    arms: list[str],
    controls: set[str],
    colors: dict[str, str],
    site: str,
    metric: str,
    day: int | None,
    title: str,
    floor: float | None = None,
) -> plots.Figure:
    unit = UNITS[metric]
    animals = animal_points(session, study, points)
    if kind == "growth":
        cohort = build_cohort(session, study, points, site=site)
        present = [a for a in arms if a in cohort.arms]  # an arm without data has no row
        summary = _stats(lambda: cohorts.summarize(cohort, site=site, arms=present, floor=floor))
        return plots.growth_curves(
            summary, animals, title=title, unit=unit, arms=arms, controls=controls, colors=colors
        )
    if kind == "spaghetti":
        return plots.spaghetti(
            animals, title=title, unit=unit, arms=arms, controls=controls, colors=colors
        )
    if kind == "waterfall":
        day = waterfall_day(animals) if day is None else day
        rows, left_out = fold_changes(animals, day)
        return plots.waterfall(
            rows,
            day=day,
            title=f"{title} — day {day}",
            arms=arms,
            controls=controls,
            colors=colors,
            left_out=left_out,
        )
    raise Unprocessable(f"Unknown plot '{kind}'.")


def _stats(compute: Callable[[], Any]) -> Any:
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
    failed_injection_factor: float,
) -> bytes:
    """A plot of every arm of a study at one site, from its current measurements."""
    study = get_study(session, principal, study_id)
    points = load_points(
        session, study, site=site, metric=metric, failed_injection_factor=failed_injection_factor
    )
    if not points:
        raise Unprocessable(f"No {metric} measurements for site '{site.value}' in this study.")
    arms, controls = _arms(session, study)
    title = (
        f"{study.name} — {site.value.replace('_', ' ')} "
        f"(images of a day: {study.image_combination.value.replace('_', ' ')})"
    )
    figure = _draw(
        session,
        study,
        kind,
        points,
        arms=arms,
        controls=controls,
        colors=study_colors(session, study),
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
    # Exactly the stored inputs, drawn under their arms' current names (an arm renamed
    # since is the same arm, found by its id).
    names = {
        arm_id: name
        for arm_id, name in session.execute(
            select(Arm.id, Arm.name).where(Arm.id.in_([row.control_arm_id, row.treatment_arm_id]))
        )
    }
    points = [p.model_copy(update={"arm": names.get(p.arm_id, p.arm)}) for p in stored_points(row)]
    arms, controls = _arms(session, study, only=[row.control_arm_id, row.treatment_arm_id])
    colors = study_colors(session, study)
    control = next(a for a in arms if a in controls)
    treated = next(a for a in arms if a != control)
    title = f"{treated} vs {control} — {row.site.replace('_', ' ')}"
    if combination := row.parameters.get("image_combination"):
        title += f" (images of a day: {combination.replace('_', ' ')})"
    title += plots.censoring_title(row.results.get("censoring"))
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
            figure = plots.kaplan_meier(
                result, title=title, arms=arms, controls=controls, colors=colors
            )
        else:
            result = _stats(
                lambda: cohorts.incidence_by_day(
                    cohort, **common, correction=row.parameters["correction"]
                )
            )
            figure = plots.incidence_bars(
                result, title=title, arms=arms, controls=controls, colors=colors
            )
        return plots.render(figure, fmt)
    figure = _draw(
        session,
        study,
        kind,
        points,
        arms=arms,
        controls=controls,
        colors=colors,
        site=row.site,
        metric=row.metric,
        day=day,
        title=title,
        floor=row.parameters.get("floor"),  # as the comparison itself was computed
    )
    return plots.render(figure, fmt)
