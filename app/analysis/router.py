"""HTTP routes for arm summaries, comparisons, plots and exports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.analysis import exports, figures, service
from app.analysis.schemas import MAX_SIGNAL, ComparisonCreate, ComparisonRead, SummaryRead
from app.deps import PrincipalDep, ReadSessionFactoryDep, SessionDep, SettingsDep
from app.jobs.comparisons import prefers_async, submit_comparison
from app.jobs.schemas import JobRead
from app.measurements.schemas import Metric, Series
from app.measurements.service import series_csv
from app.models import Site
from app.pagination import PlainPageDep, plain_page_responses, set_page_headers
from app.responses import PROBLEM_RESPONSES, attachment_headers, csv_or_json, csv_response

router = APIRouter(prefix="/studies/{study_id}", tags=["analysis"], responses=PROBLEM_RESPONSES)

# Representations follow app.responses: ?format= chooses json|csv (data) or png|svg (figures);
# a file name in the path (prism.csv, tables.xlsx) is a documented alias of the same route.
DataFormat = Annotated[
    Literal["json", "csv"], Query(description="json (default) or csv (a tidy CSV file)")
]
ALIAS = "Alias of the route without the file suffix (same parameters, same answer)."


@router.get(
    "/summary",
    summary="Per-arm per-day summary",
    response_model=SummaryRead,
    responses=csv_or_json(
        "The summary as JSON, or with format=csv one row per arm and day",
        "arm,day,n,mean [log10(p/s)],sd [log10(p/s)],…,image_combination\r\n"
        "Vehicle,7.0,6,6.1,0.4,…,mean\r\n",
    ),
)
def get_summary(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Site = Site.whole_body,
    metric: Metric = "total_flux_ps",
    scale: Literal["log10", "linear"] = "log10",
    floor: Annotated[
        float | None,
        Query(gt=0, le=MAX_SIGNAL, description="Raise values below this first"),
    ] = None,
    baseline: Annotated[
        str | None,
        Query(
            pattern=r"^(first|\d+(\.\d+)?)$",
            description="'first' or a day: fold change vs baseline",
        ),
    ] = None,
    format: DataFormat = "json",
) -> SummaryRead | Response:
    """For every arm and imaging day: n, mean ± SD and SEM, geometric mean with 95 % CI,
    median and IQR, on the chosen scale, with every excluded or adjusted value listed
    (format=csv: the rows only, one per arm and day)."""
    result = service.summary(
        session,
        principal,
        study_id,
        site=site,
        metric=metric,
        scale=scale,
        floor=floor,
        baseline=baseline,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return csv_response(exports.summary_csv(result)) if format == "csv" else result


@router.post(
    "/comparisons",
    status_code=status.HTTP_201_CREATED,
    summary="Compare a treatment arm with its control",
    response_model=ComparisonRead,
    responses={
        202: {
            "model": JobRead,
            "description": "With `Prefer: respond-async`: the comparison runs as a job; "
            "poll `Location` (`/jobs/{id}`), whose `result_url` is the stored comparison.",
        }
    },
)
def create_comparison(
    study_id: uuid.UUID,
    body: ComparisonCreate,
    session: SessionDep,
    reader: ReadSessionFactoryDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    prefer: Annotated[
        str | None,
        Header(description="respond-async: answer 202 with a job instead of waiting (RFC 7240)"),
    ] = None,
) -> ComparisonRead | JSONResponse:
    """Run the treatment-vs-control statistics at one site (per-day Mann–Whitney and Welch
    with Holm/BH, AUC, growth rates, mixed model, T/C %, %TGI, incidence and
    metastasis-free survival) and store the result with its parameters, input measurements
    and software versions. With `Prefer: respond-async` it runs as a job (202)."""
    if prefers_async(prefer):
        job = submit_comparison(session, principal, settings, study_id, body)
        return JSONResponse(
            JobRead.of(job).model_dump(mode="json"),
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/jobs/{job.id}", "Preference-Applied": "respond-async"},
        )
    return service.create_comparison(
        session,
        reader,
        principal,
        study_id,
        body,
        failed_injection_factor=settings.failed_injection_factor,
    )


Include = Annotated[
    tuple[Literal["input_measurement_ids"], ...],
    Query(description="input_measurement_ids: list the ids of the measurements used inline"),
]


@router.get(
    "/comparisons",
    summary="List comparisons",
    responses=plain_page_responses("How many comparisons the study has."),
)
def list_comparisons(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    response: Response,
    page: PlainPageDep,
    include: Include = (),
) -> list[ComparisonRead]:
    """Stored comparisons of a study, oldest first, a page at a time (a plain list, as
    before; ``X-Total-Count`` gives the number and ``Link: <…>; rel="next"`` the next page
    when there is more)."""
    items, total = service.list_comparisons(
        session, principal, study_id, page, include_ids="input_measurement_ids" in include
    )
    set_page_headers(request, response, page, len(items), total)
    return items


@router.get("/comparisons/{comparison_id}", summary="Get a stored comparison")
def get_comparison(
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    include: Include = (),
) -> ComparisonRead:
    """The comparison exactly as computed; `inputs_changed` says whether the study's
    current measurements differ from the ones it used."""
    return service.get_comparison(
        session,
        principal,
        study_id,
        comparison_id,
        include_ids="input_measurement_ids" in include,
    )


@router.get(
    "/comparisons/{comparison_id}/inputs",
    summary="The measurements a comparison used",
    response_model=Series,
    responses=csv_or_json(
        "The inputs as JSON, or as a tidy CSV with format=csv",
        "animal,arm,day,site,total_flux_ps [p/s],flags,measurement_id\r\n"
        "3466,Vehicle,7,whole_body,1250000.0,,9b2f…\r\n",
    ),
)
def comparison_inputs(
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    format: DataFormat = "json",
) -> Series | Response:
    """Exactly the measurements the comparison was computed from (value, animal, its arm at
    the time, day, QC flags, measurement id)."""
    series = service.comparison_inputs(session, principal, study_id, comparison_id)
    if format == "csv":
        return csv_response(series_csv(series))
    return series


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/comparisons/{comparison_id}/tables",
    summary="A comparison's results as one XLSX workbook",
    response_class=Response,
    responses={200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
)
@router.get(
    "/comparisons/{comparison_id}/tables.xlsx",
    summary="A comparison's results as one XLSX workbook (alias of …/tables?format=xlsx)",
    description=ALIAS,
    response_class=Response,
    responses={200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
)
def comparison_workbook(
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["xlsx"], Query(description="xlsx (the only form)")] = "xlsx",
) -> Response:
    """The CSV tables of the comparison (those computed) as sheets of one workbook, plus its
    parameters."""
    content, filename = service.comparison_workbook(session, principal, study_id, comparison_id)
    return Response(content, media_type=XLSX, headers=attachment_headers(filename))


@router.get(
    "/comparisons/{comparison_id}/tables/{table}",
    summary="A comparison's results as a CSV table",
    response_class=Response,
    responses=csv_or_json(
        "The table as CSV",
        "day,n_control,n_treated,scale,mean_difference,…,correction\r\n"
        "7.0,6,6,log10,-0.42,…,holm\r\n",
    ),
)
def comparison_table(
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    table: Literal["per_day", "animals", "mixed_model", "survival"],
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["csv"], Query(description="csv (the only form)")] = "csv",
) -> Response:
    """per_day: the per-day Welch and Mann–Whitney tests; animals: each animal's AUC,
    growth rate and survival time; mixed_model: coefficients, growth rates and contrasts
    with their df, variance components; survival: the Kaplan–Meier table with medians."""
    return csv_response(
        *service.comparison_table(session, principal, study_id, comparison_id, table)
    )


PRISM_RESPONSES = csv_or_json(
    "The Prism table: arms, then animals, then one row per day",
    "Day (total_flux_ps [p/s]),Vehicle,,1D11,\r\nday,c0,c1,t0,t1\r\n0,1.2e5,9.8e4,1.1e5,1.3e5\r\n",
)


@router.get(
    "/export/prism",
    summary="Prism-ready wide CSV",
    response_class=Response,
    responses=PRISM_RESPONSES,
)
@router.get(
    "/export/prism.csv",
    summary="Prism-ready wide CSV (alias of …/export/prism?format=csv)",
    description=ALIAS,
    response_class=Response,
    responses=PRISM_RESPONSES,
)
def export_prism(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Site = Site.whole_body,
    metric: Metric = "total_flux_ps",
    format: Annotated[Literal["csv"], Query(description="csv (the only form)")] = "csv",
) -> Response:
    """One row per day, one column group per arm, one sub-column per animal: paste into a
    Prism grouped XY table with replicate values."""
    content = service.prism_export(
        session,
        principal,
        study_id,
        site=site,
        metric=metric,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return csv_response(*content)


IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}, "image/svg+xml": {}},
        "description": "The plot (PNG shows directly in Swagger UI; SVG for papers).",
    }
}
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
PlotFormat = Annotated[Literal["png", "svg"], Query(description="png (default) or svg")]
PlotDay = Annotated[
    int | None, Query(ge=0, le=36500, description="Day since injection (waterfall only)")
]


@router.get(
    "/plots/{kind}",
    summary="Plot the study's arms",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def study_plot(
    study_id: uuid.UUID,
    kind: figures.StudyPlot,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Site = Site.whole_body,
    metric: Metric = "total_flux_ps",
    format: PlotFormat = "png",
    day: PlotDay = None,
) -> Response:
    """growth: geometric mean ± 95 % CI per arm on a log axis with animals faint behind;
    spaghetti: one panel per arm, one line per animal, deaths marked; waterfall: each
    animal's fold change from its first image to `day`."""
    content = figures.study_plot(
        session,
        principal,
        study_id,
        kind,
        site=site,
        metric=metric,
        fmt=format,
        day=day,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return Response(content, media_type=MEDIA_TYPES[format])


@router.get(
    "/comparisons/{comparison_id}/plots/{kind}",
    summary="Plot a stored comparison",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def comparison_plot(
    study_id: uuid.UUID,
    comparison_id: uuid.UUID,
    kind: figures.ComparisonPlot,
    session: SessionDep,
    principal: PrincipalDep,
    format: PlotFormat = "png",
    day: PlotDay = None,
) -> Response:
    """The comparison's growth curves, spaghetti, waterfall, Kaplan–Meier curves of
    metastasis-free survival (with numbers at risk) or incidence bars, drawn from exactly
    the measurements it used."""
    content = figures.comparison_plot(
        session, principal, study_id, comparison_id, kind, fmt=format, day=day
    )
    return Response(content, media_type=MEDIA_TYPES[format])
