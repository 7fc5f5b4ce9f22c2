"""Turn tifffile's log warnings into errors (a broken file is a rejection, not a log line)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _ThreadRecorder(logging.Handler):
    def __init__(self, thread_id: int) -> None:
        super().__init__(level=logging.WARNING)
        self.thread_id = thread_id
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread_id:
            self.messages.append(record.getMessage())


@contextmanager
def capture_tifffile_warnings() -> Iterator[list[str]]:
    """Collect warnings tifffile logs from the current thread while the block runs."""
    log = logging.getLogger("tifffile")
    handler = _ThreadRecorder(threading.get_ident())
    log.addHandler(handler)
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)
