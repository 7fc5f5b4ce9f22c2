"""Raw files in the database: a ``Blob`` row per stored file, kept in step with the store."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import on_rollback
from app.models import Blob
from app.storage import BlobStore, StagedFile


def keep_blob(session: Session, store: BlobStore, staged: StagedFile, *, media_type: str) -> Blob:
    """Record a validated staged file and move it into the store (once per content).

    The row is flushed first so identical concurrent uploads serialise on its primary key;
    if the transaction then rolls back, a file this call put in place is removed again.
    """
    blob = session.get(Blob, staged.sha256)
    if blob is None:
        try:
            with session.begin_nested():
                blob = Blob(
                    sha256=staged.sha256, size_bytes=staged.size_bytes, media_type=media_type
                )
                session.add(blob)
        except IntegrityError:  # the same bytes were just committed by another request
            blob = session.get_one(Blob, staged.sha256)
        else:
            if store.put(staged):
                on_rollback(session, lambda: store.remove(staged.sha256))
            return blob
    if not store.exists(staged.sha256):
        store.put(staged)  # heal a store that lost the file: the content is the same
    return blob
