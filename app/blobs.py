"""Raw files in the database: a ``Blob`` row per stored file, kept in step with the store,
and ``fsck``, which checks that they still are (``osteolux fsck``)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import on_rollback
from app.models import Blob
from app.storage import BlobStore, LocalBlobStore, S3BlobStore, StagedFile

_CHUNK_BYTES = 1024**2
_SHA256 = re.compile(r"[0-9a-f]{64}")


def keep_blob(session: Session, store: BlobStore, staged: StagedFile, *, media_type: str) -> None:
    """Record a validated staged file and move it into the store (once per content).

    The row is inserted first (``ON CONFLICT DO NOTHING``: one statement, and identical
    concurrent uploads serialise on its primary key — PostgreSQL makes the second wait for
    the first's transaction); if this transaction then rolls back, a file this call put in
    place is removed again. Content stored before keeps its row, read ``FOR KEY SHARE`` so
    that a study export's deletion (app.exports), which removes blobs nothing references,
    waits for this transaction instead of deleting the row this one relies on; a row deleted
    in between (such a deletion committed) is inserted again.
    """
    values = {"sha256": staged.sha256, "size_bytes": staged.size_bytes, "media_type": media_type}
    # RETURNING says whether the row is this transaction's (psycopg's rowcount does not)
    insert = _insert_new(session).values(**values).on_conflict_do_nothing()
    inserted = insert.returning(Blob.sha256)
    # FOR KEY SHARE (read=True; key_share alone is FOR NO KEY UPDATE, which would make two
    # uploads of the same stored bytes wait for each other's whole transaction)
    kept = select(Blob.sha256).where(Blob.sha256 == staged.sha256)
    kept = kept.with_for_update(read=True, key_share=True)
    while True:
        if session.scalar(inserted) is not None:
            if store.put(staged):
                on_rollback(session, lambda: store.remove(staged.sha256))
            return
        if session.scalar(kept) is not None:
            break
    if not store.exists(staged.sha256):
        store.put(staged)  # heal a store that lost the file: the content is the same


def _insert_new(session: Session) -> Any:
    """``INSERT INTO blob`` in the session's dialect (both have ``ON CONFLICT DO NOTHING``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Blob)
    return sqlite.insert(Blob)


@dataclass(frozen=True)
class StoredFile:
    """A file found in the blob store, whatever the database says about it."""

    sha256: str
    size_bytes: int
    age_s: float


@dataclass
class FsckReport:
    """What ``fsck`` found: rows checked, rows without their file, files whose content does
    not hash to their row, files without a row (orphans) and which of those were removed."""

    checked: int = 0
    checked_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    orphans: list[StoredFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """Raw data is lost or altered: a row without its file, or content that changed."""
        return bool(self.missing or self.corrupt)


def fsck(
    factory: sessionmaker[Session],
    store: BlobStore,
    *,
    remove_orphans: bool = False,
    grace_s: float = 24 * 3600.0,
    progress: Callable[[str, int, str], None] | None = None,
) -> FsckReport:
    """Check the store against the ``blob`` rows: each row's file exists and hashes to its
    SHA-256 and size; each file in the store has a row. Orphans (a file moved in by a request
    that died before its commit) are removed only with ``remove_orphans`` and only once older
    than ``grace_s``.

    No transaction is held while files are read, so uploads carry on meanwhile; ``progress``
    is called for each row (sha256, size, outcome) as it is checked.
    """
    report = FsckReport()
    with factory() as session:
        rows = session.execute(select(Blob.sha256, Blob.size_bytes).order_by(Blob.sha256)).all()
    for sha256, size_bytes in rows:
        outcome = _check_one(store, sha256, size_bytes)
        report.checked += 1
        report.checked_bytes += size_bytes
        if outcome == "missing":
            report.missing.append(sha256)
        elif outcome != "ok":
            report.corrupt.append((sha256, outcome))
        if progress is not None:
            progress(sha256, size_bytes, outcome)
    known = {sha256 for sha256, _ in rows}
    candidates = [f for f in stored_files(store) if f.sha256 not in known]
    for orphan in _still_orphans(factory, candidates):
        report.orphans.append(orphan)
        if remove_orphans and orphan.age_s >= grace_s and _remove_orphan(factory, store, orphan):
            report.removed.append(orphan.sha256)
    return report


def _check_one(store: BlobStore, sha256: str, size_bytes: int) -> str:
    """``ok``, ``missing``, or what is wrong with the stored content."""
    digest = hashlib.sha256()
    size = 0
    try:
        with store.open(sha256) as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return "missing"
    if digest.hexdigest() != sha256:
        return f"content hashes to {digest.hexdigest()}"
    if size != size_bytes:
        return f"{size} bytes stored, {size_bytes} recorded"
    return "ok"


def stored_files(store: BlobStore) -> Iterator[StoredFile]:
    """Every blob file in the store (local directory or S3 bucket), staging excluded."""
    now = time.time()
    if isinstance(store, LocalBlobStore):
        for path in sorted(store.root.glob("??/??/*")):
            if _SHA256.fullmatch(path.name) and path.is_file():
                stat = path.stat()
                yield StoredFile(path.name, stat.st_size, now - stat.st_mtime)
        return
    if isinstance(store, S3BlobStore):
        prefix = store.key_for("0" * 64).rsplit("/", 2)[0] + "/"
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if _SHA256.fullmatch(name):
                    age = now - obj["LastModified"].timestamp()
                    yield StoredFile(name, int(obj["Size"]), age)
        return
    raise TypeError(f"cannot list the files of {type(store).__name__}")


def _still_orphans(
    factory: sessionmaker[Session], candidates: list[StoredFile]
) -> Iterator[StoredFile]:
    """The candidates that still have no row (uploads may have committed since)."""
    for start in range(0, len(candidates), 500):
        batch = candidates[start : start + 500]
        with factory() as session:
            rows = set(
                session.scalars(
                    select(Blob.sha256).where(Blob.sha256.in_([f.sha256 for f in batch]))
                )
            )
        yield from (f for f in batch if f.sha256 not in rows)


def _remove_orphan(factory: sessionmaker[Session], store: BlobStore, orphan: StoredFile) -> bool:
    """Remove an orphan while holding its ``blob`` primary key, so an upload of the same
    content (whose row is inserted before its file moves in) waits for this or is waited for.
    The placeholder row is rolled back; nothing is written to the database."""
    with factory() as session:
        try:
            session.add(
                Blob(sha256=orphan.sha256, size_bytes=orphan.size_bytes, media_type="orphan")
            )
            session.flush()
        except IntegrityError:  # an upload stored it after all
            session.rollback()
            return False
        try:
            store.remove(orphan.sha256)
        finally:
            session.rollback()
    return True
