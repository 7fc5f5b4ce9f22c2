"""Process-wide memory settings of a serving process."""

from __future__ import annotations

import ctypes
import sys

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
KEPT_BLOCK_BYTES = 32 * 1024**2
"""Blocks below this size come from the heap and are reused once freed (glibc's largest)."""
KEPT_FREE_BYTES = 512 * 1024**2
"""Free heap memory the process keeps instead of returning it to the system."""


def keep_freed_memory() -> bool:
    """Let the serving process reuse the memory of the large arrays it frees (glibc only;
    ``False`` where there is no ``mallopt``, e.g. musl or macOS).

    By default glibc gives a block above its threshold (128 KiB, rising up to 32 MiB as such
    blocks are freed) a mapping of its own, and threads' heaps are given back when empty, so
    each click's 16 MB radiance array, 8 MB frames and 1 MiB body pieces came from fresh pages
    the kernel had to zero first: ~10 % of the server's CPU per click in ``perf`` on a 2-core
    VM. With blocks up to :data:`KEPT_BLOCK_BYTES` on the heap (one arena for all threads, so
    a block one thread frees serves the next) and up to :data:`KEPT_FREE_BYTES` of free heap
    kept, the click ingest took ~7 % less (0.84–0.97 of the time in 7 runs of two servers
    taking alternate uploads in the same minutes); the cost is that the process keeps that
    much memory once it has used it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_ARENA_MAX, 1),
        (_M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES),
        (_M_TRIM_THRESHOLD, KEPT_FREE_BYTES),
    )
    applied = [mallopt(parameter, value) == 1 for parameter, value in settings]  # each one
    return all(applied)
