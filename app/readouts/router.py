"""HTTP routes for end-of-study readouts: definitions, per-animal values, CSV import, arm
comparisons and the correlation with final BLI flux."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from app.analysis.router import IMAGE_RESPONSES, MEDIA_TYPES, PlotFormat
from app.deps import BlobStoreDep, PrincipalDep, ReasonHeader, SessionDep, SettingsDep
from app.labs.roles import EditorsOnly
from app.models import Site
from app.pagination import Page, PageDep, PageParams
from app.readouts import analysis, imports, service
from app.readouts.schemas import (
    Correction,
    ReadoutComparison,
    ReadoutComparisons,
    ReadoutCorrelation,
    ReadoutCreate,
    ReadoutImportResult,
    ReadoutRead,
    ReadoutUpdate,
    ReadoutValueCreate,
    ReadoutValueRead,
    ReadoutValueUpdate,
)
from app.responses import PROBLEM_RESPONSES, csv_or_json, csv_response

router = APIRouter(
    prefix="/studies/{study_id}/readouts", tags=["readouts"], responses=PROBLEM_RESPONSES
)

CsvFormat = Annotated[str, Query(pattern="^(json|csv)$", description="json (default) or csv")]
Threshold = Annotated[
    float,
    Query(
        ge=-1e15,
        le=1e15,
        description="An animal is positive (Fisher's test) when its value is above it.",
    ),
]
CorrectionQuery = Annotated[
    Correction, Query(description="Across the treated arms (each against its control).")
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Define a readout",
    dependencies=[EditorsOnly],
)
def create_readout(
    study_id: uuid.UUID, body: ReadoutCreate, session: SessionDep, principal: PrincipalDep
) -> ReadoutRead:
    """A per-animal end-of-study readout: name, unit, kind (numeric, count, binary), site."""
    return service.create_readout(session, principal, study_id, body)


@router.get("", summary="List readouts")
def list_readouts(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    include_archived: bool = False,
) -> Page[ReadoutRead]:
    """The study's readouts by name and site, a page at a time, with how many animals have a
    value of each."""
    readouts, total = service.list_readouts(
        session, principal, study_id, page, include_archived=include_archived
    )
    return Page[ReadoutRead](items=readouts, total=total, limit=page.limit, offset=page.offset)


def _values(
    values: list[ReadoutValueRead], total: int, page: PageParams, format: str
) -> Page[ReadoutValueRead] | Response:
    if format == "csv":
        return csv_response(service.values_csv(values))
    return Page[ReadoutValueRead](items=values, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/values",
    summary="Every readout value of the study",
    response_model=Page[ReadoutValueRead],
    responses=csv_or_json(
        "A JSON page, or with format=csv every value in a tidy table that imports again unchanged",
        "animal,arm,readout,site,value,unit,measured_on,note,value_id\r\n"
        "3466,Isotype IgG1,tumour area,right_hindlimb,2.31,mm²,2026-07-29,,9b2f…\r\n",
    ),
)
def list_all_values(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    format: CsvFormat = "json",
) -> Page[ReadoutValueRead] | Response:
    """One row per animal and readout, with who entered it and when, by readout, arm and
    animal (format=csv: every row)."""
    values, total = service.list_values(
        session, principal, study_id, None if format == "csv" else page
    )
    return _values(values, total, page, format)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import readout values from a CSV",
    responses={200: {"description": "Every row equals what is stored; nothing changed."}},
    dependencies=[EditorsOnly],
)
def import_values(
    study_id: uuid.UUID,
    file: Annotated[
        UploadFile, File(description="CSV/TSV: animal, readout, value [, site, date, unit, note]")
    ],
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    response: Response,
    replace: Annotated[
        bool,
        Form(
            description="A different value for an animal and readout that already has one is "
            "refused (409, naming the lines); true corrects the stored value (the audit trail "
            "keeps the old one, with X-Change-Reason if sent)."
        ),
    ] = False,
) -> ReadoutImportResult:
    """All or nothing: an unknown animal or readout, a value that does not fit its kind or a
    unit that differs is refused (422, naming each line). Rows equal to what is stored change
    nothing. Readouts must be defined first; the file is kept unchanged."""
    result = imports.import_readout_values(
        session,
        principal,
        store,
        study_id,
        file.file,
        filename=file.filename or "readouts.csv",
        replace=replace,
    )
    if result.created == result.replaced == 0:
        response.status_code = status.HTTP_200_OK
    return result


@router.get(
    "/comparisons",
    summary="Compare arms on every readout",
    response_model=ReadoutComparisons,
    responses=csv_or_json(
        "JSON, or with format=csv one row per readout and treated arm against its control",
        ",".join(analysis.COMPARISON_CSV_HEADER) + "\r\n",
    ),
)
def compare_all(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    threshold: Threshold = 0.0,
    correction: CorrectionQuery = "holm",
    format: CsvFormat = "json",
) -> ReadoutComparisons | Response:
    """The comparison of each readout (see GET …/readouts/{readout_id}/comparison) in one
    table; readouts with too few animals are listed under skipped, with the reason."""
    result = analysis.compare_all(
        session, principal, study_id, threshold=threshold, correction=correction
    )
    if format == "csv":
        return csv_response(analysis.comparison_csv(result.readouts))
    return result


@router.get("/{readout_id}", summary="Get a readout")
def get_readout(
    study_id: uuid.UUID, readout_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ReadoutRead:
    """One readout of a study."""
    return service.read_readout(session, principal, study_id, readout_id)


@router.patch("/{readout_id}", summary="Update a readout", dependencies=[EditorsOnly])
def update_readout(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    body: ReadoutUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ReadoutRead:
    """Rename or redefine a readout (a new kind must fit its values); audited."""
    return service.update_readout(session, principal, study_id, readout_id, body, reason=reason)


@router.post("/{readout_id}/archive", summary="Archive a readout", dependencies=[EditorsOnly])
def archive_readout(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ReadoutRead:
    """Hide a readout from listings and imports; its values stay."""
    return service.archive_readout(session, principal, study_id, readout_id, reason=reason)


@router.get(
    "/{readout_id}/values",
    summary="A readout's values",
    response_model=Page[ReadoutValueRead],
    responses=csv_or_json(
        "A JSON page, or with format=csv every value in a tidy table",
        "animal,arm,readout,site,value,unit,measured_on,note,value_id\r\n",
    ),
)
def list_values(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    format: CsvFormat = "json",
) -> Page[ReadoutValueRead] | Response:
    """Every animal's value of one readout, by arm and animal (format=csv: every row)."""
    values, total = service.list_values(
        session, principal, study_id, None if format == "csv" else page, readout_id=readout_id
    )
    return _values(values, total, page, format)


@router.post(
    "/{readout_id}/values",
    status_code=status.HTTP_201_CREATED,
    summary="Record an animal's value",
    dependencies=[EditorsOnly],
)
def create_value(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    body: ReadoutValueCreate,
    session: SessionDep,
    principal: PrincipalDep,
) -> ReadoutValueRead:
    """One value per animal and readout; a second is refused (409): correct the first."""
    return service.create_value(session, principal, study_id, readout_id, body)


@router.patch(
    "/{readout_id}/values/{value_id}",
    summary="Correct a value",
    dependencies=[EditorsOnly],
)
def update_value(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    value_id: uuid.UUID,
    body: ReadoutValueUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> ReadoutValueRead:
    """A correction needs an X-Change-Reason; the audit trail keeps the old value."""
    return service.update_value(
        session, principal, study_id, readout_id, value_id, body, reason=reason
    )


@router.delete(
    "/{readout_id}/values/{value_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a value entered by mistake",
    dependencies=[EditorsOnly],
)
def delete_value(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    value_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> Response:
    """Needs an X-Change-Reason; the audit trail keeps the value removed."""
    service.delete_value(session, principal, study_id, readout_id, value_id, reason=reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{readout_id}/comparison",
    summary="Compare arms on a readout",
    response_model=ReadoutComparison,
    responses=csv_or_json(
        "JSON, or with format=csv one row per treated arm against its control",
        ",".join(analysis.COMPARISON_CSV_HEADER) + "\r\n",
    ),
)
def compare(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    threshold: Threshold = 0.0,
    correction: CorrectionQuery = "holm",
    format: CsvFormat = "json",
) -> ReadoutComparison | Response:
    """Per arm n, mean, SD, median, IQR and positives; each treatment arm against its control:
    Welch t with the mean difference's 95 % CI, Mann-Whitney U (exact without ties) with the
    Hodges-Lehmann shift, Fisher's exact test on positive animals with the odds ratio; Holm
    across treatment arms. Binary readouts: Fisher only."""
    result = analysis.compare(
        session, principal, study_id, readout_id, threshold=threshold, correction=correction
    )
    return csv_response(analysis.comparison_csv([result])) if format == "csv" else result


@router.get(
    "/{readout_id}/correlation",
    summary="Correlate a readout with final BLI flux",
    response_model=ReadoutCorrelation,
    responses=csv_or_json(
        "JSON, or with format=csv one row per site",
        ",".join(analysis.CORRELATION_CSV_HEADER) + "\r\n",
    ),
)
def correlate(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Annotated[
        Site | None,
        Query(description="Default: the readout's site, else every site with images."),
    ] = None,
    format: CsvFormat = "json",
) -> ReadoutCorrelation | Response:
    """Spearman rho, p and n between the readout and each animal's final total flux (its last
    image on or before the readout date) per site, with the points."""
    result = analysis.correlate(
        session,
        principal,
        study_id,
        readout_id,
        site=site,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return csv_response(analysis.correlation_csv(result)) if format == "csv" else result


@router.get(
    "/{readout_id}/plots/correlation",
    summary="Plot a readout against final BLI flux",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def correlation_plot(
    study_id: uuid.UUID,
    readout_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Annotated[Site | None, Query(description="Default as for the correlation.")] = None,
    format: PlotFormat = "png",
) -> Response:
    """Scatter of the readout against final total flux on a log10 axis, one panel per site,
    arms in colour, Spearman rho, p and n in each title."""
    content = analysis.correlation_plot(
        session,
        principal,
        study_id,
        readout_id,
        site=site,
        fmt=format,
        failed_injection_factor=settings.failed_injection_factor,
    )
    return Response(content, media_type=MEDIA_TYPES[format])
