"""The staged file's fsync overlaps the reading and measuring of the upload, but a file is
moved into the store only once its bytes are on disk, and an fsync that fails keeps nothing."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from app.storage import LocalBlobStore

CONTENT = b"luminescent counts" * 1000


def _stage(store: LocalBlobStore) -> object:
    """Stage CONTENT and move it into place while the staging file is open (as an upload)."""
    with store.staging(max_bytes=10**6, name="click.zip") as writer:
        writer.write(CONTENT)
        staged = writer.finish()
        return store.put(staged)


def test_a_file_is_moved_into_place_only_once_its_fsync_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    target = store.path_for(hashlib.sha256(CONTENT).hexdigest())
    started, release = threading.Event(), threading.Event()
    real_fsync = os.fsync
    synced_before_rename: list[bool] = []

    def slow_fsync(fd: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).endswith(".part"):
            started.set()
            assert release.wait(10), "the test never let the fsync finish"
        real_fsync(fd)

    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        synced_before_rename.append(release.is_set())
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    monkeypatch.setattr(os, "replace", replace)
    result: list[object] = []
    upload = threading.Thread(target=lambda: result.append(_stage(store)))
    upload.start()
    assert started.wait(10)
    upload.join(0.3)
    assert upload.is_alive(), "put returned while the staged file's fsync was still running"
    assert not target.exists()
    release.set()
    upload.join(10)
    assert result == [True]
    assert synced_before_rename == [True]
    assert target.read_bytes() == CONTENT
    assert list(store.staging_dir.iterdir()) == []


def test_an_fsync_that_fails_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as raised:
        _stage(store)
    assert raised.value.errno == errno.ENOSPC  # the request answers 503 storage-full
    assert not store.path_for(hashlib.sha256(CONTENT).hexdigest()).exists()
    assert list(store.staging_dir.iterdir()) == []
