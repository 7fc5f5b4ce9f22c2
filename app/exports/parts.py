"""The files of a study export: which ones (planned once, when the job first starts) and
what produces each — the service function behind the route the manifest names, with the
same parameters, so a file in the ZIP is byte for byte what that route answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.acquisitions import repository as acquisitions
from app.acquisitions.images import load_calibrated
from app.acquisitions.service import overlay_png
from app.analysis import figures
from app.analysis import service as analysis
from app.analysis.exports import TABLE_BUILDERS, summary_csv
from app.analysis.results import ComparisonResults
from app.audit.schemas import AuditFilters
from app.audit.service import events_csv, list_events
from app.auth import Principal
from app.config import Settings
from app.errors import Unprocessable
from app.exports.colour_range import NoPixels, study_colour_range
from app.exports.schemas import NOT_A_SITE, ExportCreate
from app.measurements import repository as measurement_queries
from app.measurements.service import list_measurements, measurements_csv
from app.models import Acquisition, Comparison, ImagingSession, Roi, Site, Study
from app.storage import BlobStore

Part = dict[str, Any]
"""One planned file: ``path`` in the ZIP, ``kind`` (which producer), ``route`` and
``parameters`` (the GET that answers the same bytes), ``media_type``, and ``args`` (ids)."""

CSV, PNG = "text/csv", "image/png"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OVERLAY_DPI = 100  # the overlay route's default


def sites_with_data(session: Session, study: Study) -> list[Site]:
    """The anatomical sites the study has current measurements of, in the Site order."""
    query = measurement_queries.current(measurement_queries.of_study(study.id, Roi.site))
    found = set(session.scalars(query.distinct())) - NOT_A_SITE
    return [s for s in Site if s in found]


def _images(session: Session, study: Study) -> list[tuple[Acquisition, int]]:
    """The study's acquisitions that have an image, with their day, in order of day."""
    rows = session.execute(
        acquisitions.join_session(select(Acquisition, ImagingSession.acquired_on))
        .where(ImagingSession.study_id == study.id)
        .order_by(ImagingSession.acquired_on, Acquisition.created_at, Acquisition.id)
    ).all()
    files = acquisitions.image_files(session, [a.id for a, _ in rows])
    return [(a, (on - study.day0).days) for a, on in rows if a.id in files]


def check_options(session: Session, study: Study, options: ExportCreate) -> None:
    """Refuse (422) an export with nothing to export, sites without measurements, or
    overlays of a study without images — before anything is queued."""
    have = sites_with_data(session, study)
    if not have:
        raise Unprocessable(
            f"Study {study.name!r} has no measurements yet, so there is nothing to export; "
            "upload images or import measurements first."
        )
    missing = [s.value for s in options.sites or [] if s not in have]
    if missing:
        raise Unprocessable(
            f"Study {study.name!r} has no current measurements at {', '.join(missing)}; "
            f"it has them at {', '.join(s.value for s in have)}.",
            errors=[{"field": "sites", "message": f"no measurements at {', '.join(missing)}"}],
        )
    if options.overlays and not _images(session, study):
        raise Unprocessable(
            f"Study {study.name!r} has no images (its measurements were imported), so there "
            "are no overlays to draw; leave overlays out.",
            errors=[{"field": "overlays", "message": "the study has no images"}],
        )


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "file"


def plan(
    session: Session,
    store: BlobStore,
    settings: Settings,
    study: Study,
    options: ExportCreate,
) -> tuple[list[Part], tuple[float, float] | None]:
    """Every file of the export in order, and the overlays' study-wide colour range
    (``imaging.colour_range`` over every image, read one image at a time: None without
    overlays)."""
    base = f"/studies/{study.id}"
    parts: list[Part] = [
        _part("measurements.csv", "measurements", f"{base}/measurements", {"format": "csv"}, CSV)
    ]
    for site in options.sites or sites_with_data(session, study):
        common = {"site": site.value, "metric": options.metric, "format": "csv"}
        name = f"{site.value}-{options.metric}.csv"
        parts.append(
            _part(
                f"summary/{name}",
                "summary",
                f"{base}/summary",
                {**common, "scale": options.summary_scale}
                | ({} if options.summary_floor is None else {"floor": options.summary_floor}),
                CSV,
            )
        )
        parts.append(_part(f"prism/{name}", "prism", f"{base}/export/prism", common, CSV))
    if options.comparisons:
        parts += _comparison_parts(session, study)
    colour_range = None
    if options.overlays:
        overlays, colour_range = _overlay_parts(session, store, settings, study, options)
        parts += overlays
    parts.append(_part("audit-trail.csv", "audit", f"{base}/audit", {"format": "csv"}, CSV))
    return parts, colour_range


def _part(
    path: str,
    kind: str,
    route: str,
    parameters: dict[str, Any],
    media_type: str,
    **args: str,
) -> Part:
    return {
        "path": path,
        "kind": kind,
        "route": route,
        "parameters": parameters,
        "media_type": media_type,
        "args": args,
    }


def _comparison_parts(session: Session, study: Study) -> list[Part]:
    parts: list[Part] = []
    rows = session.scalars(
        select(Comparison)
        .where(Comparison.study_id == study.id)
        .order_by(Comparison.created_at, Comparison.id)
    )
    for row in rows:
        route = f"/studies/{study.id}/comparisons/{row.id}"
        folder = f"comparisons/{str(row.id)[:8]}"
        results = ComparisonResults.model_validate(row.results)
        cid = str(row.id)
        for table, build in TABLE_BUILDERS.items():
            if build(results) is not None:  # tables of analyses that were run
                parts.append(
                    _part(
                        f"{folder}/{table}.csv",
                        "comparison_table",
                        f"{route}/tables/{table}",
                        {"format": "csv"},
                        CSV,
                        comparison_id=cid,
                        table=table,
                    )
                )
        parts.append(
            _part(
                f"{folder}/tables.xlsx",
                "comparison_workbook",
                f"{route}/tables.xlsx",
                {},
                XLSX,
                comparison_id=cid,
            )
        )
        parts.append(
            _part(
                f"{folder}/growth.png",
                "comparison_plot",
                f"{route}/plots/growth",
                {"format": "png"},
                PNG,
                comparison_id=cid,
            )
        )
    return parts


def _overlay_parts(
    session: Session,
    store: BlobStore,
    settings: Settings,
    study: Study,
    options: ExportCreate,
) -> tuple[list[Part], tuple[float, float]]:
    images = _images(session, study)

    def radiances() -> Iterator[np.ndarray]:
        for acquisition, _ in images:
            yield load_calibrated(session, store, settings, acquisition)[1].radiance

    try:
        vmin, vmax = study_colour_range(radiances, scale=options.overlay_scale)
    except NoPixels as exc:
        raise Unprocessable(f"Cannot choose one colour range for the overlays: {exc}.") from exc
    parameters = {
        "format": "png",
        "scale": options.overlay_scale,
        "vmin": vmin,
        "vmax": vmax,
        "dpi": OVERLAY_DPI,
    }
    parts = []
    paths: set[str] = set()
    for acquisition, day in images:
        name = _file_name(acquisition.click_number or str(acquisition.id)[:8])
        stem = f"overlays/day{day:03d}-{name}-{acquisition.view.value}"
        # images named alike on one day and view (a TIFF's name is the instrument's, and
        # the file name drops characters): told apart by their id, never one path twice
        tried = (stem, f"{stem}-{str(acquisition.id)[:8]}", f"{stem}-{acquisition.id}")
        path = next(f"{p}.png" for p in tried if f"{p}.png" not in paths)
        paths.add(path)
        route = (
            f"/studies/{study.id}/sessions/{acquisition.session_id}/acquisitions/"
            f"{acquisition.id}/overlay"
        )
        parts.append(
            _part(
                path,
                "overlay",
                route,
                parameters,
                PNG,
                session_id=str(acquisition.session_id),
                acquisition_id=str(acquisition.id),
            )
        )
    return parts, (vmin, vmax)


def produce(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    part: Part,
) -> bytes:
    """The file's bytes, from the service function its route calls, with its parameters."""
    kind, params, args = part["kind"], part["parameters"], part["args"]
    if kind == "measurements":
        rows, _ = list_measurements(
            session,
            principal,
            study_id,
            None,
            failed_injection_factor=settings.failed_injection_factor,
        )
        return measurements_csv(rows).encode()
    if kind == "summary":
        summary = analysis.summary(
            session,
            principal,
            study_id,
            site=Site(params["site"]),
            metric=params["metric"],
            scale=params["scale"],
            floor=params.get("floor"),
            baseline=None,
            failed_injection_factor=settings.failed_injection_factor,
        )
        return summary_csv(summary).encode()
    if kind == "prism":
        text, _ = analysis.prism_export(
            session,
            principal,
            study_id,
            site=Site(params["site"]),
            metric=params["metric"],
            failed_injection_factor=settings.failed_injection_factor,
        )
        return text.encode()
    if kind == "comparison_table":
        text, _ = analysis.comparison_table(
            session, principal, study_id, uuid.UUID(args["comparison_id"]), args["table"]
        )
        return text.encode()
    if kind == "comparison_workbook":
        content, _ = analysis.comparison_workbook(
            session, principal, study_id, uuid.UUID(args["comparison_id"])
        )
        return content
    if kind == "comparison_plot":
        return figures.comparison_plot(
            session, principal, study_id, uuid.UUID(args["comparison_id"]), "growth", fmt="png"
        )
    if kind == "overlay":
        return overlay_png(
            session,
            principal,
            store,
            settings,
            study_id,
            uuid.UUID(args["session_id"]),
            uuid.UUID(args["acquisition_id"]),
            scale=params["scale"],
            vmin=params["vmin"],
            vmax=params["vmax"],
            dpi=params["dpi"],
            format=params["format"],
        )
    if kind == "audit":
        events, _ = list_events(
            session, principal, AuditFilters(), None, study_id=study_id, scope="study"
        )
        return events_csv(events).encode()
    raise ValueError(f"unknown export part {kind!r}")
