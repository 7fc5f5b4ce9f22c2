"""HTTP routes for interval-censored metastasis onset and several sites per mouse."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.analysis import plots
from app.analysis.schemas import MAX_SIGNAL
from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.models import Site
from app.onset import service
from app.onset.schemas import IntervalSurvivalRead, SiteInvolvementRead, SkeletalBurdenRead
from app.responses import PROBLEM_RESPONSES, csv_or_json, csv_response

router = APIRouter(
    prefix="/studies/{study_id}", tags=["onset and sites"], responses=PROBLEM_RESPONSES
)

Threshold = Annotated[
    float,
    Query(gt=0, le=MAX_SIGNAL, description="Positivity threshold on total flux, p/s (e.g. 1e6)."),
]
Consecutive = Annotated[
    int, Query(ge=1, le=10, description="Positive images in a row needed for onset.")
]
Sites = Annotated[
    list[Site],
    Query(description="Bone sites (repeat the parameter); default all bone sites with data."),
]
TreatmentArm = Annotated[uuid.UUID, Query(description="The treated arm.")]
ControlArm = Annotated[
    uuid.UUID | None, Query(description="Default: the treatment arm's control arm.")
]
DeathIsEvent = Annotated[
    bool,
    Query(
        description="Count death / humane endpoint without a positive image as the event "
        "(composite endpoint); otherwise such animals are censored at their last image."
    ),
]
DataFormat = Annotated[Literal["json", "csv"], Query(description="json, or csv for a table.")]
FigureFormat = Annotated[plots.Format, Query(description="png (150 dpi) or svg.")]
IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/svg+xml": {"schema": {"type": "string"}},
        }
    }
}
MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


class OnsetQuery:
    """The query shared by the interval-censored onset routes: arms, site and rule (and the
    lab's failed-injection factor, which flags the images)."""

    def __init__(
        self,
        settings: SettingsDep,
        treatment_arm_id: TreatmentArm,
        threshold: Threshold,
        site: Site = Site.whole_body,
        control_arm_id: ControlArm = None,
        consecutive: Consecutive = 1,
        death_is_event: DeathIsEvent = False,
    ) -> None:
        self.params = {
            "treatment_arm_id": treatment_arm_id,
            "control_arm_id": control_arm_id,
            "site": site,
            "threshold": threshold,
            "consecutive": consecutive,
            "death_is_event": death_is_event,
            "failed_injection_factor": settings.failed_injection_factor,
        }


class InvolvementQuery:
    """The query shared by the site-involvement routes (and the lab's failed-injection
    factor)."""

    def __init__(
        self,
        settings: SettingsDep,
        threshold: Threshold,
        sites: Sites = [],  # noqa: B006 (FastAPI copies query defaults)
        consecutive: Consecutive = 1,
    ) -> None:
        self.params = {
            "threshold": threshold,
            "sites": sites,
            "consecutive": consecutive,
            "failed_injection_factor": settings.failed_injection_factor,
        }


OnsetQueryDep = Annotated[OnsetQuery, Depends()]
InvolvementQueryDep = Annotated[InvolvementQuery, Depends()]


@router.get(
    "/onset/interval-censored",
    summary="Interval-censored metastasis-free survival",
    response_model=IntervalSurvivalRead,
    responses=csv_or_json(
        "The result as JSON, or with format=csv the table named by `table`",
        "animal,arm,left [day],right [day],kind,event,reason,threshold [p/s],n_images\r\n"
        "3466,Vehicle,14.0,21.0,interval,true,onset,1000000.0,5\r\n",
    ),
)
def get_interval_survival(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    query: OnsetQueryDep,
    format: DataFormat = "json",
    table: Annotated[
        service.IntervalTable, Query(description="CSV table: animals or turnbull.")
    ] = "animals",
) -> IntervalSurvivalRead | Response:
    """Onset lies between the last negative and the first positive image: Turnbull NPMLE per
    arm, Weibull and log-normal AFT models with the arm as covariate (time ratio, Wald and
    likelihood-ratio tests; as R survreg interval2), and the conventional right-censored
    Kaplan-Meier / log-rank / Cox taking the first positive image as onset."""
    read = service.interval_survival(session, principal, study_id, **query.params)
    if format == "csv":
        return csv_response(service.interval_csv(read, table), f"onset-{table}.csv")
    return read


@router.get(
    "/onset/interval-censored/plot",
    summary="Turnbull curves beside the conventional Kaplan-Meier",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def interval_survival_plot(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    query: OnsetQueryDep,
    format: FigureFormat = "png",
) -> Response:
    """Turnbull NPMLE per arm (shaded where only the drop is known), the conventional
    Kaplan-Meier dashed, the AFT time ratios in the footnote."""
    content = service.interval_plot(session, principal, study_id, fmt=format, **query.params)
    return Response(content, media_type=MEDIA[format])


@router.get(
    "/sites/burden",
    summary="Total skeletal burden (sum of bone sites)",
    response_model=SkeletalBurdenRead,
    responses=csv_or_json(
        "The burden as JSON, or one row per animal and day with format=csv",
        "animal,arm,day,total [p/s],n_sites,sites\r\n3466,Vehicle,14.0,2400000.0,3,spine;...\r\n",
    ),
)
def get_skeletal_burden(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    sites: Sites = [],  # noqa: B006 (FastAPI copies query defaults)
    treatment_arm_id: Annotated[
        uuid.UUID | None, Query(description="Compare this arm with its control by day.")
    ] = None,
    control_arm_id: ControlArm = None,
    format: DataFormat = "json",
) -> SkeletalBurdenRead | Response:
    """The sum of the bone sites' total flux per animal and day (only days on which every
    site has a usable value), an endpoint named skeletal_total; with treatment_arm_id,
    compared with the control by day (log10, Welch and Mann-Whitney, Holm)."""
    read = service.skeletal_burden(
        session,
        principal,
        study_id,
        sites=sites,
        treatment_arm_id=treatment_arm_id,
        control_arm_id=control_arm_id,
        failed_injection_factor=settings.failed_injection_factor,
    )
    if format == "csv":
        return csv_response(service.burden_csv(read), "skeletal-burden.csv")
    return read


@router.get(
    "/sites/burden/plot",
    summary="Total skeletal burden per animal",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def skeletal_burden_plot(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    sites: Sites = [],  # noqa: B006
    format: FigureFormat = "png",
) -> Response:
    """One line per animal of its total skeletal burden (log axis), a panel per arm."""
    content = service.burden_plot(
        session,
        principal,
        study_id,
        sites=sites,
        fmt=format,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return Response(content, media_type=MEDIA[format])


@router.get(
    "/sites/involvement",
    summary="Incidence of each site and sites involved per mouse",
    response_model=SiteInvolvementRead,
    responses=csv_or_json(
        "The result as JSON, or with format=csv the table named by `table`",
        "site,arm,day,n_imaged,positive,fraction\r\nspine,Vehicle,14.0,8,3,0.375\r\n",
    ),
)
def get_site_involvement(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    query: InvolvementQueryDep,
    format: DataFormat = "json",
    table: Annotated[
        service.InvolvementTable,
        Query(description="CSV table: incidence, per_mouse or per_arm."),
    ] = "incidence",
) -> SiteInvolvementRead | Response:
    """Per arm and day, the fraction of imaged animals whose site has become positive, for
    each bone site; per mouse and day, how many sites are involved (a site stays involved
    once positive), with the per-arm mean, median and distribution."""
    read = service.site_involvement(session, principal, study_id, **query.params)
    if format == "csv":
        return csv_response(service.involvement_csv(read, table), f"sites-{table}.csv")
    return read


@router.get(
    "/sites/involvement/plot",
    summary="Plot site incidence or sites per mouse over time",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def site_involvement_plot(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    query: InvolvementQueryDep,
    kind: Annotated[
        service.InvolvementPlot, Query(description="incidence (a panel per site) or per_mouse.")
    ] = "incidence",
    format: FigureFormat = "png",
) -> Response:
    """Incidence of each site per arm over time, or the number of sites involved per mouse."""
    content = service.involvement_plot(
        session, principal, study_id, kind=kind, fmt=format, **query.params
    )
    return Response(content, media_type=MEDIA[format])
