"""``osteolux worker``: procrastinate workers running osteolux jobs on PostgreSQL.

Each worker process takes jobs from procrastinate's queue (``LISTEN``/``NOTIFY``, polling as a
fallback) and runs them with :func:`app.jobs.runner.execute`; start as many as the machines
reaching PostgreSQL and the object store allow. Jobs carry a procrastinate ``lock`` (their
study), so two jobs of one study never run at once. A worker killed with ``kill -9`` stops
sending heartbeats; after ``jobs_stalled_s`` any live worker puts its job back in the queue
(procrastinate's stalled-job recovery), and the job resumes after its last committed step.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import psycopg
from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import ConnectorException
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory, read_only_engine
from app.jobs.runner import HANDLERS, TransientJobError, execute
from app.jobs.service import PROCRASTINATE_QUEUE, PROCRASTINATE_TASK, queue_schema
from app.storage import make_blob_store

log = logging.getLogger(__name__)
T = TypeVar("T")


def procrastinate_app(database_url: str, schema: str) -> App:
    """A procrastinate app on the osteolux database, its tables in ``schema``."""
    conninfo = make_url(database_url).set(drivername="postgresql")
    connector = PsycopgConnector(
        conninfo=conninfo.render_as_string(hide_password=False),
        kwargs={"options": f"-c search_path={schema}"},
    )
    return App(connector=connector)


def queue_schema_of(database_url: str) -> str:
    """procrastinate's schema beside the osteolux tables of this database."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return queue_schema(connection.execute(text("SELECT current_schema()")).scalar_one())
    finally:
        engine.dispose()


def add_parser(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser(
        "worker", help="run jobs (requantification, comparisons) from PostgreSQL's queue"
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, help="jobs at once in this process (default 1)"
    )
    worker.add_argument("--name", help="worker name in logs (default: host:pid)")
    worker.add_argument(
        "--nice",
        type=int,
        default=10,
        help="CPU priority below the API's on a shared machine: added to the process's nice "
        "value (default 10; 0: the same priority). Jobs are background work: on a busy "
        "machine requests get the CPU first and jobs take longer (README: Load)",
    )
    worker.add_argument(
        "--check",
        action="store_true",
        help="health check instead of working (a container's HEALTHCHECK): exit 0 when "
        "PostgreSQL and the job queue answer and a worker has sent a heartbeat lately, else 1",
    )
    worker.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        print(
            "error: `osteolux worker` needs PostgreSQL (OSTEOLUX_DATABASE_URL=postgresql+psycopg:"
            "//…). On SQLite, `osteolux serve` runs jobs itself: no worker is needed.",
            file=sys.stderr,
        )
        return 2
    if args.check:
        return check(url, stalled_s=settings.jobs_stalled_s)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    if args.nice:
        os.nice(args.nice)
    name = args.name or f"{socket.gethostname()}:{os.getpid()}"
    asyncio.run(work(settings, concurrency=args.concurrency, name=name))
    return 0


def check(database_url: str, *, stalled_s: float) -> int:
    """0 when PostgreSQL answers, the queue's tables are readable and a worker has sent a
    heartbeat within ``stalled_s`` (else 1, saying why). The heartbeat is not this
    container's own (procrastinate does not name workers), but a worker that died ends its
    container; one whose heartbeat stopped is the one the others take jobs from."""
    engine = make_engine(database_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            schema = queue_schema(connection.execute(text("SELECT current_schema()")).scalar_one())
            table = f"{connection.dialect.identifier_preparer.quote(schema)}.procrastinate_workers"
            alive = connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE last_heartbeat > now() - :stalled"),
                {"stalled": timedelta(seconds=stalled_s)},
            ).scalar_one()
    except (OperationalError, ProgrammingError) as exc:
        print(f"unhealthy: the job queue in PostgreSQL does not answer: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if not alive:
        print(f"unhealthy: no worker has sent a heartbeat in {stalled_s:g} s", file=sys.stderr)
        return 1
    print(f"healthy: {alive} worker(s) sent a heartbeat in the last {stalled_s:g} s")
    return 0


async def work(settings: Settings, *, concurrency: int, name: str) -> None:
    """Run jobs until SIGINT/SIGTERM, and retry the jobs of workers that died. PostgreSQL
    going away (a restart, a failover, its postmaster killed) does not end the worker: it
    says so and connects again with a doubling wait (1 s to ``_RECONNECT_MAX_S``); the job
    it was running is retried after its last committed step."""
    url = settings.resolved_database_url
    for handler in HANDLERS.values():  # imported now, not on the first job (seconds)
        importlib.import_module(handler.split(":")[0])
    engine = make_engine(url, pool_size=concurrency + 2, lock_timeout_s=settings.db_lock_timeout_s)
    factory = make_session_factory(engine)
    read_factory = make_session_factory(read_only_engine(engine))
    store = make_blob_store(settings)
    try:
        schema = await _until_reachable(lambda: asyncio.to_thread(queue_schema_of, url))
        app = procrastinate_app(url, schema)

        # Our runner spaces the retries of a job (jobs_retry_wait_s, doubling); procrastinate
        # only re-queues on TransientJobError, one attempt more than ours so that ours decides.
        wait_s = round(settings.jobs_retry_wait_s)

        @app.task(
            name=PROCRASTINATE_TASK,
            queue=PROCRASTINATE_QUEUE,
            retry=RetryStrategy(
                max_attempts=settings.jobs_max_attempts + 1,
                exponential_wait=wait_s,
                retry_exceptions={TransientJobError},
            ),
        )
        def run_job(job_id: str) -> None:
            execute(
                uuid.UUID(job_id), factory, store, settings, runner=name, read_factory=read_factory
            )

        async def run_once() -> None:
            async with app.open_async():
                recover = asyncio.create_task(_retry_stalled(app, settings))
                try:
                    await app.run_worker_async(
                        queues=[PROCRASTINATE_QUEUE],
                        concurrency=concurrency,
                        name=name,
                        fetch_job_polling_interval=settings.jobs_poll_s,
                        update_heartbeat_interval=settings.jobs_heartbeat_s,
                        stalled_worker_timeout=settings.jobs_stalled_s,
                        delete_jobs="successful",  # the `job` table keeps the record
                    )
                finally:
                    recover.cancel()

        await _until_reachable(run_once)  # returns when a signal stopped the worker
    finally:
        engine.dispose()


_RECONNECT_MAX_S = 30.0
_UNREACHABLE = (ConnectorException, psycopg.OperationalError, OperationalError)


async def _until_reachable(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()`` again while PostgreSQL is unreachable, waiting 1, 2, 4 … 30 s (the wait
    starts again at 1 s once an attempt has run for a minute)."""
    wait = 1.0
    while True:
        started = time.monotonic()
        try:
            return await attempt()
        except _UNREACHABLE as exc:
            if time.monotonic() - started > 60:
                wait = 1.0
            log.warning("PostgreSQL is unreachable (%s); connecting again in %.0f s", exc, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, _RECONNECT_MAX_S)


async def _retry_stalled(app: App, settings: Settings) -> None:
    """Put back in the queue the jobs of workers silent for ``jobs_stalled_s`` (killed)."""
    while True:
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                queue=PROCRASTINATE_QUEUE, seconds_since_heartbeat=settings.jobs_stalled_s
            )
            for job in stalled:
                log.warning("job %s of a stalled worker is retried", job.id)
                await app.job_manager.retry_job(job)
        except _UNREACHABLE as exc:  # the worker itself reconnects; try again next round
            log.warning("stalled-job check: %s", exc)
        await asyncio.sleep(max(settings.jobs_heartbeat_s, settings.jobs_stalled_s / 3))
