"""What an export is asked for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.analysis.schemas import MAX_SIGNAL
from app.jobs.schemas import JobProgress
from app.measurements.schemas import Metric
from app.models import Job, JobState, Site
from app.schemas import InputModel

#: Sites that are no anatomical region: never summarised on their own.
NOT_A_SITE = frozenset({Site.background, Site.unassigned})


class ExportCreate(InputModel):
    """The parts of a study export; the defaults give the measurements, per-arm summaries,
    Prism tables, every stored comparison and the audit trail (overlays only when asked)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {},
                {"sites": ["whole_body", "spine"], "overlays": True, "comparisons": False},
            ]
        }
    )

    sites: list[Site] | None = Field(
        default=None,
        min_length=1,
        max_length=len(Site),
        description="Sites with a summary and a Prism table each; default: every site the "
        "study has current measurements of.",
    )
    metric: Metric = Field(
        default="total_flux_ps", description="Metric of the summaries and Prism tables."
    )
    summary_scale: Literal["log10", "linear"] = Field(
        default="log10", description="Scale of the per-arm summaries (the summary's `scale`)."
    )
    summary_floor: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SIGNAL,
        description="Values below this are raised to it in the summaries (the summary's "
        "`floor`): a log10 summary of a site with a zero value needs one, else that site's "
        "summary is listed as skipped in the manifest with the reason.",
    )
    comparisons: bool = Field(
        default=True,
        description="Each stored comparison's CSV tables, its XLSX workbook and its growth "
        "plot (PNG).",
    )
    overlays: bool = Field(
        default=False,
        description="One overlay PNG per acquisition with an image, all on ONE study-wide "
        "colour range (its vmin/vmax are in the manifest).",
    )
    overlay_scale: Literal["log", "linear"] = Field(
        default="log", description="Colour scale of the overlays."
    )

    @field_validator("sites")
    @classmethod
    def _regions_once(cls, sites: list[Site] | None) -> list[Site] | None:
        if sites is None:
            return None
        wrong = sorted(s.value for s in set(sites) & NOT_A_SITE)
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} is not an anatomical site; name sites such as whole_body "
                "or spine, or leave sites out for every site with measurements"
            )
        return sorted(set(sites), key=list(Site).index)


class ExportZip(BaseModel):
    filename: str = Field(description="The file name the download is given.")
    sha256: str = Field(description="SHA-256 of the ZIP.")
    size_bytes: int
    files: int = Field(description="Files in the ZIP, MANIFEST.json included.")


class ExportRead(BaseModel):
    """One export of a study, as listed: its job's state and progress, its options, and
    once built the ZIP's size, SHA-256 and download link."""

    id: uuid.UUID = Field(description="The export's job id (GET /jobs/{id}).")
    state: JobState
    progress: JobProgress
    options: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    zip: ExportZip | None = Field(description="The ZIP once built, else null.")
    download_url: str | None = Field(description="GET it for the ZIP once built.")
    error: dict[str, Any] | None = Field(description="Why it failed (problem+json).")

    @classmethod
    def of(cls, job: Job) -> ExportRead:
        made = (job.result or {}).get("zip")
        built = job.state == JobState.succeeded and made is not None
        return cls(
            id=job.id,
            state=job.state,
            progress=JobProgress(done=job.progress_done, total=job.progress_total),
            options=job.params.get("options", {}),
            created_at=job.created_at,
            finished_at=job.finished_at,
            zip=ExportZip.model_validate(made) if built else None,
            download_url=job.result_url if built else None,
            error=job.error,
        )
