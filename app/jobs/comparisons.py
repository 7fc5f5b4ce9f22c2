"""Comparisons as jobs (``POST /studies/{id}/comparisons`` with ``Prefer: respond-async``,
RFC 7240): the same computation as the synchronous answer, run by a job runner, its stored
comparison the job's result."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.analysis.schemas import ComparisonCreate
from app.analysis.service import create_comparison, resolve_arms
from app.auth import Principal
from app.config import Settings
from app.jobs import service as jobs
from app.jobs.runner import JobContext
from app.models import Job
from app.studies.service import get_study


def prefers_async(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks for ``respond-async`` (RFC 7240 §4.1)."""
    if not prefer:
        return False
    tokens = (p.split(";")[0].split("=")[0].strip().lower() for p in prefer.split(","))
    return "respond-async" in tokens


def submit_comparison(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    data: ComparisonCreate,
) -> Job:
    """Queue the comparison (the arms are checked now, so a wrong one answers at once)."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    resolve_arms(session, principal, study, data)
    return jobs.submit(
        session,
        principal,
        settings,
        kind="comparison",
        inputs={"study_id": str(study.id), "comparison": data.model_dump(mode="json")},
        lock=f"study:{study.id}",  # not while the study is being requantified
    )


def run_comparison_job(job: JobContext) -> None:
    """One step: compute and store the comparison, as the synchronous route does."""
    study_id = uuid.UUID(job.params["study_id"])
    data = ComparisonCreate.model_validate(job.params["comparison"])
    job.plan(lambda session: ["compare"])

    def compare(session: Session, result: dict[str, Any]) -> None:
        stored = create_comparison(
            session,
            job.read_factory,
            job.principal,
            study_id,
            data,
            failed_injection_factor=job.settings.failed_injection_factor,
        )
        result["comparison_id"] = str(stored.id)

    job.step(0, compare)
    job.result_url = f"/studies/{study_id}/comparisons/{job.result['comparison_id']}"
