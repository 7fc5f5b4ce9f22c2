"""The embedded job runner: a poller thread inside ``osteolux serve`` (SQLite, no other
server). Jobs wait in the ``job`` table of the database itself, so they outlive a restart; a
job whose runner stopped saying it is alive (the process was killed) is taken up again after
``jobs_stalled_s``, and resumes after its last committed step."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.jobs import repository
from app.jobs.runner import TransientJobError, execute
from app.jobs.service import backend
from app.models import Job, JobState, utc_now
from app.storage import BlobStore

log = logging.getLogger(__name__)


class EmbeddedRunner:
    """Runs queued jobs one at a time in a daemon thread until ``stop()``."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        read_factory: sessionmaker[Session],
        store: BlobStore,
        settings: Settings,
    ) -> None:
        self.factory, self.read_factory = factory, read_factory
        self.store, self.settings = store, settings
        self.name = f"embedded:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="osteolux-jobs", daemon=True)

    def start(self) -> EmbeddedRunner:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_one()
            except SQLAlchemyError as exc:  # the database is busy or away: try again later
                log.warning("job runner: %s", exc)
                ran = False
            if not ran:
                self._stop.wait(self.settings.jobs_poll_s)

    def run_one(self) -> bool:
        """Run the next claimable job, if any; whether one ran."""
        job_id = self._claim()
        if job_id is None:
            return False
        alive = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job_id, alive), daemon=True)
        beat.start()
        try:
            execute(
                job_id,
                self.factory,
                self.store,
                self.settings,
                runner=self.name,
                read_factory=self.read_factory,
            )
        except TransientJobError:
            pass  # queued again with its backoff
        finally:
            alive.set()
            beat.join()
        return True

    def _stale_before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.jobs_stalled_s)

    def _claim(self) -> uuid.UUID | None:
        now = utc_now()
        # a read first: an idle poller never takes SQLite's write lock
        with self.read_factory() as session:
            if not session.scalar(
                select(exists(repository.claimable(now, self._stale_before(now))))
            ):
                return None
        with transaction(self.factory) as session:
            job = repository.next_claimable(session, now, self._stale_before(now))
            if job is None or not repository.take(session, job, self.name, now):
                return None
            return job.id

    def _heartbeat(self, job_id: uuid.UUID, done: threading.Event) -> None:
        while not done.wait(self.settings.jobs_heartbeat_s):
            try:
                with transaction(self.factory) as session:
                    session.execute(
                        update(Job)
                        .where(
                            Job.id == job_id,
                            Job.runner == self.name,
                            Job.state == JobState.running,
                        )
                        .values(heartbeat_at=utc_now())
                    )
            except SQLAlchemyError as exc:
                log.warning("job %s heartbeat: %s", job_id, exc)


def start_in_process(state: Any, settings: Settings, dialect: str) -> EmbeddedRunner | None:
    """The API process's runner (``app.state``'s factories and store), when this process
    runs jobs (``jobs_in_process``, set by ``osteolux serve`` for the embedded backend)."""
    if not settings.jobs_in_process or backend(settings, dialect) != "embedded":
        return None
    return EmbeddedRunner(
        state.session_factory, state.read_session_factory, state.blob_store, settings
    ).start()
