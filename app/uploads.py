"""Streaming an upload into the blob store's staging area."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from app.storage import BlobStore, StagedFile

CHUNK_BYTES = 1024**2


class Readable(Protocol):
    """What an upload is read from: a file, or a request body pulled chunk by chunk."""

    def read(self, size: int = -1, /) -> bytes: ...


@contextmanager
def staged_upload(
    store: BlobStore, upload: Readable, *, max_bytes: int, filename: str
) -> Iterator[StagedFile]:
    """Copy an upload chunk by chunk into staging (hashed, size-checked, fsync'ed); the
    staging file is gone on exit unless the store moved it into place."""
    with store.staging(max_bytes=max_bytes, name=filename) as writer:
        while chunk := upload.read(CHUNK_BYTES):
            writer.write(chunk)
        yield writer.finish()
