"""A study's exports listed (``GET /studies/{id}/exports``) and deleted (``DELETE
…/exports/{job_id}``): only the files nothing else references leave the store, fsck stays
clean; and the comparison workbook, the same bytes for the same comparison. On both
databases, the test playing the worker (tests/app/jobs.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import types
import uuid
from typing import Any

import openpyxl.writer.excel
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.analysis.exports import comparison_xlsx
from app.analysis.results import ComparisonResults
from app.blobs import fsck
from app.deps import get_read_session_factory
from app.exports.service import unreferenced
from app.models import (
    Acquisition,
    AcquisitionFile,
    AuditEvent,
    Blob,
    Comparison,
    ImagingSession,
    Job,
    JobState,
    Lab,
    Measurement,
)
from tests.app.factories import make_study
from tests.app.jobs import finished
from tests.app.problems import assert_problem, row_counts
from tests.app.test_analysis_api import study  # noqa: F401
from tests.app.test_exports import _export

REASON = {"X-Change-Reason": "export made with the wrong sites"}


def _delete(client: TestClient, job: dict[str, Any], **headers: str) -> Any:
    study_id = job["inputs"]["study_id"]
    return client.delete(f"/studies/{study_id}/exports/{job['id']}", headers=headers)


def _kept(job: dict[str, Any]) -> dict[str, str]:
    """Path → SHA-256 of every file the export kept, its ZIP included."""
    files = {f["path"]: f["sha256"] for f in job["result"]["files"]}
    return files | {"export.zip": job["result"]["zip"]["sha256"]}


def _fsck(client: TestClient) -> Any:
    app: Any = client.app
    factory: sessionmaker[Session] = app.dependency_overrides[get_read_session_factory]()
    return fsck(factory, app.state.blob_store)


def test_a_studys_exports_are_listed_newest_first_with_their_zip(
    client: TestClient,
    other_lab: TestClient,
    study: dict[str, Any],  # noqa: F811
) -> None:
    built = finished(client, _export(client, study["id"], comparisons=False))
    waiting = _export(client, study["id"], sites=["whole_body"], comparisons=False).json()
    listed = client.get(f"/studies/{study['id']}/exports")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["total"], [e["id"] for e in body["items"]]) == (2, [waiting["id"], built["id"]])
    newest, oldest = body["items"]
    assert (newest["state"], newest["progress"], newest["zip"], newest["download_url"]) == (
        "queued",
        {"done": 0, "total": None},
        None,
        None,
    )
    assert newest["options"]["sites"] == ["whole_body"]
    assert oldest["state"] == "succeeded" and oldest["progress"] == {"done": 5, "total": 5}
    assert oldest["zip"] == built["result"]["zip"]
    assert oldest["download_url"] == built["result_url"]
    assert oldest["created_at"] == built["created_at"]
    assert oldest["finished_at"] == built["finished_at"]
    download = client.get(oldest["download_url"])
    assert len(download.content) == oldest["zip"]["size_bytes"]
    # paged as every list; another study has none; another lab sees no study
    page = client.get(f"/studies/{study['id']}/exports", params={"limit": 1, "offset": 1})
    assert [e["id"] for e in page.json()["items"]] == [built["id"]]
    assert page.json()["total"] == 2
    other = make_study(client, name="Another study")
    assert client.get(f"/studies/{other['id']}/exports").json()["total"] == 0
    assert_problem(other_lab.get(f"/studies/{study['id']}/exports"), 404)


def _raw_click_with(db_session: Session, study_id: str, sha256: str) -> None:
    """A raw file of one of the study's acquisitions with these bytes (as if a click had
    brought the very same file)."""
    acquisition = db_session.scalars(
        select(Acquisition.id)
        .join(ImagingSession, ImagingSession.id == Acquisition.session_id)
        .where(ImagingSession.study_id == uuid.UUID(study_id))
        .limit(1)
    ).one()
    db_session.add(
        AcquisitionFile(
            acquisition_id=acquisition, role="extra", blob_sha256=sha256, filename="same.csv"
        )
    )
    db_session.flush()


def test_deleting_removes_only_the_files_nothing_else_uses(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    job = finished(client, _export(client, study["id"], comparisons=False))
    other = finished(client, _export(client, study["id"], comparisons=False, summary_floor=1))
    kept, others = _kept(job), _kept(other)
    # the prism table is the same file in both exports (the floor only changes summaries);
    # the measurements CSV is also a raw file of an acquisition
    assert (
        kept["prism/whole_body-total_flux_ps.csv"] == others["prism/whole_body-total_flux_ps.csv"]
    )
    assert kept["summary/whole_body-total_flux_ps.csv"] not in others.values()
    _raw_click_with(db_session, study["id"], kept["measurements.csv"])
    store = client.app.state.blob_store  # type: ignore[attr-defined]
    assert all(store.exists(sha) for sha in kept.values())
    blobs_before = row_counts(db_session, Blob)[0]

    deleted = _delete(client, job, **REASON)
    assert deleted.status_code == 204, deleted.text
    shared = {
        kept["measurements.csv"],  # a raw click's file
        kept["prism/whole_body-total_flux_ps.csv"],  # the other export's
        kept["audit-trail.csv"],  # unchanged between the two exports: the other's too
    }
    assert shared <= set(others.values()) | {kept["measurements.csv"]}
    gone = set(kept.values()) - shared
    assert kept["export.zip"] in gone and kept["summary/whole_body-total_flux_ps.csv"] in gone
    assert {sha for sha in kept.values() if store.exists(sha)} == shared
    rows = set(db_session.scalars(select(Blob.sha256).where(Blob.sha256.in_(kept.values()))))
    assert rows == shared
    assert row_counts(db_session, Blob)[0] == blobs_before - len(gone)
    report = _fsck(client)
    assert (report.missing, report.corrupt, report.orphans) == ([], [], [])
    # the export is gone; the other one still downloads, whole
    assert db_session.get(Job, uuid.UUID(job["id"])) is None
    assert_problem(client.get(job["result_url"]), 404)
    assert_problem(_delete(client, job, **REASON), 404)
    assert client.get(other["result_url"]).status_code == 200
    listed = client.get(f"/studies/{study['id']}/exports").json()["items"]
    assert [e["id"] for e in listed] == [other["id"]]
    # audited with the reason and what was removed
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "delete_export")).one()
    assert event.reason == REASON["X-Change-Reason"]
    assert event.object_id == uuid.UUID(study["id"])
    assert event.changes["export"] == job["id"]
    assert event.changes["zip"]["sha256"] == kept["export.zip"]
    assert (event.changes["files_removed"], event.changes["files_kept_shared"]) == (
        len(gone),
        len(shared),
    )


def test_the_last_export_of_a_file_takes_it_with_it(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    job = finished(client, _export(client, study["id"], comparisons=False))
    kept = _kept(job)
    assert _delete(client, job, **REASON).status_code == 204
    store = client.app.state.blob_store  # type: ignore[attr-defined]
    assert [sha for sha in kept.values() if store.exists(sha)] == []
    report = _fsck(client)
    assert (report.missing, report.corrupt, report.orphans) == ([], [], [])
    # the measurements CSV imported into the study (a raw file) was never an export's: kept
    imported = db_session.scalars(select(AcquisitionFile.blob_sha256)).all()
    assert imported and all(store.exists(sha) for sha in imported)


def test_every_kind_of_reference_keeps_a_file(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    """One file per place a SHA-256 is written, each kept; a file only a deleted export's
    audit record names, and one nothing names, are not."""
    sha = {name: hashlib.sha256(name.encode()).hexdigest() for name in _PLACES}
    db_session.add_all(Blob(sha256=h, size_bytes=1, media_type="text/plain") for h in sha.values())
    db_session.flush()
    lab = db_session.scalars(select(Lab.id)).first()
    measurement = db_session.scalars(select(Measurement)).first()
    assert lab is not None and measurement is not None
    _raw_click_with(db_session, study["id"], sha["raw file"])
    measurement.parameters = {**measurement.parameters, "sha256": sha["measurement"]}
    for action, name in (("import", "audit event"), ("delete_export", "deleted export")):
        db_session.add(
            AuditEvent(
                lab_id=lab,
                action=action,
                object_type="study",
                object_id=uuid.UUID(study["id"]),
                changes={"sha256": sha[name]},
            )
        )
    db_session.add(
        Job(
            lab_id=lab,
            kind="export",
            key="0" * 64,
            lock="study:x",
            params={},
            state=JobState.succeeded,
            result={
                "files": [{"sha256": sha["export file"]}, {"sha256": sha["export file 2"]}],
                "zip": {"sha256": sha["export zip"]},
            },
        )
    )
    db_session.flush()
    assert unreferenced(db_session, sorted(sha.values())) == {
        sha["deleted export"],
        sha["nothing"],
    }


_PLACES = (
    "raw file",
    "measurement",
    "audit event",
    "export file",
    "export file 2",
    "export zip",
    "deleted export",
    "nothing",
)


def test_an_export_being_built_cannot_be_deleted(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    done = finished(client, _export(client, study["id"], comparisons=False))
    queued = _export(client, study["id"], sites=["whole_body"], comparisons=False).json()
    before = row_counts(db_session, Job, Blob, AuditEvent)
    assert_problem(_delete(client, queued, **REASON), 409, "still queued")
    running = db_session.get_one(Job, uuid.UUID(queued["id"]))
    running.state = "running"  # type: ignore[assignment]
    db_session.flush()
    assert_problem(_delete(client, queued, **REASON), 409, "still running")
    # nor another export of the study while one is built: it may be storing the same files
    assert_problem(_delete(client, done, **REASON), 409, "being built")
    assert row_counts(db_session, Job, Blob, AuditEvent) == before


def test_deleting_needs_an_editor_a_reason_and_the_lab(
    client: TestClient,
    other_lab: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    job = finished(client, _export(client, study["id"], comparisons=False))
    viewer = client.post("/keys", json={"name": "reader", "role": "viewer"}).json()
    before = row_counts(db_session, Job, Blob, AuditEvent)
    as_viewer = {"Authorization": f"Bearer {viewer['key']}"} | REASON
    assert_problem(_delete(client, job, **as_viewer), 403)
    assert_problem(_delete(other_lab, job, **REASON), 404)
    assert_problem(_delete(client, job), 422, "X-Change-Reason")
    assert row_counts(db_session, Job, Blob, AuditEvent) == before
    assert client.get(job["result_url"]).status_code == 200


def _comparison(client: TestClient, made_for: dict[str, Any]) -> dict[str, Any]:
    made = client.post(
        f"/studies/{made_for['id']}/comparisons",
        json={"treatment_arm_id": made_for["treatment"]["id"], "analyses": ["per_day", "auc"]},
    )
    assert made.status_code == 201, made.text
    return made.json()


def test_the_same_comparison_gives_the_same_workbook_dated_when_it_was_made(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
    monkeypatch: Any,
) -> None:
    comparison = _comparison(client, study)
    row = db_session.get_one(Comparison, uuid.UUID(comparison["id"]))
    results = ComparisonResults.model_validate(row.results)
    first = comparison_xlsx(results, row.parameters, row.created_at)
    route = f"/studies/{study['id']}/comparisons/{comparison['id']}/tables.xlsx"
    answered = client.get(route)
    assert answered.status_code == 200, answered.text

    # an hour later by every clock openpyxl and zipfile read
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    class _Later(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Any:
            return later if tz is not None else later.replace(tzinfo=None)

    monkeypatch.setattr(
        openpyxl.writer.excel,
        "datetime",
        types.SimpleNamespace(datetime=_Later, timezone=dt.timezone),
    )
    real_time = __import__("time").time
    monkeypatch.setattr("time.time", lambda: real_time() + 3600)
    assert comparison_xlsx(results, row.parameters, row.created_at) == first
    assert client.get(route).content == answered.content

    properties = load_workbook(io.BytesIO(first), read_only=True).properties
    # the comparison's time, to the second (the precision of W3CDTF as openpyxl writes it)
    made = dt.datetime.fromisoformat(comparison["created_at"]).astimezone(dt.UTC)
    assert properties.created == properties.modified == made.replace(tzinfo=None, microsecond=0)


def test_a_download_racing_a_delete_is_told_it_was_deleted(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
) -> None:
    """A DELETE removes the files just before it commits: a download reading the job row as
    it was then finds no ZIP in the store — 404 saying so, not 500."""
    job = finished(client, _export(client, study["id"], comparisons=False))
    store = client.app.state.blob_store  # type: ignore[attr-defined]
    store.remove(job["result"]["zip"]["sha256"])  # the DELETE's file removal, not yet committed
    answer = client.get(f"/studies/{study['id']}/exports/{job['id']}")
    assert_problem(answer, 404, "was just deleted")
