"""The S3-compatible blob store, against a real S3 API server (moto's server mode) on loopback:
the store on its own, then the whole app storing uploads in a bucket."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ServiceUnavailable, Unprocessable
from app.main import create_app
from app.models import Acquisition, AcquisitionFile, Blob, Measurement, Roi
from app.storage import LocalBlobStore, S3BlobStore, StagedFile, make_blob_store
from tests.app.clicks import post_zip, url
from tests.app.problems import assert_problem, row_counts

TABLES = (Acquisition, AcquisitionFile, Roi, Measurement, Blob)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API (moto's server) on a free loopback port; its URL."""
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(nowhere))  # no developer profile leaks in
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3(s3_server: str) -> Iterator[Any]:
    """A plain boto3 client to look at the bucket from outside the app."""
    client = boto3.client("s3", endpoint_url=s3_server)
    yield client
    client.close()


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"osteolux-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_endpoint(s3_server: str) -> str:
    """The endpoint the app is configured with (a test may parametrise a dead one)."""
    return s3_server


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, key → content."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    found = {}
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with body:
            found[key] = body.read()
    return found


def key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


def local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- the store on its own ----------------------------------------------------------------


@pytest.fixture
def store(s3_server: str, bucket: str, tmp_path: Path) -> Iterator[S3BlobStore]:
    store = S3BlobStore(bucket, endpoint_url=s3_server, staging_dir=tmp_path / "staging")
    yield store
    store.close()


def put(store: S3BlobStore, content: bytes) -> tuple[StagedFile, bool]:
    """Stage ``content`` in chunks, as an upload does, and put it; (staged file, stored)."""
    with store.staging(max_bytes=len(content) + 1, name="upload.bin") as writer:
        for start in range(0, len(content), 1 << 16):
            writer.write(content[start : start + (1 << 16)])
        staged = writer.finish()
        assert staged.path.is_file()
        stored = store.put(staged)
    assert not staged.path.exists()  # the staging file is gone on exit
    return staged, stored


def test_round_trip(store: S3BlobStore, s3: Any, bucket: str) -> None:
    content = os.urandom(300_000)
    sha = hashlib.sha256(content).hexdigest()
    assert not store.exists(sha)
    staged, stored = put(store, content)
    assert stored and staged.sha256 == sha and staged.size_bytes == len(content)
    assert store.exists(sha)
    assert objects(s3, bucket) == {key(sha): content}
    with store.open(sha) as handle:  # streams: chunks as asked for, then b""
        chunks = []
        while chunk := handle.read(65_536):
            assert len(chunk) <= 65_536
            chunks.append(chunk)
    assert b"".join(chunks) == content and len(chunks) > 1
    assert handle.closed
    with store.open(sha) as handle:
        assert handle.read() == content
    assert list(store.staging_dir.iterdir()) == []
    store.remove(sha)
    assert not store.exists(sha) and objects(s3, bucket) == {}


def test_existing_content_is_not_rewritten(store: S3BlobStore, s3: Any, bucket: str) -> None:
    content = b"animal,day,site,total_flux_ps\nm1,0,spine,1e5\n"
    sha = hashlib.sha256(content).hexdigest()
    put(store, content)
    before = s3.head_object(Bucket=bucket, Key=key(sha))
    _, stored_again = put(store, content)
    assert stored_again is False
    after = s3.head_object(Bucket=bucket, Key=key(sha))
    assert after["LastModified"] == before["LastModified"] and after["ETag"] == before["ETag"]
    assert list(objects(s3, bucket)) == [key(sha)]


@pytest.mark.parametrize("size", [5, 6 * 1024**2], ids=["single", "multipart"])
def test_a_racing_writer_never_overwrites(
    size: int, s3_server: str, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the existence check and the upload another request stored the same content:
    the conditional write (If-None-Match) refuses, and put reports it as already stored."""
    store = S3BlobStore(
        bucket,
        endpoint_url=s3_server,
        staging_dir=tmp_path / "staging",
        multipart_threshold=5 * 1024**2,
        multipart_chunksize=5 * 1024**2,
    )
    content = os.urandom(size)
    sha = hashlib.sha256(content).hexdigest()
    s3.put_object(Bucket=bucket, Key=key(sha), Body=b"the other writer's object")
    before = s3.head_object(Bucket=bucket, Key=key(sha))
    monkeypatch.setattr(store, "_size", lambda _sha: None)  # the check saw nothing yet
    try:
        _, stored = put(store, content)
    finally:
        store.close()
    assert stored is False
    assert s3.head_object(Bucket=bucket, Key=key(sha))["ETag"] == before["ETag"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_big_files_go_multipart(s3_server: str, bucket: str, s3: Any, tmp_path: Path) -> None:
    store = S3BlobStore(
        bucket,
        endpoint_url=s3_server,
        staging_dir=tmp_path / "staging",
        multipart_threshold=5 * 1024**2,
        multipart_chunksize=5 * 1024**2,
    )
    try:
        content = os.urandom(11 * 1024**2 + 17)  # three parts
        staged, stored = put(store, content)
        assert stored
        head = s3.head_object(Bucket=bucket, Key=key(staged.sha256), ChecksumMode="ENABLED")
        assert head["ContentLength"] == len(content)
        assert head["ETag"].endswith('-3"')  # really a three-part upload
        with store.open(staged.sha256) as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == staged.sha256
        assert put(store, content)[1] is False
    finally:
        store.close()


def test_missing_blob_and_missing_bucket(
    s3_server: str, store: S3BlobStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        store.open("0" * 64)
    gone = S3BlobStore("no-such-bucket", endpoint_url=s3_server, staging_dir=tmp_path / "s")
    try:
        assert not gone.exists("0" * 64)  # HEAD cannot tell a missing bucket from a key
        with pytest.raises(ServiceUnavailable, match="the bucket does not exist"):
            gone.open("0" * 64)
        with pytest.raises(ServiceUnavailable, match="object storage unavailable"):
            put(gone, b"data")
    finally:
        gone.close()


def test_unreachable_endpoint_is_503(tmp_path: Path, s3_server: str) -> None:
    dead = S3BlobStore(
        "osteolux", endpoint_url=f"http://127.0.0.1:{_free_port()}", staging_dir=tmp_path / "s"
    )
    try:
        with pytest.raises(ServiceUnavailable, match="object storage unavailable: Could not conn"):
            dead.exists("0" * 64)
    finally:
        dead.close()


def test_clean_staging_is_local(store: S3BlobStore) -> None:
    store.staging_dir.mkdir(parents=True)
    old = store.staging_dir / "crashed.part"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    (store.staging_dir / "fresh.part").write_bytes(b"y")
    assert store.clean_staging(older_than_s=3600) == 1
    assert [p.name for p in store.staging_dir.iterdir()] == ["fresh.part"]


def test_factory_creates_and_connects_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", blob_store="s3", s3_bucket="osteolux")
    store = make_blob_store(settings)
    assert isinstance(store, S3BlobStore) and store._client is None
    assert store.staging_dir == tmp_path / "data" / "blobs" / "staging"
    app = create_app(settings)
    assert isinstance(app.state.blob_store, S3BlobStore) and app.state.blob_store._client is None
    assert list(tmp_path.iterdir()) == []
    local = make_blob_store(Settings(data_dir=tmp_path / "data"))
    assert isinstance(local, LocalBlobStore)


# --- through the app ---------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        blob_store="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=bucket,
    )


@pytest.fixture
def app(app: Any) -> Iterator[Any]:
    yield app
    app.state.blob_store.close()


def test_upload_is_stored_in_the_bucket(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    s3: Any,
    bucket: str,
    settings: Settings,
    db_session: Session,
) -> None:
    response = post_zip(client, imaging_session, synthetic_zip)
    assert response.status_code == 201, response.text
    acquisition = response.json()
    sha = hashlib.sha256(synthetic_zip).hexdigest()
    assert acquisition["sha256"] == sha
    assert objects(s3, bucket) == {key(sha): synthetic_zip}
    assert local_files(settings.resolved_blob_dir) == []  # only the (emptied) staging area
    base = f"{url(imaging_session)}/{acquisition['id']}"
    original = client.get(f"{base}/original")
    assert original.status_code == 200 and original.content == synthetic_zip
    overlay = client.get(f"{base}/overlay.png")
    assert overlay.status_code == 200, overlay.text
    assert overlay.headers["content-type"] == "image/png"
    assert overlay.content.startswith(b"\x89PNG\r\n\x1a\n")
    # the same click twice: one object, nothing new
    before = row_counts(db_session, *TABLES)
    again = post_zip(client, imaging_session, synthetic_zip)
    assert again.status_code == 200 and again.json()["already_stored"] is True
    assert list(objects(s3, bucket)) == [key(sha)]
    assert row_counts(db_session, *TABLES) == before


def test_rejected_upload_leaves_no_object(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    s3: Any,
    bucket: str,
    settings: Settings,
    db_session: Session,
) -> None:
    before = row_counts(db_session, *TABLES)
    response = post_zip(client, imaging_session, synthetic_zip, animals="3466,3467,3468,3469,9999")
    assert_problem(response, 422, "9999")
    assert objects(s3, bucket) == {}
    assert row_counts(db_session, *TABLES) == before
    assert local_files(settings.resolved_blob_dir) == []


def test_failure_after_the_upload_removes_the_object(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    s3: Any,
    bucket: str,
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The blob reached the bucket, then the request failed: the rollback takes it out again."""
    from app import audit  # the ingest records its audit entry after the blob is stored

    def fail(*_: Any, **__: Any) -> None:
        assert objects(s3, bucket) != {}  # the object was really uploaded by now
        raise Unprocessable("injected failure after the blob was stored")

    monkeypatch.setattr(audit, "record", fail)
    before = row_counts(db_session, *TABLES)
    assert_problem(post_zip(client, imaging_session, synthetic_zip), 422, "injected failure")
    assert objects(s3, bucket) == {}
    assert row_counts(db_session, *TABLES) == before


def test_measurement_csv_goes_to_the_bucket(
    client: TestClient, s3: Any, bucket: str, imaging_session: dict
) -> None:
    csv = "animal,day,site,total_flux_ps\n3466,0,whole_body,1.0e5\n3466,7,spine,2.5e5\n"
    response = client.post(
        f"/studies/{imaging_session['study_id']}/measurements/import",
        files={"file": ("flux.csv", csv.encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    sha = hashlib.sha256(csv.encode()).hexdigest()
    assert objects(s3, bucket) == {key(sha): csv.encode()}


@pytest.mark.parametrize("s3_endpoint", [f"http://127.0.0.1:{_free_port()}"], ids=["dead"])
def test_unreachable_storage_is_503_and_writes_nothing(
    client: TestClient,
    imaging_session: dict,
    synthetic_zip: bytes,
    s3: Any,
    bucket: str,
    settings: Settings,
    db_session: Session,
) -> None:
    before = row_counts(db_session, *TABLES)
    response = post_zip(client, imaging_session, synthetic_zip)
    body = assert_problem(response, 503, "object storage unavailable", settings.s3_endpoint_url)
    assert body["title"] == "Service unavailable"
    assert row_counts(db_session, *TABLES) == before
    assert local_files(settings.resolved_blob_dir) == []
    assert objects(s3, bucket) == {}


def test_an_upload_failure_without_its_client_error_still_gives_the_code() -> None:
    """Seen once in CI under load: boto3's S3UploadFailedError for a conditional
    CompleteMultipartUpload (412) came without the ClientError behind it; the racing writer's
    object was then reported as a storage failure instead of 'already stored'."""
    from boto3.exceptions import S3UploadFailedError

    from app.storage import _ALREADY_THERE, _code

    lost = S3UploadFailedError(
        "Failed to upload /tmp/x.part to bucket/sha256/b6/b6: An error occurred "
        "(PreconditionFailed) when calling the CompleteMultipartUpload operation: At least one "
        "of the pre-conditions you specified did not hold"
    )
    assert lost.__context__ is None and lost.__cause__ is None
    assert _code(lost) in _ALREADY_THERE
    assert _code(S3UploadFailedError("Failed to upload: connection reset")) is None
    assert _code(ValueError("An error occurred (PreconditionFailed) when calling X")) is None
