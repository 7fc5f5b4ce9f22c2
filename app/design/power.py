"""Design before the study: power and sample size by simulation (``cohorts.simulate_power``)
from a pilot arm's REML growth fit or given parameters, over a grid of designs; in the
request, or as a background job that commits one design at a time."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session

import cohorts
from app.analysis.cohort_data import build_cohort
from app.analysis.errors import run_cohorts
from app.arms.service import get_arm
from app.auth import Principal
from app.config import Settings
from app.design.schemas import (
    MAX_DESIGNS,
    MAX_IMAGING_DAYS,
    MAX_JOB_SIMULATED_VALUES,
    MAX_SIMULATED_VALUES,
    GrowthParametersRead,
    GrowthSource,
    PilotFitRead,
    PilotSource,
    PowerCreate,
    PowerJobCreate,
    PowerRead,
    PowerRowRead,
)
from app.design.service import new_seed
from app.errors import NotFound, Unprocessable
from app.jobs import service as jobs
from app.jobs.runner import JobContext
from app.measurements.service import load_points
from app.models import Arm, Job, Study
from app.responses import csv_text
from app.studies.service import get_study

POWER_JOB = "power"


def power_designs(
    data: PowerCreate, *, limit: int | None = MAX_SIMULATED_VALUES
) -> tuple[list[cohorts.StudyDesign], int]:
    """The grid's designs in order (interval, length, n) and the work they ask for
    (simulated log10 values), refused over ``limit``."""
    grid = sorted(set(itertools.product(data.interval_days, data.length_days, data.n_per_arm)))
    if len(grid) > MAX_DESIGNS:
        raise Unprocessable(f"{len(grid)} designs asked for; at most {MAX_DESIGNS} per request.")
    designs = [cohorts.StudyDesign(n, iv, length, data.first_day) for iv, length, n in grid]
    for d in designs:
        run_cohorts(d.check)
        check_imaging_days(d.n_images, d.interval_days)
    work = data.n_sim * sum(2 * d.n_per_arm * d.n_images for d in designs)
    if limit is not None and work > limit:
        raise Unprocessable(
            f"This asks for {work:.3g} simulated values (n_sim x designs x 2 n x images); the "
            f"limit is {limit:.0e} (about {limit / 5e6:.0f} s). Use fewer designs or fewer "
            "simulations, or run it as a background job (POST …/power/jobs)."
        )
    return designs, work


def check_imaging_days(n_images: int | None, interval_days: float | None) -> None:
    """Refuse (422) a design imaged on more than :data:`MAX_IMAGING_DAYS` days."""
    if n_images is not None and n_images > MAX_IMAGING_DAYS:
        raise Unprocessable(
            f"interval_days {interval_days:g} gives {n_images:.3g} imaging days in one design; "
            f"at most {MAX_IMAGING_DAYS:,}: image less often or over a shorter study.",
            errors=[{"field": "interval_days", "message": f"at most {MAX_IMAGING_DAYS:,} days"}],
        )


def _one_source(data: GrowthSource) -> None:
    if (data.pilot is None) == (data.parameters is None):
        raise Unprocessable("Give exactly one of pilot (an arm to fit) and parameters.")


def _pilot_arm(
    session: Session, principal: Principal, study_id: uuid.UUID, pilot: PilotSource
) -> Arm:
    try:
        return get_arm(session, principal, study_id, pilot.arm_id)
    except NotFound:
        raise Unprocessable(f"pilot.arm_id {pilot.arm_id} is not an arm of this study.") from None


def _pilot(
    session: Session,
    principal: Principal,
    study: Study,
    pilot: PilotSource,
    *,
    failed_injection_factor: float,
) -> tuple[cohorts.PilotFit, Arm]:
    arm = _pilot_arm(session, principal, study.id, pilot)
    points = load_points(
        session,
        study,
        site=pilot.site,
        metric=pilot.metric,
        arm_ids=[arm.id],
        failed_injection_factor=failed_injection_factor,
    )
    cohort = build_cohort(session, study, points, site=pilot.site.value)
    fit = run_cohorts(
        lambda: cohorts.fit_pilot(cohort, arm=arm.name, site=pilot.site.value, floor=pilot.floor)
    )
    return fit, arm


def power_parameters(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID | None,
    data: GrowthSource,
    *,
    failed_injection_factor: float,
) -> tuple[cohorts.GrowthParameters, str, PilotFitRead | None]:
    """The control arm's growth: fitted from the pilot arm (its images flagged by the lab's
    ``failed_injection_factor``), or as given; where it came from."""
    _one_source(data)
    if data.pilot is None:
        assert data.parameters is not None
        if study_id is not None:
            get_study(session, principal, study_id)
        return cohorts.GrowthParameters(**data.parameters.model_dump()), "given", None
    if study_id is None:
        raise Unprocessable(
            "pilot fits an arm of a study: use POST /studies/{study_id}/power (or …/power/onset), "
            "or give parameters."
        )
    study = get_study(session, principal, study_id)
    fit, arm = _pilot(
        session, principal, study, data.pilot, failed_injection_factor=failed_injection_factor
    )
    source = (
        f"REML fit of arm '{arm.name}' ({fit.n_animals} animals, {fit.n_observations} "
        f"values, site {fit.site}, random effects {fit.random_effects})"
    )
    return fit.parameters, source, PilotFitRead(arm_id=arm.id, **fit.to_dict() | {"arm": arm.name})


def simulate(
    params: cohorts.GrowthParameters,
    designs: list[cohorts.StudyDesign],
    data: PowerCreate,
    seed: int,
) -> cohorts.PowerTable:
    """``cohorts.simulate_power`` with the request's effect and analysis."""
    return run_cohorts(
        lambda: cohorts.simulate_power(
            params,
            designs,
            slope_ratio=data.slope_ratio,
            fold=data.fold,
            fold_day=data.fold_day,
            alpha=data.alpha,
            test=data.test,
            n_sim=data.n_sim,
            seed=seed,
            min_images=data.min_images,
        )
    )


def power_read(
    table: cohorts.PowerTable,
    *,
    study_id: uuid.UUID | None,
    source: str,
    pilot: PilotFitRead | None,
    work: int,
) -> PowerRead:
    return PowerRead(
        study_id=study_id,
        parameters=GrowthParametersRead(**table.parameters.to_dict()),
        parameters_source=source,
        pilot=pilot,
        effect=table.effect,
        control_slope=table.control_slope,
        treated_slope=table.treated_slope,
        test=table.test,
        alpha=table.alpha,
        n_sim=table.n_sim,
        seed=table.seed,
        simulated_values=work,
        rows=[PowerRowRead(**r.to_dict()) for r in table.rows],
    )


def power(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID | None,
    data: PowerCreate,
    *,
    failed_injection_factor: float,
) -> PowerRead:
    """Power of every design of the grid, simulated from a pilot arm or given parameters."""
    designs, work = power_designs(data)
    params, source, pilot = power_parameters(
        session, principal, study_id, data, failed_injection_factor=failed_injection_factor
    )
    table = simulate(params, designs, data, new_seed(data.seed))
    return power_read(table, study_id=study_id, source=source, pilot=pilot, work=work)


def submit_power_job(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    data: PowerJobCreate,
) -> Job:
    """Queue a power job (checked first: the study, the grid, the pilot arm's existence)."""

    def check() -> None:
        power_designs(data, limit=MAX_JOB_SIMULATED_VALUES)
        _one_source(data)

    return queue_power_job(session, principal, settings, study_id, data, check=check)


class _JobRequest(Protocol):
    pilot: PilotSource | None
    seed: int | None

    def model_copy(self, *, update: dict[str, Any]) -> Any: ...


def queue_power_job(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    data: _JobRequest,
    *,
    check: Callable[[], None],
    endpoint: str | None = None,
) -> Job:
    """Queue a ``power`` job after ``check()`` of its grid and the study's and pilot arm's
    existence, its seed fixed now (the job's table is then that of one request with it);
    ``endpoint`` (e.g. ``onset``) tells :func:`run_power_job` which power it is."""
    principal.require_write()
    get_study(session, principal, study_id)
    check()
    if data.pilot is not None:
        _pilot_arm(session, principal, study_id, data.pilot)
    request = data.model_copy(update={"seed": new_seed(data.seed)}).model_dump(mode="json")
    inputs = {"study_id": str(study_id), "request": request}
    return jobs.submit(
        session,
        principal,
        settings,
        kind=POWER_JOB,
        inputs=inputs | ({"endpoint": endpoint} if endpoint else {}),
        lock=f"power:{study_id}",
    )


def run_design_steps(
    job: JobContext,
    count: int,
    parameters: Callable[[Session, dict[str, Any]], None],
    design: Callable[[int, dict[str, Any]], dict[str, Any]],
) -> None:
    """A power job's steps: ``parameters`` (step 0), then one committed step per design, so
    an interrupted job resumes after its last design and ``progress`` counts designs.
    ``design(index, result)`` gives the table of that design alone (JSON); its rows are
    appended to the result's, its other fields replace the result's."""
    job.plan(lambda session: ["parameters"] + [f"design {i}" for i in range(count)])
    job.step(0, parameters)
    for number in range(1, count + 1):

        def one(session: Session, result: dict[str, Any], index: int = number - 1) -> None:
            table = design(index, result)
            rows = [*result.get("rows", []), *table.pop("rows")]
            result.update(table, rows=rows)

        job.step(number, one)


def run_power_job(job: JobContext) -> None:
    """The power job: the parameters, then one design per step (:func:`run_design_steps`).
    Each design's random stream depends only on the seed and the design, so the job's table
    is the one a single request with the same seed would give. A job for the onset endpoint
    (inputs ``endpoint: onset``) is :func:`app.design.onset_power.run_onset_power_job`."""
    if job.params.get("endpoint") == "onset":
        from app.design.onset_power import run_onset_power_job

        return run_onset_power_job(job)
    data = PowerJobCreate.model_validate(job.params["request"])
    study_id = uuid.UUID(job.params["study_id"])
    designs, work = power_designs(data, limit=None)

    def parameters(session: Session, result: dict[str, Any]) -> None:
        params, source, pilot = power_parameters(
            session,
            job.principal,
            study_id,
            data,
            failed_injection_factor=job.settings.failed_injection_factor,
        )
        result["parameters"] = params.to_dict()
        result["parameters_source"] = source
        result["pilot"] = pilot.model_dump(mode="json") if pilot else None

    def design(index: int, result: dict[str, Any]) -> dict[str, Any]:
        assert data.seed is not None  # fixed when the job was submitted
        params = cohorts.GrowthParameters(**result["parameters"])
        table = simulate(params, [designs[index]], data, data.seed)
        read = power_read(
            table, study_id=study_id, source=result["parameters_source"], pilot=None, work=work
        )
        return read.model_dump(mode="json", exclude={"pilot"})

    run_design_steps(job, len(designs), parameters, design)


POWER_COLUMNS = (
    "n_per_arm",
    "interval_days",
    "length_days",
    "n_images",
    "power",
    "mc_se",
    "ci_low",
    "ci_high",
    "mean_animals_analysed",
    "analytic_power",
)


def power_csv(read: PowerRead) -> str:
    """The power table, one row per design (columns as the JSON rows)."""
    return csv_text(POWER_COLUMNS, ([getattr(r, c) for c in POWER_COLUMNS] for r in read.rows))
