"""Arm summaries and treatment-vs-control comparisons, computed by ``cohorts`` and stored.

Why one long module: a comparison is one aggregate — resolving the arms, checking there are
enough animals, running the ``cohorts`` analyses, storing the row and reading it back (with
its links and its check against current data) — and every export (table, workbook, Prism)
reads the same stored row through the same mapping; splitting would separate the writer
from the only reader that knows its layout.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import cohorts
from app import __version__, audit
from app.analysis.cohort_data import build_cohort, detection_limits, fingerprint, in_window
from app.analysis.errors import run_cohorts
from app.analysis.exports import comparison_csv, comparison_xlsx, prism_wide_csv
from app.analysis.results import (
    Adjustment,
    CensoredCount,
    CensoringSummary,
    ComparisonResults,
    Exclusion,
    SummaryTable,
)
from app.analysis.schemas import (
    AnalysisOutcome,
    ComparisonCreate,
    ComparisonRead,
    Scale,
    SummaryRead,
)
from app.arms.service import get_arm
from app.auth import Principal
from app.errors import NotFound, Unprocessable
from app.measurements.schemas import Metric, Series, SeriesPoint
from app.measurements.service import UNITS, load_points
from app.models import Arm, ArmRole, Comparison, Site, Study
from app.pagination import PageParams, paginate
from app.studies.service import get_study

_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels")


def software_versions() -> dict[str, str]:
    return {"osteolux": __version__} | {name: version(name) for name in _PACKAGES}


def summary(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    site: Site,
    metric: Metric,
    scale: Scale,
    floor: float | None,
    baseline: str | None,
    failed_injection_factor: float,
) -> SummaryRead:
    """Per-arm per-day n, mean ± SD/SEM, geometric mean with 95 % CI, median and IQR."""
    study = get_study(session, principal, study_id)
    points = load_points(
        session, study, site=site, metric=metric, failed_injection_factor=failed_injection_factor
    )
    cohort = build_cohort(session, study, points, site=site.value)
    baseline_arg: Any = (
        None if baseline is None else ("first" if baseline == "first" else float(baseline))
    )
    table = run_cohorts(
        lambda: cohorts.summarize(
            cohort, site=site.value, scale=scale, floor=floor, baseline=baseline_arg
        )
    )
    unit = "fold change" if baseline is not None else UNITS[metric]
    return SummaryRead(
        study_id=study.id,
        site=site.value,
        metric=metric,
        metric_unit=UNITS[metric],
        scale=scale,
        statistics_unit=f"log10({unit})" if scale == "log10" else unit,
        geometric_mean_unit=unit,
        image_combination=study.image_combination.value,
        summary=SummaryTable.model_validate(table.to_dict()),
    )


def resolve_arms(
    session: Session, principal: Principal, study: Study, data: ComparisonCreate
) -> tuple[Arm, Arm]:
    """The comparison's treatment and control arm (:func:`resolve_arm_pair`)."""
    return resolve_arm_pair(
        session,
        principal,
        study.id,
        data.treatment_arm_id,
        data.control_arm_id,
        foreign_control_note="; arms of different studies cannot be compared",
    )


def resolve_arm_pair(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    treatment_arm_id: uuid.UUID,
    control_arm_id: uuid.UUID | None,
    *,
    foreign_control_note: str = "",
) -> tuple[Arm, Arm]:
    """The treatment arm and its control (``control_arm_id`` or the arm's own), both of the
    study; 422 when there is none, it is another study's, the same arm or not a control arm
    (``foreign_control_note`` is added to the message of the other-study case)."""
    treatment = get_arm(session, principal, study_id, treatment_arm_id)
    control_id = control_arm_id or treatment.control_arm_id
    if control_id is None:
        raise Unprocessable(f"Arm '{treatment.name}' names no control arm; give control_arm_id.")
    try:
        control = get_arm(session, principal, study_id, control_id)
    except NotFound:
        raise Unprocessable(
            f"control_arm_id {control_id} is not an arm of this study{foreign_control_note}."
        ) from None
    if control.id == treatment.id:
        raise Unprocessable("The treatment and control arm are the same arm.")
    if control.role != ArmRole.control:
        raise Unprocessable(
            f"Arm '{control.name}' is not a control arm (its role is {control.role})."
        )
    return treatment, control


def animals_per_arm(points: list[SeriesPoint]) -> dict[str, int]:
    """Animals with at least one value, per arm name."""
    animals: dict[str, set[uuid.UUID]] = defaultdict(set)
    for p in points:
        if p.value is not None:
            animals[p.arm].add(p.animal_id)
    return {arm: len(ids) for arm, ids in animals.items()}


def _check_enough_animals(
    points: list[SeriesPoint], arms: tuple[Arm, Arm], site: str
) -> dict[str, int]:
    counts = {arm.name: animals_per_arm(points).get(arm.name, 0) for arm in arms}
    short = {name: n for name, n in counts.items() if n < 2}
    if short:
        detail = "; ".join(f"'{name}' has {n}" for name, n in short.items())
        raise Unprocessable(
            f"Each arm needs at least 2 animals with {site} measurements in the window: {detail}."
        )
    return counts


Limits = dict[tuple[str, float], float]


def _censoring(
    cohort: cohorts.Cohort, data: ComparisonCreate, control: str, treated: str, limits: Limits
) -> tuple[cohorts.Cohort, CensoringSummary]:
    """The cohort the analyses use and how values below their detection limit are handled:
    kept for the Tobit model (``censored="tobit"``) or substituted / dropped for every
    analysis, as the request says."""
    site = data.site.value
    source = (
        "recorded with each measurement (background ROI: mean + 3 SD of its radiance x ROI "
        "area x 4 pi)"
        if data.metric == "total_flux_ps"
        else "none recorded for this metric"
    )
    if data.detection_limit is not None:
        source += f"; {data.detection_limit:g} (the request's detection_limit) where none is"
    points, _, _ = cohorts.censored_points(
        cohort, arms=(control, treated), site=site, detection_limits=limits
    )
    counts = [
        CensoredCount(
            arm=a,
            n_points=int((points["arm"] == a).sum()),
            n_censored=int(points.loc[points["arm"] == a, "censored"].sum()),
        )
        for a in (control, treated)
    ]
    method: Literal["tobit", "half_min", "half_limit", "limit", "drop", "none"]
    substituted: list[Adjustment] = []
    dropped: list[Exclusion] = []
    if not points["censored"].any():
        method, text = "none", "no value is below its detection limit: nothing to censor"
    elif data.censored == "tobit":
        method = "tobit"
        text = (
            cohorts.CENSORED_METHODS["tobit"]
            + "; the other analyses (no censored version) use the values as measured"
        )
    else:
        sub = cohorts.substitute_censored(
            cohort, detection_limits=limits, method=data.censored, site=site
        )
        cohort, method = sub.cohort, data.censored
        text = sub.description + ", for every analysis"
        substituted = [Adjustment.model_validate(a.to_dict()) for a in sub.adjustments]
        substituted = [a for a in substituted if a.kind == "substituted"]
        dropped = [
            Exclusion.model_validate(e.to_dict())
            for e in sub.exclusions
            if e.reason.startswith("below detection")
        ]
    return cohort, CensoringSummary(
        method=method,
        description=text,
        n_censored=counts,
        limits=source,
        substituted=substituted,
        dropped=dropped,
    )


def _mixed_model(
    cohort: cohorts.Cohort,
    data: ComparisonCreate,
    control: str,
    treated: str,
    limits: Limits,
    method: str,
) -> Any:
    model: dict[str, Any] = {
        "control": control,
        "treated": [treated],
        "site": data.site.value,
        "scale": data.scale,
    }
    if method == "tobit":
        return cohorts.fit_censored_growth_model(cohort, **model, detection_limits=limits)
    return cohorts.fit_growth_model(cohort, **model, floor=data.floor, df_method=data.df_method)


def _analyses(
    cohort: cohorts.Cohort,
    data: ComparisonCreate,
    control: str,
    treated: str,
    mixed_model: Callable[[], Any],
) -> dict[str, Callable[[], Any]]:
    # keyword arguments shared by the cohorts calls below
    common: dict[str, Any] = {"control": control, "treated": treated, "site": data.site.value}
    scaled: dict[str, Any] = common | {"scale": data.scale, "floor": data.floor}
    window = (data.window.day_from, data.window.day_to) if data.window else None
    threshold: dict[str, Any] = {}
    if data.threshold is not None:
        threshold = {
            "threshold": data.threshold.value,
            "background": data.threshold.background,
            "background_multiple": data.threshold.background_multiple,
            "consecutive": data.threshold.consecutive,
        }
    tgi_end = data.tgi_end_day
    return {
        "per_day": lambda: cohorts.compare_by_day(cohort, **scaled, correction=data.correction),
        "auc": lambda: cohorts.compare_auc(cohort, **scaled, window=window),
        "growth_rate": lambda: cohorts.compare_growth_rates(cohort, **scaled, window=window),
        "mixed_model": mixed_model,
        "tc": lambda: cohorts.tc_ratio(cohort, **common, floor=data.floor),
        "tgi": lambda: cohorts.tumor_growth_inhibition(
            cohort,
            **common,
            floor=data.floor,
            end_day=tgi_end if tgi_end is not None else _last_common_day(cohort, control, treated),
        ),
        "incidence": lambda: cohorts.incidence_by_day(
            cohort, **common, **threshold, correction=data.correction
        ),
        "survival": lambda: cohorts.metastasis_free_survival(
            cohort, **common, **threshold, death_is_event=data.death_is_event
        ),
    }


def _last_common_day(cohort: cohorts.Cohort, control: str, treated: str) -> float:
    days = {arm: {o.day for o in cohort.observations if o.arm == arm} for arm in (control, treated)}
    common = days[control] & days[treated]
    if not common:
        raise cohorts.InsufficientDataError(
            f"'{control}' and '{treated}' were never imaged on the same day."
        )
    return max(common)


def _outcomes(
    cohort: cohorts.Cohort,
    data: ComparisonCreate,
    control: str,
    treated: str,
    limits: Limits | None = None,
) -> dict[str, AnalysisOutcome | CensoringSummary]:
    limits = limits or {}
    analysed, censoring = _censoring(cohort, data, control, treated, limits)
    runners = _analyses(
        analysed,
        data,
        control,
        treated,
        lambda: _mixed_model(analysed, data, control, treated, limits, censoring.method),
    )
    outcomes: dict[str, AnalysisOutcome | CensoringSummary] = {"censoring": censoring}
    for name in dict.fromkeys(data.analyses):
        if name in ("incidence", "survival") and data.threshold is None:
            outcomes[name] = AnalysisOutcome(
                status="not_computed",
                reason="no threshold given: send threshold.value, "
                "or threshold.background with threshold.background_multiple",
            )
            continue
        try:
            outcomes[name] = AnalysisOutcome(status="ok", result=runners[name]().to_dict())
        except cohorts.InsufficientDataError as exc:
            outcomes[name] = AnalysisOutcome(status="not_computed", reason=str(exc))
    return outcomes


def create_comparison(
    session: Session,
    reader: sessionmaker[Session],
    principal: Principal,
    study_id: uuid.UUID,
    data: ComparisonCreate,
    *,
    failed_injection_factor: float,
) -> ComparisonRead:
    """Compare a treatment arm with its control at one site and store the result with its
    inputs (their flags: ``suspected_failed_injection`` by the lab's
    ``failed_injection_factor``, recorded with the parameters). The inputs are read in a
    read-only transaction and the statistics computed with no transaction open; only storing
    the result takes the write lock (on SQLite, a fit of a second or more would otherwise
    hold every other write back)."""
    principal.require_write()
    with reader() as read:
        study = get_study(read, principal, study_id)
        treatment, control = resolve_arms(read, principal, study, data)
        window = (data.window.day_from, data.window.day_to) if data.window else None
        all_points = load_points(
            read,
            study,
            site=data.site,
            metric=data.metric,
            arm_ids=[treatment.id, control.id],
            failed_injection_factor=failed_injection_factor,
        )
        if not all_points:
            raise Unprocessable(
                f"No {data.metric} measurements for site '{data.site.value}' in arms "
                f"'{treatment.name}' and '{control.name}'. Import or quantify images first."
            )
        points = in_window(all_points, window)
        if not points and window is not None:
            raise Unprocessable(
                f"No measurements between day {window[0]:g} and day {window[1]:g}; the data "
                f"cover days {min(p.day for p in all_points)}–{max(p.day for p in all_points)}."
            )
        counts = _check_enough_animals(points, (treatment, control), data.site.value)
        cohort = build_cohort(read, study, points, site=data.site.value)
        limits = detection_limits(
            read, study, points, metric=data.metric, default=data.detection_limit
        )
    try:
        results = _outcomes(cohort, data, control.name, treatment.name, limits)
    except cohorts.CohortsError as exc:
        raise Unprocessable(str(exc)) from exc
    row = Comparison(
        study_id=study.id,
        treatment_arm_id=treatment.id,
        control_arm_id=control.id,
        site=data.site.value,
        metric=data.metric,
        # The study's rule for several images of a day and the lab's factor that flagged
        # the inputs are part of what was computed.
        parameters=data.model_dump(mode="json")
        | {
            "image_combination": study.image_combination.value,
            "failed_injection_factor": failed_injection_factor,
        },
        input_measurement_ids=sorted(str(i) for p in points for i in p.measurement_ids),
        inputs=[p.model_dump(mode="json") for p in points],
        input_fingerprint=fingerprint(points),
        software=software_versions(),
        results={k: v.model_dump(mode="json") for k, v in results.items()},
        created_by_key_id=principal.key_id,
    )
    session.add(row)
    session.flush()
    audit.record(session, principal, action="create", object_type="comparison", object_id=row.id)
    return _to_read(row, counts, inputs_changed=False)


TABLES = ("per_day", "animals", "mixed_model", "survival")


def _links(row: Comparison) -> dict[str, str]:
    base = f"/studies/{row.study_id}/comparisons/{row.id}"
    return (
        {"inputs": f"{base}/inputs"}
        | {f"tables.{name}": f"{base}/tables/{name}" for name in TABLES}
        | {"tables.xlsx": f"{base}/tables.xlsx"}
    )


def _to_read(
    row: Comparison,
    counts: dict[str, int],
    *,
    inputs_changed: bool,
    include_ids: bool = False,
) -> ComparisonRead:
    return ComparisonRead(
        id=row.id,
        study_id=row.study_id,
        treatment_arm_id=row.treatment_arm_id,
        control_arm_id=row.control_arm_id,
        site=row.site,
        metric=row.metric,
        unit=UNITS[row.metric],
        parameters=row.parameters,
        n_animals=counts,
        n_inputs=len(row.input_measurement_ids),
        input_measurement_ids=(
            [uuid.UUID(i) for i in row.input_measurement_ids] if include_ids else None
        ),
        input_fingerprint=row.input_fingerprint,
        inputs_changed=inputs_changed,
        software=row.software,
        results=ComparisonResults.model_validate(row.results),
        links=_links(row),
        created_at=row.created_at,
    )


def get_comparison_row(
    session: Session, principal: Principal, study_id: uuid.UUID, comparison_id: uuid.UUID
) -> tuple[Comparison, Study]:
    study = get_study(session, principal, study_id)
    row = session.scalar(
        select(Comparison).where(Comparison.id == comparison_id, Comparison.study_id == study.id)
    )
    if row is None:
        raise NotFound(f"No comparison with id {comparison_id} in study {study_id}.")
    return row, study


def stored_points(row: Comparison) -> list[SeriesPoint]:
    """Exactly the points the comparison used, with each animal's arm as it was then."""
    return [SeriesPoint.model_validate(p) for p in row.inputs]


def _read_against_current(
    session: Session,
    study: Study,
    row: Comparison,
    current_cache: dict[tuple[object, ...], str],
    include_ids: bool = False,
) -> ComparisonRead:
    """The stored comparison, with ``inputs_changed`` from the fingerprint of the current
    inputs (computed once per site, metric, arms, window and failed-injection factor, the
    comparison's own: a changed setting is not changed data)."""
    window = row.parameters.get("window")
    # comparisons stored before the factor was recorded used 5 (then the only factor)
    factor = row.parameters.get("failed_injection_factor", 5.0)
    key = (row.site, row.metric, row.treatment_arm_id, row.control_arm_id, str(window), factor)
    if key not in current_cache:
        points = load_points(
            session,
            study,
            site=Site(row.site),
            metric=row.metric,  # type: ignore[arg-type]
            arm_ids=[row.treatment_arm_id, row.control_arm_id],
            failed_injection_factor=factor,
        )
        bounds = (window["day_from"], window["day_to"]) if window else None
        current_cache[key] = fingerprint(in_window(points, bounds))
    counts = animals_per_arm(stored_points(row))
    return _to_read(
        row,
        counts,
        inputs_changed=current_cache[key] != row.input_fingerprint,
        include_ids=include_ids,
    )


def get_comparison(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    *,
    include_ids: bool = False,
) -> ComparisonRead:
    """A stored comparison, unchanged, saying whether its inputs have changed since."""
    row, study = get_comparison_row(session, principal, study_id, comparison_id)
    return _read_against_current(session, study, row, {}, include_ids)


def comparison_inputs(
    session: Session, principal: Principal, study_id: uuid.UUID, comparison_id: uuid.UUID
) -> Series:
    """The measurements a stored comparison used, each with its animal's arm at the time."""
    row, _ = get_comparison_row(session, principal, study_id, comparison_id)
    return Series(
        study_id=row.study_id,
        site=row.site,
        metric=row.metric,  # type: ignore[arg-type]
        unit=UNITS[row.metric],
        # comparisons stored before the rule was recorded used the mean (the only rule then)
        image_combination=row.parameters.get("image_combination", "mean"),
        points=stored_points(row),
    )


def comparison_table(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    table: str,
) -> tuple[str, str]:
    """One results table of a stored comparison as CSV, and a file name for it."""
    row, study = get_comparison_row(session, principal, study_id, comparison_id)
    results = ComparisonResults.model_validate(row.results)
    content = comparison_csv(results, table)
    analyses = [k for k in row.results if k != "censoring"]
    if content is None:
        raise Unprocessable(
            f"This comparison has no {table.replace('_', '-')} results (analyses run: "
            f"{', '.join(analyses) or 'none'}; see results for the reasons)."
        )
    name = f"{study.name[:40]}-comparison-{str(row.id)[:8]}-{table}.csv".replace('"', "")
    return content, name


def comparison_workbook(
    session: Session, principal: Principal, study_id: uuid.UUID, comparison_id: uuid.UUID
) -> tuple[bytes, str]:
    """Every results table of a stored comparison as one XLSX workbook, and a file name."""
    row, study = get_comparison_row(session, principal, study_id, comparison_id)
    results = ComparisonResults.model_validate(row.results)
    content = comparison_xlsx(results, row.parameters, row.created_at)  # dated as the comparison
    name = f"{study.name[:40]}-comparison-{str(row.id)[:8]}.xlsx".replace('"', "")
    return content, name


def list_comparisons(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    page: PageParams,
    *,
    include_ids: bool = False,
) -> tuple[list[ComparisonRead], int]:
    """A page of a study's stored comparisons, oldest first, each saying whether its inputs
    changed, and how many there are."""
    study = get_study(session, principal, study_id)
    query = select(Comparison).where(Comparison.study_id == study.id)
    rows, total = paginate(session, query.order_by(Comparison.created_at, Comparison.id), page)
    cache: dict[tuple[object, ...], str] = {}
    return [_read_against_current(session, study, row, cache, include_ids) for row in rows], total


def prism_export(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    site: Site,
    metric: Metric,
    failed_injection_factor: float,
) -> tuple[str, str]:
    """The Prism wide CSV of a site and metric, and a file name for it."""
    study = get_study(session, principal, study_id)
    points = load_points(
        session, study, site=site, metric=metric, failed_injection_factor=failed_injection_factor
    )
    arms = list(
        session.scalars(
            select(Arm.name)
            .where(Arm.study_id == study.id, Arm.archived_at.is_(None))
            .order_by(Arm.role, Arm.name)
        )
    )
    content = prism_wide_csv(points, arms=arms, value_label=f"{metric} [{UNITS[metric]}]")
    name = f"{study.name[:60]}-{site.value}-{metric}-{study.image_combination.value}.csv"
    return content, name.replace('"', "")
