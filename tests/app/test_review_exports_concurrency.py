"""Review of study exports: the same export deleted twice at once (a double click, two
people) is deleted once — one 204 and one 404, one audit event — on a database of its own
that both threads commit to (PostgreSQL: the second waited on the blob rows only, then
deleted nothing and recorded the deletion again)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from app.auth import Principal
from app.db import make_engine, make_session_factory, transaction
from app.errors import NotFound
from app.exports.service import DELETE_ACTION, EXPORT_JOB, delete_export
from app.labs.service import create_lab
from app.models import ApiKeyRole, AuditEvent, Blob, Job, JobState, Study
from app.storage import LocalBlobStore
from tests.app.test_auth import own_database  # noqa: F401 (a fixture)

SHA = ("a" * 64, "b" * 64)


def test_one_export_deleted_twice_at_once_is_deleted_once(
    own_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine = make_engine(own_database)
    factory = make_session_factory(engine)
    store = LocalBlobStore(tmp_path / "blobs")
    try:
        with transaction(factory) as session:
            lab, key, _ = create_lab(session, "Lab A")
            study = Study(
                lab_id=lab.id,
                name="BM-01",
                cell_line="MDA-MB-231",
                injection_model="intracardiac",
                day0=dt.date(2026, 7, 1),
            )
            session.add(study)
            session.add_all(Blob(sha256=s, size_bytes=1, media_type="text/csv") for s in SHA)
            session.flush()
            job = Job(
                lab_id=lab.id,
                created_by_key_id=key.id,
                kind=EXPORT_JOB,
                key="k" * 64,
                lock=f"study:{study.id}",
                params={"study_id": str(study.id), "options": {}},
                state=JobState.succeeded,
                result={"files": [{"sha256": SHA[0]}], "zip": {"sha256": SHA[1]}},
            )
            session.add(job)
            session.flush()
            principal = Principal(lab_id=lab.id, key_id=key.id, role=ApiKeyRole.admin)
            ids = (study.id, job.id)
        start = threading.Barrier(2)

        def delete() -> str:
            start.wait()
            try:
                with transaction(factory) as session:
                    delete_export(session, principal, store, *ids, reason="made twice")
                    time.sleep(0.5)  # both inside their transaction at once
            except NotFound:
                return "404"
            return "204"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(lambda _: delete(), range(2)))
        assert outcomes == ["204", "404"]
        with factory() as session:
            events = session.scalar(select(func.count()).where(AuditEvent.action == DELETE_ACTION))
            assert events == 1
            assert session.scalar(select(func.count()).select_from(Blob)) == 0
    finally:
        engine.dispose()
