"""Content-addressed, write-once blob store for raw files.

Files arrive in a *staging* area (streamed, hashed and size-checked on the way in, then
fsync'ed); only a file that passed validation is moved into place under its SHA-256, by an
atomic rename. Nothing outside ``staging/`` is ever half-written, and ``osteolux
clean-staging`` removes what a crashed request left there.

Two backends share that local staging area: ``LocalBlobStore`` (a directory, the default) and
``S3BlobStore`` (S3-compatible object storage: AWS S3, MinIO, ...), chosen by
``make_blob_store(settings)``. Either way a blob, once stored, is never rewritten.

Why one module of ~430 lines: both backends share the staging code (leases, fsync, cleaning)
and the :class:`BlobStore` contract they implement; keeping them side by side is how a reader
checks that S3 keeps the same write-once and all-or-nothing promises as the local store.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, Protocol, cast

from app.errors import PayloadTooLarge, ServiceUnavailable

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagedFile:
    """A complete upload in the staging area, with its digest. Its fsync may still be running
    (it overlaps the reading and measuring of the file): :meth:`wait_durable` waits for it, and
    the stores call it before moving the file into place."""

    path: Path
    sha256: str
    size_bytes: int
    durable: Future[None] | None = field(default=None, compare=False, repr=False)

    def wait_durable(self) -> None:
        """Until the file's bytes are on disk; raises what fsync raised (e.g. ENOSPC)."""
        if self.durable is not None:
            self.durable.result()


_fsyncs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="osteolux-fsync")
"""fsync waits on the disk with the GIL released: a thread of its own lets the request read
and measure the click meanwhile (uploads in flight are bounded by the request guard)."""


class StagingWriter:
    """Writes chunks to a staging file, hashing them and enforcing the size limit."""

    def __init__(self, handle: BinaryIO, path: Path, *, max_bytes: int, name: str) -> None:
        self._handle = handle
        self._path = path
        self._max_bytes = max_bytes
        self._name = name
        self._hash = hashlib.sha256()
        self._size = 0
        self._durable: Future[None] | None = None

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max_bytes:
            raise PayloadTooLarge(
                f"{self._name} is larger than the limit of {self._max_bytes:,} bytes; "
                "split the upload or ask your administrator to raise OSTEOLUX_MAX_UPLOAD_BYTES."
            )
        self._hash.update(chunk)
        self._handle.write(chunk)

    def finish(self) -> StagedFile:
        """The staged file, its fsync started (see :class:`StagedFile`)."""
        self._handle.flush()
        self._durable = _fsyncs.submit(os.fsync, self._handle.fileno())
        return StagedFile(
            path=self._path,
            sha256=self._hash.hexdigest(),
            size_bytes=self._size,
            durable=self._durable,
        )

    def settle(self) -> None:
        """Wait for a started fsync, whatever its outcome (before the file is closed: an fsync
        must never run on a closed, perhaps reused, descriptor)."""
        if self._durable is not None:
            wait([self._durable])


class BlobStore(Protocol):
    def staging(self, *, max_bytes: int, name: str) -> AbstractContextManager[StagingWriter]: ...
    def put(self, staged: StagedFile) -> bool: ...
    def exists(self, sha256: str) -> bool: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def remove(self, sha256: str) -> None: ...


class LocalBlobStore:
    """Blobs as read-only files ``<root>/<sha[:2]>/<sha[2:4]>/<sha>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / "staging"

    def path_for(self, sha256: str) -> Path:
        _check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def staging(self, *, max_bytes: int, name: str) -> AbstractContextManager[StagingWriter]:
        """A staging file that is removed on exit unless ``put`` moved it into place."""
        return _staging_file(self.staging_dir, max_bytes=max_bytes, name=name)

    def put(self, staged: StagedFile) -> bool:
        """Move a staged file into place; False (and nothing changes) if it was already stored."""
        target = self.path_for(staged.sha256)
        if target.exists():
            return False
        staged.wait_durable()  # its bytes on disk before its name is
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged.path, 0o444)
        os.replace(staged.path, target)
        _fsync_dir(target.parent)
        return True

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return self.path_for(sha256).open("rb")

    def remove(self, sha256: str) -> None:
        """Only for undoing a ``put`` whose database transaction rolled back."""
        self.path_for(sha256).unlink(missing_ok=True)

    def clean_staging(self, *, older_than_s: float = 3600.0) -> int:
        """Delete staging files older than ``older_than_s``; returns how many."""
        return _clean_staging(self.staging_dir, older_than_s=older_than_s)


@contextmanager
def _staging_file(staging_dir: Path, *, max_bytes: int, name: str) -> Iterator[StagingWriter]:
    staging_dir.mkdir(parents=True, exist_ok=True)
    handle, path = _leased_staging_file(staging_dir)
    try:
        with handle:
            writer = StagingWriter(handle, path, max_bytes=max_bytes, name=name)
            try:
                yield writer
            finally:
                writer.settle()
    finally:
        path.unlink(missing_ok=True)


def _leased_staging_file(staging_dir: Path) -> tuple[BinaryIO, Path]:
    """A new staging file, open and locked (``flock``) for as long as the upload runs: the
    lease tells ``clean_staging`` the file is in use, and ends by itself if the process dies."""
    while True:
        path = staging_dir / f"{uuid.uuid4().hex}.part"
        handle = path.open("xb")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle, path
        except FileNotFoundError:
            pass
        handle.close()  # a cleaner removed it before the lock was taken: take another name


def _clean_staging(staging_dir: Path, *, older_than_s: float) -> int:
    """Remove staging files older than ``older_than_s`` that no running upload holds."""
    if not staging_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in staging_dir.iterdir():
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path)
                removed += 1
                continue
            with path.open("rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # an upload in progress holds it
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # its upload finished meanwhile
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_S3_PREFIX = "sha256/"
_MULTIPART_THRESHOLD = 64 * 1024**2
_MULTIPART_CHUNK = 64 * 1024**2
# Only these answers mean "no such object"; everything else is the store failing us.
_MISSING = {"404", "NoSuchKey", "NotFound"}
_ALREADY_THERE = {"412", "PreconditionFailed"}


class S3BlobStore:
    """Blobs as objects ``<prefix>sha256/<sha[:2]>/<sha>`` in an S3-compatible bucket.

    Uploads are staged (and hashed) in a local directory exactly as for ``LocalBlobStore``,
    then sent with a full-object SHA-256 checksum the server verifies (small files) or with
    per-part SHA-256 checksums and a size check (multipart, over ``multipart_threshold``).
    Writes are conditional (``If-None-Match: *``): an existing object is never replaced.
    The client is created on first use, so constructing the store touches neither the
    network nor the disk. Credentials and region come from the usual ``AWS_*`` variables.
    """

    def __init__(
        self,
        bucket: str,
        *,
        staging_dir: Path,
        endpoint_url: str | None = None,
        prefix: str = "",
        multipart_threshold: int = _MULTIPART_THRESHOLD,
        multipart_chunksize: int = _MULTIPART_CHUNK,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.staging_dir = staging_dir
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_attempts = max_attempts
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"

    def key_for(self, sha256: str) -> str:
        _check_sha256(sha256)
        return f"{self.prefix}{_S3_PREFIX}{sha256[:2]}/{sha256}"

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use (boto3 clients are thread-safe)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=self._connect_timeout_s,
                    read_timeout=self._read_timeout_s,
                    retries={"max_attempts": self._max_attempts, "mode": "standard"},
                    # MinIO & co. behind a custom endpoint rarely have wildcard DNS.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                )
                client = boto3.session.Session().client(
                    "s3", endpoint_url=self.endpoint_url, config=config
                )
                # Multipart uploads (made by boto3's transfer manager, which cannot pass it)
                # complete only if the key is still free: write-once even under races.
                client.meta.events.register(
                    "before-parameter-build.s3.CompleteMultipartUpload", _if_none_match
                )
                self._client = client
            return self._client

    def close(self) -> None:
        """Close the client's connections (a later call opens a new client)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def staging(self, *, max_bytes: int, name: str) -> AbstractContextManager[StagingWriter]:
        """A local staging file, removed on exit (its content is uploaded by ``put``)."""
        return _staging_file(self.staging_dir, max_bytes=max_bytes, name=name)

    def clean_staging(self, *, older_than_s: float = 3600.0) -> int:
        """Delete local staging files older than ``older_than_s``; returns how many."""
        return _clean_staging(self.staging_dir, older_than_s=older_than_s)

    def put(self, staged: StagedFile) -> bool:
        """Upload a staged file; False (and nothing changes) if it was already stored."""
        key = self.key_for(staged.sha256)
        if self._size(staged.sha256) is not None:
            return False
        try:
            if staged.size_bytes < self.multipart_threshold:
                self._put_single(staged, key)
            else:
                self._put_multipart(staged, key)
        except Exception as exc:
            if _code(exc) in _ALREADY_THERE:  # a concurrent put of the same content won
                return False
            self._fail(exc, f"storing {staged.sha256}")
        size = self._size(staged.sha256)
        if size != staged.size_bytes:
            # Cannot happen with a conforming server; never leave a wrong object behind.
            self._delete(key)
            raise ServiceUnavailable(
                f"object storage unavailable: {self.where} stored {size} bytes for "
                f"{staged.sha256} instead of {staged.size_bytes}; nothing was saved, try again."
            )
        return True

    def _put_single(self, staged: StagedFile, key: str) -> None:
        checksum = base64.b64encode(bytes.fromhex(staged.sha256)).decode()
        with staged.path.open("rb") as body:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=staged.size_bytes,
                ChecksumSHA256=checksum,  # the server rejects bytes that do not hash to it
                IfNoneMatch="*",
            )

    def _put_multipart(self, staged: StagedFile, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client.upload_file(
            str(staged.path),
            self.bucket,
            key,
            ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            Config=TransferConfig(
                multipart_threshold=self.multipart_threshold,
                multipart_chunksize=self.multipart_chunksize,
            ),
        )

    def exists(self, sha256: str) -> bool:
        return self._size(sha256) is not None

    def open(self, sha256: str) -> BinaryIO:
        """A streaming, closeable reader of the blob (use it in a ``with`` block)."""
        key = self.key_for(sha256)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"blob {sha256} is not in {self.where}") from None
            self._fail(exc, f"reading {sha256}")
        return cast(BinaryIO, response["Body"])

    def remove(self, sha256: str) -> None:
        """Only for undoing a ``put`` whose database transaction rolled back.

        Runs while a failed request is unwinding, so a failure here is logged, not raised:
        the original error stays the one reported, and the orphaned object (content-addressed,
        unreferenced) is simply reused by the next upload of the same content.
        """
        try:
            self._delete(self.key_for(sha256))
        except Exception:
            log.exception("could not remove blob %s from %s after a rollback", sha256, self.where)

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def _size(self, sha256: str) -> int | None:
        """The stored object's size, or None if there is none."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            self._fail(exc, f"looking up {sha256}")
        return int(head["ContentLength"])

    def _fail(self, exc: Exception, doing: str) -> NoReturn:
        """Re-raise a storage failure as 503; anything that is not one propagates as is."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if not isinstance(exc, BotoCoreError | ClientError | Boto3Error):
            raise exc
        code = _code(exc)
        if isinstance(exc, NoCredentialsError):
            reason = "no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        elif code == "NoSuchBucket":
            reason = "the bucket does not exist; create it or fix OSTEOLUX_S3_BUCKET"
        elif code is not None:
            reason = f"{code}: {_message(exc)}"
        else:
            reason = str(exc)
        log.warning("object storage failed while %s in %s: %s", doing, self.where, exc)
        raise ServiceUnavailable(
            f"object storage unavailable: {reason} ({self.where}, while {doing}); "
            "nothing was saved, try again later or ask your administrator."
        ) from exc


def _if_none_match(params: dict[str, Any], **_: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


def _client_error(exc: BaseException | None) -> Any:
    """The botocore ClientError behind ``exc`` (boto3's transfer manager wraps them)."""
    from botocore.exceptions import ClientError

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ClientError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


_CODE_IN_MESSAGE = re.compile(r"An error occurred \((\w+)\) when calling")


def _code(exc: BaseException) -> str | None:
    error = _client_error(exc)
    if error is not None:
        return str(error.response.get("Error", {}).get("Code", ""))
    # boto3's transfer manager re-raises a part's or the completion's ClientError as an
    # S3UploadFailedError; once in CI (loaded machine) that error came without the ClientError
    # behind it, only its message ("… An error occurred (PreconditionFailed) when calling …")
    from boto3.exceptions import S3UploadFailedError

    match = _CODE_IN_MESSAGE.search(str(exc)) if isinstance(exc, S3UploadFailedError) else None
    return match[1] if match else None


def _message(exc: BaseException) -> str:
    error = _client_error(exc)
    return "" if error is None else str(error.response.get("Error", {}).get("Message", ""))


def _check_sha256(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")


def make_blob_store(settings: Settings) -> BlobStore:
    """The configured blob store; creates nothing and connects to nothing until first used."""
    if settings.blob_store == "s3":
        if not settings.s3_bucket:  # Settings already refuses this; keep the type checker calm
            raise ValueError("OSTEOLUX_BLOB_STORE=s3 needs OSTEOLUX_S3_BUCKET")
        return S3BlobStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            staging_dir=settings.resolved_blob_dir / "staging",
        )
    return LocalBlobStore(settings.resolved_blob_dir)
