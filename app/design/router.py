"""HTTP routes for study design: randomisation into arms and power by simulation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from matplotlib.figure import Figure

from app.analysis.plots import render
from app.deps import PrincipalDep, ReasonHeader, SessionDep, SettingsDep
from app.design import onset_power, power, service
from app.design.plots import onset_power_curves, power_curves
from app.design.schemas import (
    OnsetPowerCreate,
    OnsetPowerJobCreate,
    OnsetPowerRead,
    PowerCreate,
    PowerJobCreate,
    PowerRead,
    RandomisationCreate,
    RandomisationRead,
    RandomisationRecord,
)
from app.errors import Conflict, Unprocessable
from app.jobs.schemas import JobRead
from app.jobs.service import accepted
from app.pagination import PlainPageDep, plain_page_responses, set_page_headers
from app.responses import CSV_MEDIA_TYPE, PROBLEM_RESPONSES, csv_response, problem_responses

router = APIRouter(tags=["design"], responses=PROBLEM_RESPONSES)

PowerFormat = Annotated[
    Literal["json", "csv", "png", "svg"],
    Query(description="json (default), csv (the table), png or svg (the power curves)"),
]
_POWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The power table (JSON or CSV) or the power curves (PNG or SVG).",
        "content": {
            CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/svg+xml": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/studies/{study_id}/randomisation",
    summary="Randomise animals into arms, balanced on baseline flux",
    responses=problem_responses(
        (
            "The study was randomised before, or the animals were imaged after the baseline "
            "day; send force=true with a reason to apply anyway.",
            Conflict("Not applied: the study was randomised on 2026-07-01 09:12 UTC (seed 7)."),
        ),
        (
            "Missing baseline values, unknown arms or animals, bad sizes or strata.",
            Unprocessable("Animal(s) 3468 have no usable baseline value at site 'whole_body'."),
        ),
    ),
)
def randomise(
    study_id: uuid.UUID,
    body: RandomisationCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    reason: ReasonHeader = None,
) -> RandomisationRead:
    """Allocate the study's animals (or those listed) to its arms, stratified, balanced on
    log10 of the baseline image's flux (and body weight) by rerandomisation, reproducibly
    from the seed; with the balance achieved (per-arm n, mean/SD, ANOVA and Kruskal–Wallis).
    `apply=false` previews; `apply=true` moves the animals and audits seed, method and
    balance."""
    return service.randomisation(
        session,
        principal,
        study_id,
        body,
        header_reason=reason,
        failed_injection_factor=settings.failed_injection_factor,
    )


@router.get(
    "/studies/{study_id}/randomisation",
    summary="Randomisations applied to a study",
    responses=plain_page_responses("How many randomisations were applied to the study."),
)
def list_randomisations(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    response: Response,
    page: PlainPageDep,
) -> list[RandomisationRecord]:
    """Randomisations applied to the study, oldest first, as the audit trail records them:
    when and why, seed, method, baseline, assignments and the balance achieved; a page at a
    time (a plain list, as before; ``X-Total-Count`` gives the number and
    ``Link: <…>; rel="next"`` the next page when there is more)."""
    records, total = service.randomisations(session, principal, study_id, page)
    set_page_headers(request, response, page, len(records), total)
    return records


def _figure(figure: Figure, fmt: str) -> Response:
    content = render(figure, "png" if fmt == "png" else "svg")
    return Response(content, media_type="image/png" if fmt == "png" else "image/svg+xml")


def _power_response(read: PowerRead, fmt: str) -> PowerRead | Response:
    if fmt == "csv":
        return csv_response(power.power_csv(read), "power.csv")
    return _figure(power_curves(read), fmt) if fmt in ("png", "svg") else read


@router.post(
    "/studies/{study_id}/power",
    summary="Power and sample size by simulation from a pilot arm",
    response_model=PowerRead,
    responses=_POWER_RESPONSES,
)
def study_power(
    study_id: uuid.UUID,
    body: PowerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    format: PowerFormat = "json",
) -> PowerRead | Response:
    """Fit the growth of an arm of this study (mixed model on log10 flux: rate, between-
    animal and residual SD; dropout) or take given parameters, and simulate `n_sim` studies
    per design (mice per arm x imaging interval x length): power to detect the effect with
    the per-animal slope t test. At most 3e7 simulated values per request (~6 s)."""
    read = power.power(
        session,
        principal,
        study_id,
        body,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return _power_response(read, format)


@router.post(
    "/design/power",
    summary="Power and sample size by simulation from given growth parameters",
    response_model=PowerRead,
    responses=_POWER_RESPONSES,
)
def design_power(
    body: PowerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    format: PowerFormat = "json",
) -> PowerRead | Response:
    """As the study route, before any study exists: `parameters` (e.g. from a published
    pilot) instead of an arm to fit."""
    read = power.power(
        session, principal, None, body, failed_injection_factor=settings.failed_injection_factor
    )
    return _power_response(read, format)


@router.post(
    "/studies/{study_id}/power/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Power by simulation as a background job (large grids)",
)
def study_power_job(
    study_id: uuid.UUID,
    body: PowerJobCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobRead:
    """As POST …/power, beyond one request's bound (up to 100 000 studies per design, 1e9
    simulated values): 202 with the job (`Location: /jobs/{id}`); it simulates one design per
    step (progress = designs done) and its `result` is the power table, the same as one
    request with the same seed would give."""
    job = power.submit_power_job(session, principal, settings, study_id, body)
    return accepted(response, job)


def _onset_power_response(read: OnsetPowerRead, fmt: str) -> OnsetPowerRead | Response:
    if fmt == "csv":
        return csv_response(onset_power.onset_power_csv(read), "onset-power.csv")
    return _figure(onset_power_curves(read), fmt) if fmt in ("png", "svg") else read


@router.post(
    "/studies/{study_id}/power/onset",
    summary="Power for time to onset (log-rank) by simulation, from a pilot arm or given onset",
    response_model=OnsetPowerRead,
    responses=_POWER_RESPONSES,
)
def study_onset_power(
    study_id: uuid.UUID,
    body: OnsetPowerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    format: PowerFormat = "json",
) -> OnsetPowerRead | Response:
    """Power of the log-rank test of time to onset (first positive image) for a grid of mice
    per arm x imaging interval (or continuous observation) x follow-up: from a given control
    median onset and hazard ratio (exponential or Weibull), or from an arm's fitted growth
    crossing `threshold` with an effect on growth; onset seen on imaging days (ties),
    censored at dropout and the end of follow-up. At most 3e7 simulated values per request."""
    read = onset_power.onset_power(
        session,
        principal,
        study_id,
        body,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return _onset_power_response(read, format)


@router.post(
    "/design/power/onset",
    summary="Power for time to onset (log-rank) by simulation, from given onset or growth",
    response_model=OnsetPowerRead,
    responses=_POWER_RESPONSES,
)
def design_onset_power(
    body: OnsetPowerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    format: PowerFormat = "json",
) -> OnsetPowerRead | Response:
    """As the study route, before any study exists: `distribution` or `parameters`."""
    read = onset_power.onset_power(
        session, principal, None, body, failed_injection_factor=settings.failed_injection_factor
    )
    return _onset_power_response(read, format)


@router.post(
    "/studies/{study_id}/power/onset/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Power for time to onset as a background job (large grids)",
)
def study_onset_power_job(
    study_id: uuid.UUID,
    body: OnsetPowerJobCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobRead:
    """As POST …/power/onset, beyond one request's bound (up to 100 000 studies per design,
    1e9 simulated values): 202 with a `power` job (`Location: /jobs/{id}`, inputs
    `endpoint: onset`), one design per step; its `result` is the table one request with the
    same seed would give."""
    job = onset_power.submit_onset_power_job(session, principal, settings, study_id, body)
    return accepted(response, job)
