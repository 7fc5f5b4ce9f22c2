"""``fsck``: every stored blob is checked against its row (SHA-256 and size), files without
a row (left by a request killed between moving its file in and committing) are reported, and
removed only when asked and only after the grace period."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import fsck
from app.models import Blob
from app.storage import LocalBlobStore
from tests.app.clicks import post_zip

DAY_S = 24 * 3600.0


def _orphan(store: LocalBlobStore, content: bytes, *, age_s: float) -> str:
    """A file in the store without a row, as a request killed before its commit leaves."""
    sha256 = hashlib.sha256(content).hexdigest()
    path = store.path_for(sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return sha256


def test_fsck_checks_every_blob_and_reports_damage(
    app: Any,
    client: TestClient,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
    db_session: Session,
    test_session_factory: sessionmaker[Session],
) -> None:
    assert post_zip(client, imaging_session, synthetic_zip).status_code == 201
    store: LocalBlobStore = app.state.blob_store
    rows = db_session.execute(select(Blob.sha256, Blob.size_bytes)).all()
    assert len(rows) >= 1

    clean = fsck(test_session_factory, store)
    assert (clean.checked, clean.missing, clean.corrupt, clean.orphans) == (len(rows), [], [], [])
    assert clean.checked_bytes == sum(size for _, size in rows)

    zip_sha = hashlib.sha256(synthetic_zip).hexdigest()
    path = store.path_for(zip_sha)
    path.chmod(0o644)
    altered = bytearray(path.read_bytes())
    altered[100] ^= 0xFF
    path.write_bytes(bytes(altered))
    damaged = fsck(test_session_factory, store)
    expected = hashlib.sha256(bytes(altered)).hexdigest()
    assert damaged.corrupt == [(zip_sha, f"content hashes to {expected}")]
    assert damaged.damaged

    path.unlink()
    lost = fsck(test_session_factory, store)
    assert (lost.missing, lost.corrupt) == ([zip_sha], [])


def test_orphans_are_removed_only_when_asked_and_after_the_grace_period(
    app: Any, db_session: Session, test_session_factory: sessionmaker[Session]
) -> None:
    store: LocalBlobStore = app.state.blob_store
    old = _orphan(store, b"moved in, then the server was killed", age_s=2 * DAY_S)
    young = _orphan(store, b"maybe an upload about to commit", age_s=60)

    report = fsck(test_session_factory, store)
    assert sorted(o.sha256 for o in report.orphans) == sorted([old, young])
    assert report.removed == [] and not report.damaged
    assert store.exists(old) and store.exists(young)

    report = fsck(test_session_factory, store, remove_orphans=True, grace_s=DAY_S)
    assert report.removed == [old]
    assert not store.exists(old) and store.exists(young)
    assert db_session.scalar(select(func.count()).select_from(Blob)) == 0  # nothing written


def test_a_file_whose_row_exists_is_never_an_orphan(
    app: Any, db_session: Session, test_session_factory: sessionmaker[Session]
) -> None:
    store: LocalBlobStore = app.state.blob_store
    content = b"committed between listing and removal"
    sha256 = _orphan(store, content, age_s=2 * DAY_S)
    db_session.add(Blob(sha256=sha256, size_bytes=len(content), media_type="text/plain"))
    db_session.commit()
    report = fsck(test_session_factory, store, remove_orphans=True, grace_s=0)
    assert (report.checked, report.orphans, report.removed) == (1, [], [])
    assert store.exists(sha256)
