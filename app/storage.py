"""Content-addressed, write-once blob store for raw files.

Files arrive in a *staging* area (streamed, hashed and size-checked on the way in, then
fsync'ed); only a file that passed validation is moved into place under its SHA-256, by an
atomic rename. Nothing outside ``staging/`` is ever half-written, and ``osteolux
clean-staging`` removes what a crashed request left there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from app.errors import PayloadTooLarge


@dataclass(frozen=True)
class StagedFile:
    """A complete, fsync'ed upload in the staging area, with its digest."""

    path: Path
    sha256: str
    size_bytes: int


class StagingWriter:
    """Writes chunks to a staging file, hashing them and enforcing the size limit."""

    def __init__(self, handle: BinaryIO, path: Path, *, max_bytes: int, name: str) -> None:
        self._handle = handle
        self._path = path
        self._max_bytes = max_bytes
        self._name = name
        self._hash = hashlib.sha256()
        self._size = 0

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
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return StagedFile(path=self._path, sha256=self._hash.hexdigest(), size_bytes=self._size)


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
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    @contextmanager
    def staging(self, *, max_bytes: int, name: str) -> Iterator[StagingWriter]:
        """A staging file that is removed on exit unless ``put`` moved it into place."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        path = self.staging_dir / f"{uuid.uuid4().hex}.part"
        try:
            with path.open("xb") as handle:
                yield StagingWriter(handle, path, max_bytes=max_bytes, name=name)
        finally:
            path.unlink(missing_ok=True)

    def put(self, staged: StagedFile) -> bool:
        """Move a staged file into place; False (and nothing changes) if it was already stored."""
        target = self.path_for(staged.sha256)
        if target.exists():
            return False
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
        if not self.staging_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.staging_dir.iterdir():
            if path.stat().st_mtime < cutoff:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
