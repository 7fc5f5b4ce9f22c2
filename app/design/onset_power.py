"""Power for the time-to-onset endpoint: the log-rank test of onset by simulation
(``cohorts.simulate_onset_power``) from a given onset distribution and hazard ratio, or from
a pilot arm's growth (as growth power fits it) crossing a threshold; in the request, or as a
``power`` job (inputs ``endpoint: onset``) that commits one design at a time."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sqlalchemy.orm import Session

import cohorts
from app.analysis.errors import run_cohorts
from app.auth import Principal
from app.config import Settings
from app.design.power import (
    check_imaging_days,
    power_parameters,
    queue_power_job,
    run_design_steps,
)
from app.design.schemas import (
    MAX_DESIGNS,
    MAX_JOB_SIMULATED_VALUES,
    MAX_SIMULATED_VALUES,
    GrowthParametersRead,
    OnsetDistributionRead,
    OnsetPowerCreate,
    OnsetPowerJobCreate,
    OnsetPowerRead,
    OnsetPowerRowRead,
    PilotFitRead,
)
from app.design.service import new_seed
from app.errors import Unprocessable
from app.jobs.runner import JobContext
from app.models import Job
from app.responses import csv_text
from app.studies.service import get_study

ONSET = "onset"
Model = cohorts.OnsetDistribution | cohorts.GrowthOnset


def onset_designs(
    data: OnsetPowerCreate, *, limit: int | None = MAX_SIMULATED_VALUES
) -> tuple[list[cohorts.OnsetDesign], int]:
    """The grid's designs in order (continuous first, then by interval; follow-up; n) and
    the work they ask for (an onset per simulated animal, or from growth a log10 value per
    animal and image plus one), refused over ``limit``."""
    grid = sorted(
        set(itertools.product(data.interval_days, data.follow_up_days, data.n_per_arm)),
        key=lambda g: (g[0] is not None, g[0] or 0.0, g[1], g[2]),
    )
    if len(grid) > MAX_DESIGNS:
        raise Unprocessable(f"{len(grid)} designs asked for; at most {MAX_DESIGNS} per request.")
    designs = [cohorts.OnsetDesign(n, end, iv, data.first_day) for iv, end, n in grid]
    for d in designs:
        run_cohorts(d.check)
        check_imaging_days(d.n_images, d.interval_days)
    growth = data.distribution is None
    work = data.n_sim * sum(
        2 * d.n_per_arm * (1 + ((d.n_images or 0) if growth else 0)) for d in designs
    )
    if limit is not None and work > limit:
        raise Unprocessable(
            f"This asks for {work:.3g} simulated values (n_sim x designs x 2 n, x (images + 1) "
            f"from growth); the limit is {limit:.0e} (a few seconds). Use fewer designs or "
            "fewer simulations, or run it as a background job (POST …/power/onset/jobs)."
        )
    return designs, work


def onset_model(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID | None,
    data: OnsetPowerCreate,
    *,
    failed_injection_factor: float,
) -> tuple[Model, str, PilotFitRead | None]:
    """The control arm's onset: the given distribution, or growth (fitted from the pilot arm
    or given) crossing the threshold; where it came from."""
    if data.distribution is None:
        params, source, pilot = power_parameters(
            session, principal, study_id, data, failed_injection_factor=failed_injection_factor
        )
        assert data.threshold is not None  # OnsetPowerCreate checked it
        model = cohorts.GrowthOnset(params, data.threshold, data.consecutive)
        rule = f"onset: {data.consecutive} image(s) in a row >= {data.threshold:g} p/s"
        return model, f"{source}; {rule}", pilot
    if study_id is not None:
        get_study(session, principal, study_id)
    given = data.distribution
    distribution = cohorts.OnsetDistribution(
        given.median_days, shape=given.weibull_shape, dropout_per_day=given.dropout_per_day
    )
    return distribution, "given onset distribution", None


def _model_json(model: Model) -> dict[str, Any]:
    if isinstance(model, cohorts.OnsetDistribution):
        return {"distribution": model.to_dict()}
    return {"growth": model.to_dict()}


def _model_of(stored: dict[str, Any]) -> Model:
    if "distribution" in stored:
        return cohorts.OnsetDistribution(**stored["distribution"])
    growth = dict(stored["growth"])
    parameters = cohorts.GrowthParameters(**growth.pop("parameters"))
    return cohorts.GrowthOnset(parameters, **growth)


def simulate(
    model: Model, designs: list[cohorts.OnsetDesign], data: OnsetPowerCreate, seed: int
) -> cohorts.OnsetPowerTable:
    """``cohorts.simulate_onset_power`` with the request's effect."""
    return run_cohorts(
        lambda: cohorts.simulate_onset_power(
            model,
            designs,
            hazard_ratio=data.hazard_ratio,
            slope_ratio=data.slope_ratio,
            fold=data.fold,
            fold_day=data.fold_day,
            alpha=data.alpha,
            n_sim=data.n_sim,
            seed=seed,
        )
    )


def onset_power_read(
    table: cohorts.OnsetPowerTable,
    *,
    study_id: uuid.UUID | None,
    source: str,
    pilot: PilotFitRead | None,
    work: int,
) -> OnsetPowerRead:
    model = table.model
    distribution = parameters = None
    threshold: float | None = None
    consecutive = 1
    if isinstance(model, cohorts.OnsetDistribution):
        distribution = OnsetDistributionRead(
            median_days=model.median_days,
            weibull_shape=model.shape,
            dropout_per_day=model.dropout_per_day,
        )
    else:
        parameters = GrowthParametersRead(**model.parameters.to_dict())
        threshold, consecutive = model.threshold, model.consecutive
    return OnsetPowerRead(
        study_id=study_id,
        distribution=distribution,
        parameters=parameters,
        parameters_source=source,
        pilot=pilot,
        threshold=threshold,
        consecutive=consecutive,
        effect=table.effect,
        hazard_ratio=table.hazard_ratio,
        test=table.test,
        alpha=table.alpha,
        n_sim=table.n_sim,
        seed=table.seed,
        simulated_values=work,
        rows=[OnsetPowerRowRead(**r.to_dict()) for r in table.rows],
    )


def onset_power(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID | None,
    data: OnsetPowerCreate,
    *,
    failed_injection_factor: float,
) -> OnsetPowerRead:
    """Power of the log-rank test of onset for every design of the grid."""
    designs, work = onset_designs(data)
    model, source, pilot = onset_model(
        session, principal, study_id, data, failed_injection_factor=failed_injection_factor
    )
    table = simulate(model, designs, data, new_seed(data.seed))
    return onset_power_read(table, study_id=study_id, source=source, pilot=pilot, work=work)


def submit_onset_power_job(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    data: OnsetPowerJobCreate,
) -> Job:
    """Queue an onset power job (a ``power`` job with ``endpoint: onset``)."""

    def check() -> None:
        onset_designs(data, limit=MAX_JOB_SIMULATED_VALUES)

    return queue_power_job(
        session, principal, settings, study_id, data, check=check, endpoint=ONSET
    )


def run_onset_power_job(job: JobContext) -> None:
    """The onset power job: the model (step 0, the pilot fitted), then one design per step;
    the table is the one a single request with the same seed would give."""
    data = OnsetPowerJobCreate.model_validate(job.params["request"])
    study_id = uuid.UUID(job.params["study_id"])
    designs, work = onset_designs(data, limit=None)

    def model_step(session: Session, result: dict[str, Any]) -> None:
        model, source, pilot = onset_model(
            session,
            job.principal,
            study_id,
            data,
            failed_injection_factor=job.settings.failed_injection_factor,
        )
        result["model"] = _model_json(model)
        result["parameters_source"] = source
        result["pilot"] = pilot.model_dump(mode="json") if pilot else None

    def design(index: int, result: dict[str, Any]) -> dict[str, Any]:
        assert data.seed is not None  # fixed when the job was submitted
        table = simulate(_model_of(result["model"]), [designs[index]], data, data.seed)
        read = onset_power_read(
            table, study_id=study_id, source=result["parameters_source"], pilot=None, work=work
        )
        return read.model_dump(mode="json", exclude={"pilot"})

    run_design_steps(job, len(designs), model_step, design)


ONSET_POWER_COLUMNS = tuple(OnsetPowerRowRead.model_fields)


def onset_power_csv(read: OnsetPowerRead) -> str:
    """The onset power table, one row per design (columns as the JSON rows)."""
    return csv_text(
        ONSET_POWER_COLUMNS, ([getattr(r, c) for c in ONSET_POWER_COLUMNS] for r in read.rows)
    )
