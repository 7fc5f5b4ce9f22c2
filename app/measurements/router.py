"""HTTP routes to import measurements and read per-animal series."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from app import idempotency
from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.idempotency import IdempotencyKey
from app.labs.roles import EditorsOnly
from app.measurements import imports, service
from app.measurements.schemas import ImportFormat, ImportResult, MeasurementRead, Metric, Series
from app.models import ImageCombination, Site
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES, csv_or_json, csv_response
from app.schemas import DayQuery

router = APIRouter(prefix="/studies/{study_id}", tags=["measurements"], responses=PROBLEM_RESPONSES)


@router.post(
    "/measurements/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import measurements from a CSV",
    responses={200: {"description": "This exact file was imported before; nothing changed."}},
    dependencies=[EditorsOnly],
)
def import_measurements(
    study_id: uuid.UUID,
    file: Annotated[
        UploadFile, File(description="CSV/TSV with animal, day or date, site, total_flux_ps")
    ],
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    response: Response,
    format: Annotated[
        ImportFormat,
        Form(
            description="tidy: columns animal, day (or date), site, total_flux_ps "
            "[, radiance_mean, view, flags]"
        ),
    ] = "tidy",
    replace: Annotated[
        bool,
        Form(
            description="A row for an animal, day, site and view that already has a value is "
            "refused (409, with the lines); true supersedes the stored value instead (it stays "
            "as history)."
        ),
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> ImportResult:
    """Bring measurements from a spreadsheet or an earlier analysis into a study, before or
    without images. The file is stored unchanged; importing the same file again changes nothing.
    A negative total flux is accepted only with the flag background_subtracted."""
    result = imports.import_measurements(
        session,
        principal,
        store,
        study_id,
        file.file,
        filename=file.filename or "upload.csv",
        file_format=format,
        replace=replace,
        idempotency_key=idempotency_key,
    )
    if result.already_imported:
        response.status_code = status.HTTP_200_OK
    idempotency.mark_replay(session, response)
    return result


@router.get(
    "/series",
    summary="Per-animal series",
    response_model=Series,
    responses=csv_or_json(
        "The series as JSON, or as a tidy CSV with format=csv",
        "animal,arm,day,site,total_flux_ps [p/s],flags,measurement_id\r\n"
        "3466,Vehicle,7,whole_body,1250000.0,,9b2f…\r\n",
    ),
)
def get_series(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    site: Site = Site.whole_body,
    metric: Metric = "total_flux_ps",
    arm_id: Annotated[list[uuid.UUID] | None, Query(description="Only these arms")] = None,
    combine: Annotated[
        ImageCombination | None,
        Query(
            description="How an animal's images of a day are combined; default: the study's "
            "image_combination setting."
        ),
    ] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Series | Response:
    """One point per animal and day for a site and metric (total flux in p/s or average
    radiance in p/s/cm²/sr): its images of that day combined by the study's rule (said in
    image_combination, with the images and views used), with QC flags, in day order. A point
    whose total flux is OSTEOLUX_FAILED_INJECTION_FACTOR times below the animal's previous and
    next days and its arm's median that day is flagged suspected_failed_injection and kept.
    format=csv gives a tidy CSV."""
    result = service.series(
        session,
        principal,
        study_id,
        site=site,
        metric=metric,
        arm_ids=arm_id,
        combine=combine,
        failed_injection_factor=settings.failed_injection_factor,
    )
    if format == "csv":
        return csv_response(service.series_csv(result))
    return result


@router.get(
    "/measurements",
    summary="List measurements",
    response_model=Page[MeasurementRead],
    responses=csv_or_json(
        "A JSON page, or with format=csv every matching row in Living Image's columns first",
        "Image Number,ROI,Total Flux [p/s],Avg Radiance [p/s/cm²/sr],…,Measurement ID\r\n"
        "DG20220105114235,3466 spine,250000.0,3100.5,…,9b2f…\r\n",
    ),
)
def list_measurements(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    page: PageDep,
    arm_id: uuid.UUID | None = None,
    animal_id: uuid.UUID | None = None,
    site: Site | None = None,
    day_from: DayQuery = None,
    day_to: DayQuery = None,
    flag: Annotated[str | None, Query(description="Only measurements with this QC flag")] = None,
    include_history: Annotated[
        bool, Query(description="Also superseded measurements (after ROI edits or recalculation)")
    ] = False,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Page[MeasurementRead] | Response:
    """Every ROI measurement with its image, animal, arm, site, day, QC flags and method.
    format=csv gives all matching rows with Living Image's export columns first."""
    rows, total = service.list_measurements(
        session,
        principal,
        study_id,
        None if format == "csv" else page,  # the CSV holds every matching row
        arm_id=arm_id,
        animal_id=animal_id,
        site=site,
        day_from=day_from,
        day_to=day_to,
        flag=flag,
        include_history=include_history,
        failed_injection_factor=settings.failed_injection_factor,
    )
    if format == "csv":
        return csv_response(service.measurements_csv(rows))
    return Page[MeasurementRead](items=rows, total=total, limit=page.limit, offset=page.offset)
