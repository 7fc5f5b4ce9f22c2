"""A serving process reuses the memory of the large arrays it frees (glibc), instead of
taking fresh pages the kernel must zero for every click."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Arrays of a click's sizes made on threads (as the ingest's threads do) and freed by the
#: main thread, ten times after three rounds of warm-up: the page faults of one round.
_ROUNDS = """
import resource, sys, threading
import numpy as np
from app.memory import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
held = []
def make(n):
    a = np.empty(n, np.uint8)
    a.fill(1)
    held.append(a)
def one_round():
    for n in (16 << 20, 8 << 20, 8 << 20, 1 << 20):
        t = threading.Thread(target=make, args=(n,))
        t.start()
        t.join()
    held.clear()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    one_round()
before = faults()
for _ in range(10):
    one_round()
print((faults() - before) / 10)
"""


def _faults_per_round(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_arrays_are_reused_not_faulted_in_again() -> None:
    default, kept = _faults_per_round("default"), _faults_per_round("kept")
    # 33 MB a round: with huge pages ~17 faults at the very least, with 4 KiB pages ~8 000
    assert default > 16, default
    assert kept < 16, kept


def test_the_app_keeps_freed_memory_from_its_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from app import main
    from app.config import Settings
    from app.migrations import upgrade_to_head

    settings = Settings(data_dir=tmp_path)
    upgrade_to_head(settings.resolved_database_url)
    calls: list[bool] = []
    monkeypatch.setattr(main, "keep_freed_memory", lambda: calls.append(True) or True)
    with TestClient(main.create_app(settings)):
        assert calls == [True]
