"""``keep_blob``: a stored file's ``blob`` row and its file in the store, once per content,
on SQLite and PostgreSQL, each transaction committing for real — new content, content stored
before (its file kept, or put back when the store lost it), a rollback that removes only
what it put, and two transactions keeping the same bytes at once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import keep_blob
from app.db import make_engine, make_session_factory, transaction
from app.models import Blob
from app.storage import LocalBlobStore, StagedFile
from tests.app.test_auth import own_database  # noqa: F401 (a fixture)


class _Store(LocalBlobStore):
    """A local store that counts the files it moved in."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.moved_in = 0

    def put(self, staged: StagedFile) -> bool:
        moved = super().put(staged)
        self.moved_in += moved
        return moved


@contextmanager
def _staged(store: LocalBlobStore, content: bytes) -> Iterator[StagedFile]:
    with store.staging(max_bytes=1 << 20, name="upload.bin") as writer:
        writer.write(content)
        yield writer.finish()


@pytest.fixture
def factory(own_database: str) -> Iterator[sessionmaker[Session]]:  # noqa: F811
    engine = make_engine(own_database, lock_timeout_s=10)
    yield make_session_factory(engine)
    engine.dispose()


def _rows(factory: sessionmaker[Session]) -> list[tuple[str, int, str]]:
    with factory() as session:
        return [(b.sha256, b.size_bytes, b.media_type) for b in session.scalars(select(Blob)).all()]


def _keep(factory: sessionmaker[Session], store: LocalBlobStore, content: bytes) -> None:
    with _staged(store, content) as staged, transaction(factory) as session:
        keep_blob(session, store, staged, media_type="application/zip")


def test_new_content_is_kept_once_and_a_lost_file_is_put_back(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    store = _Store(tmp_path / "blobs")
    content = b"a click's bytes" * 1000
    sha = hashlib.sha256(content).hexdigest()
    _keep(factory, store, content)
    assert _rows(factory) == [(sha, len(content), "application/zip")]
    assert store.path_for(sha).read_bytes() == content
    assert store.moved_in == 1
    _keep(factory, store, content)  # stored before: the row and file are left as they are
    assert _rows(factory) == [(sha, len(content), "application/zip")]
    assert store.moved_in == 1
    store.path_for(sha).unlink()  # the store lost the file: the next upload heals it
    _keep(factory, store, content)
    assert store.path_for(sha).read_bytes() == content
    assert store.moved_in == 2
    assert _rows(factory) == [(sha, len(content), "application/zip")]


def test_a_rollback_removes_only_the_file_it_put(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    store = _Store(tmp_path / "blobs")
    kept, new = b"kept before" * 100, b"new in the failed request" * 100
    _keep(factory, store, kept)
    for content in (kept, new):
        with (
            pytest.raises(RuntimeError),
            _staged(store, content) as staged,
            transaction(factory) as session,
        ):
            keep_blob(session, store, staged, media_type="text/csv")
            raise RuntimeError("the request failed after keeping the file")
    assert [row[0] for row in _rows(factory)] == [hashlib.sha256(kept).hexdigest()]
    assert store.exists(hashlib.sha256(kept).hexdigest())
    assert not store.exists(hashlib.sha256(new).hexdigest())


def test_the_same_bytes_kept_at_once_make_one_row_and_one_file(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    store = _Store(tmp_path / "blobs")
    content = b"the same click, uploaded twice at once" * 1000
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            with _staged(store, content) as staged:
                start.wait()
                with transaction(factory) as session:
                    keep_blob(session, store, staged, media_type="application/zip")
                    time.sleep(0.3)  # both inside their transaction at once
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [row[0] for row in _rows(factory)] == [hashlib.sha256(content).hexdigest()]
    assert store.moved_in == 1
    assert store.path_for(hashlib.sha256(content).hexdigest()).read_bytes() == content


class _SlowToRemove(_Store):
    def remove(self, sha256: str) -> None:
        time.sleep(0.3)  # a slow disk: the undo of a failed upload takes its time
        super().remove(sha256)


def test_an_upload_waiting_on_a_failing_one_keeps_its_file(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The first upload keeps new bytes, then fails; the second, waiting on its row lock
    (PostgreSQL) or write lock (SQLite), stores the same bytes once it fails. The first's
    undo (removing the file it put) runs before it lets go of its locks, so the second never
    finds that file still there, counts on it, and then loses it."""
    store = _SlowToRemove(tmp_path / "blobs")
    content = b"one click" * 1000
    sha = hashlib.sha256(content).hexdigest()
    kept = threading.Event()
    errors: list[BaseException] = []

    def failing() -> None:
        with (
            pytest.raises(RuntimeError),
            _staged(store, content) as staged,
            transaction(factory) as session,
        ):
            keep_blob(session, store, staged, media_type="application/zip")
            kept.set()
            time.sleep(0.3)  # the second upload is now waiting on this one
            raise RuntimeError("this upload failed after keeping the file")

    def second() -> None:
        try:
            kept.wait()
            _keep(factory, store, content)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=failing), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [row[0] for row in _rows(factory)] == [sha]
    assert store.path_for(sha).read_bytes() == content  # the committed row has its file


def _delete_blob(
    factory: sessionmaker[Session], store: LocalBlobStore, sha: str, **events: Any
) -> None:
    """What a study export's deletion does to a blob nothing references: lock the row (``FOR
    UPDATE``), delete it and its file, commit."""
    with transaction(factory) as session:
        session.scalars(select(Blob.sha256).where(Blob.sha256 == sha).with_for_update()).all()
        events["locked"].set()
        time.sleep(0.5)  # the upload of the same bytes starts meanwhile
        session.execute(delete(Blob).where(Blob.sha256 == sha))
        store.remove(sha)


def test_a_row_deleted_while_the_upload_waits_is_inserted_again(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """An export's deletion has locked a stored blob's row and is about to delete it and its
    file when an upload of the same bytes keeps them: the upload waits for the deletion
    (PostgreSQL: on the row; SQLite: on the write lock), then inserts the row again and puts
    its file — never counts on the row being deleted under it."""
    store = _Store(tmp_path / "blobs")
    content = b"stored before, then deleted with its export" * 100
    sha = hashlib.sha256(content).hexdigest()
    _keep(factory, store, content)
    locked = threading.Event()
    deleter = threading.Thread(
        target=_delete_blob, args=(factory, store, sha), kwargs={"locked": locked}
    )
    deleter.start()
    locked.wait()
    _keep(factory, store, content)
    deleter.join()
    assert [row[0] for row in _rows(factory)] == [sha]
    assert store.path_for(sha).read_bytes() == content


def test_stored_bytes_are_held_against_deletion_not_against_other_uploads(
    own_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """PostgreSQL: an upload of bytes stored before holds their row ``FOR KEY SHARE`` until it
    commits, so an export's deletion (``FOR UPDATE``) waits for it — here it times out — while
    another upload of the same bytes does not wait at all."""
    if not own_database.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer (BEGIN IMMEDIATE): there are no row locks")
    engine = make_engine(own_database, lock_timeout_s=10)
    impatient = make_engine(own_database, lock_timeout_s=0.3)
    factory, quick = make_session_factory(engine), make_session_factory(impatient)
    try:
        store = _Store(tmp_path / "blobs")
        content = b"stored before" * 100
        sha = hashlib.sha256(content).hexdigest()
        _keep(factory, store, content)
        inside, done = threading.Event(), threading.Event()

        def upload() -> None:
            with _staged(store, content) as staged, transaction(factory) as session:
                keep_blob(session, store, staged, media_type="application/zip")
                inside.set()
                done.wait(10)

        holder = threading.Thread(target=upload)
        holder.start()
        inside.wait()
        try:
            _keep(quick, store, content)  # another upload: no wait
            locking = select(Blob.sha256).where(Blob.sha256 == sha).with_for_update()
            with (
                pytest.raises(OperationalError, match="lock timeout"),
                transaction(quick) as session,
            ):
                session.scalars(locking).all()
        finally:
            done.set()
            holder.join()
    finally:
        engine.dispose()
        impatient.dispose()
