"""``fsck``: every stored blob is checked against its row (SHA-256 and size), files without
a row (left by a request killed between moving its file in and committing) are reported, and
removed only when asked and only after the grace period."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import fsck
from app.models import Blob
from app.storage import LocalBlobStore, S3BlobStore
from tests.app.clicks import post_zip
from tests.live_server import free_port

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


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API (moto's server mode) on a free loopback port."""
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(nowhere),
            "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


def test_fsck_on_object_storage(
    s3_endpoint: str,
    tmp_path: Path,
    db_session: Session,
    test_session_factory: sessionmaker[Session],
) -> None:
    bucket = f"osteolux-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(
        bucket, endpoint_url=s3_endpoint, staging_dir=tmp_path / "staging", prefix="lab/"
    )
    store.client.create_bucket(Bucket=bucket)
    try:
        contents = {
            "kept": b"a click with its row",
            "orphan": b"an object whose request died",
            "lost": b"a row whose object is gone",
        }
        shas = {name: hashlib.sha256(c).hexdigest() for name, c in contents.items()}
        for name in ("kept", "orphan"):
            with store.staging(max_bytes=1000, name=name) as writer:
                writer.write(contents[name])
                assert store.put(writer.finish())
        for name in ("kept", "lost"):
            db_session.add(
                Blob(sha256=shas[name], size_bytes=len(contents[name]), media_type="text/plain")
            )
        db_session.commit()
        report = fsck(test_session_factory, store, remove_orphans=True, grace_s=0)
        assert report.checked == 2 and report.corrupt == []
        assert report.missing == [shas["lost"]]
        assert [o.sha256 for o in report.orphans] == report.removed == [shas["orphan"]]
        assert report.orphans[0].size_bytes == len(contents["orphan"])
        assert store.exists(shas["kept"]) and not store.exists(shas["orphan"])
    finally:
        store.close()
