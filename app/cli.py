"""``osteolux`` command line: serve the API, apply migrations, create a lab."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import socket
import sys
import time
from typing import TYPE_CHECKING

from app.config import Settings, get_settings

if TYPE_CHECKING:
    import uvicorn


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _run_embedded_jobs(get_settings())
    _prepare_storage(settings)
    if not args.no_migrate:
        from app.migrations import upgrade_to_head

        upgrade_to_head(settings.resolved_database_url)
    _warn_if_owner(settings.resolved_database_url)
    _warn_if_connections_exceed(settings, args.workers)
    config = uvicorn_config(args, settings)
    if args.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 3  # 3: did not start (e.g. the port is taken)
    from uvicorn.supervisors import Multiprocess

    # what uvicorn.run does for workers > 1, on a listening socket that says it is TCP
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[tcp_listener(config.bind_socket())]).run()
    return 0


def uvicorn_config(args: argparse.Namespace, settings: Settings) -> uvicorn.Config:
    import uvicorn

    from app.serving import HttpProtocol

    return uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        server_header=False,  # do not announce the server software
        http=HttpProtocol,  # uvicorn's httptools protocol, reading 1 MiB at a time
    )


def tcp_listener(sock: socket.socket) -> socket.socket:
    """``sock`` (uvicorn's listening socket for ``--workers`` N) re-wrapped with its protocol
    set to TCP.

    uvicorn 0.54 creates it with ``proto`` 0 (uvicorn issue #3149); accepted connections
    inherit that, and asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on sockets
    that say ``IPPROTO_TCP``. With Nagle on, every answer on a kept-alive connection waited for
    the client's delayed ACK: 44 ms for ``GET /health`` with 2 processes vs 1.0 ms with one.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto != 0:
        return sock
    fixed = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    fixed.set_inheritable(True)
    return fixed


def _run_embedded_jobs(settings: Settings) -> Settings:
    """Without procrastinate workers (SQLite), the serving processes run the jobs."""
    from sqlalchemy import make_url

    from app.jobs.service import backend

    if backend(settings, make_url(settings.resolved_database_url).get_backend_name()) != "embedded":
        return settings
    os.environ["OSTEOLUX_JOBS_IN_PROCESS"] = "true"  # also read by --workers' processes
    get_settings.cache_clear()
    return get_settings()


def _warn_if_owner(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy.exc import SQLAlchemyError

    from app.audit.runtime_role import owner_warning
    from app.db import make_engine

    engine = make_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            warning = owner_warning(connection)
    except SQLAlchemyError:
        return  # the database is not up yet: the service reports that itself
    finally:
        engine.dispose()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _warn_if_connections_exceed(settings: Settings, workers: int) -> None:
    """Each API process pools up to max_concurrent_requests + 8 connections (app.main): say
    so when ``workers`` of them could exceed PostgreSQL's max_connections."""
    if not settings.resolved_database_url.startswith("postgresql"):
        return
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import make_engine

    engine = make_engine(settings.resolved_database_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
    except SQLAlchemyError:
        return  # the database is not up yet: the service reports that itself
    finally:
        engine.dispose()
    wanted = workers * (settings.max_concurrent_requests + 8)
    if wanted > limit:
        print(
            f"warning: {workers} API process(es) may open up to {wanted} database connections "
            f"(each up to OSTEOLUX_MAX_CONCURRENT_REQUESTS={settings.max_concurrent_requests} "
            f"+ 8), more than PostgreSQL's max_connections={limit} (which workers and other "
            "clients share too): lower OSTEOLUX_MAX_CONCURRENT_REQUESTS or raise max_connections",
            file=sys.stderr,
        )


def _prepare_storage(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_blob_dir.mkdir(parents=True, exist_ok=True)


def _migrate(args: argparse.Namespace) -> int:
    from app.migrations import upgrade_to_head

    settings = get_settings()
    _prepare_storage(settings)
    upgrade_to_head(settings.resolved_database_url)
    print(f"database at head: {settings.resolved_database_url.split('@')[-1]}")
    if args.grant_runtime_role:
        from app.audit.runtime_role import RoleSetupError, grant_runtime_role
        from app.db import make_engine

        engine = make_engine(settings.resolved_database_url)
        try:
            with engine.begin() as connection:
                grant_runtime_role(connection, args.grant_runtime_role)
        except RoleSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()
        print(f"runtime role '{args.grant_runtime_role}': read and write, audit trail append-only")
    return 0


def _create_lab(args: argparse.Namespace) -> int:
    from app.db import make_engine, make_session_factory, transaction
    from app.errors import OsteoluxError
    from app.labs.service import create_lab
    from app.migrations import upgrade_to_head

    settings = get_settings()
    _prepare_storage(settings)
    upgrade_to_head(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            lab, _, secret = create_lab(session, args.name)
    except OsteoluxError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Created lab '{lab.name}' ({lab.id}).")
    print("Its admin API key (shown only once; store it safely):")
    print(secret)
    return 0


def _create_key(args: argparse.Namespace) -> int:
    from app.db import make_engine, make_session_factory, transaction
    from app.errors import OsteoluxError
    from app.labs.service import create_key_for_lab
    from app.migrations import upgrade_to_head
    from app.models import ApiKeyRole

    settings = get_settings()
    _prepare_storage(settings)
    upgrade_to_head(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            lab, key, secret = create_key_for_lab(
                session, args.lab, args.name, ApiKeyRole(args.role), reason=args.reason
            )
    except OsteoluxError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Created {key.role} key '{key.name}' ({key.id}) for lab '{lab.name}'.")
    print("The key (shown only once; store it safely):")
    print(secret)
    return 0


def _clean_staging(args: argparse.Namespace) -> int:
    from app.storage import LocalBlobStore

    settings = get_settings()
    removed = LocalBlobStore(settings.resolved_blob_dir).clean_staging(
        older_than_s=args.older_than_hours * 3600
    )
    print(f"removed {removed} staging file(s) older than {args.older_than_hours:g} h")
    return 0


def _fsck(args: argparse.Namespace) -> int:
    from app.blobs import fsck
    from app.db import make_engine, make_session_factory
    from app.storage import make_blob_store

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    store = make_blob_store(settings)
    started = time.monotonic()
    try:
        report = fsck(
            make_session_factory(engine),
            store,
            remove_orphans=args.remove_orphans,
            grace_s=args.grace_hours * 3600,
        )
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started
    ok = report.checked - len(report.missing) - len(report.corrupt)
    print(
        f"checked {report.checked} blob(s), {report.checked_bytes:,} bytes, against their "
        f"SHA-256 and size in {elapsed:.1f} s: {ok} ok"
    )
    for sha256 in report.missing:
        print(f"MISSING {sha256}: the database has a row, the store has no file")
    for sha256, problem in report.corrupt:
        print(f"CORRUPT {sha256}: {problem}")
    for orphan in report.orphans:
        if orphan.sha256 in report.removed:
            state = "removed"
        elif args.remove_orphans:
            state = f"kept: younger than --grace-hours {args.grace_hours:g}"
        else:
            state = "kept (--remove-orphans removes it)"
        print(
            f"ORPHAN {orphan.sha256}: {orphan.size_bytes:,} bytes, "
            f"{orphan.age_s / 3600:.1f} h old, no row; {state}"
        )
    if report.damaged:
        print(
            "raw data is missing or altered: restore those files from a backup",
            file=sys.stderr,
        )
        return 1
    return 0


# Commands that live in their own modules (each has add_parser(subparsers)); a module is
# imported only when its command runs, so e.g. `push` on an instrument PC starts quickly.
_PLUGGED_COMMANDS: dict[str, tuple[str, str]] = {
    "push": ("app.push", "upload new Living Image clicks from a folder to a study"),
    "demo": ("app.demo", "create a realistic synthetic demo study through the API"),
    "worker": ("app.jobs.worker", "run jobs from PostgreSQL's queue (procrastinate)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="osteolux", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations first (when a separate migrate step owns them)",
    )
    serve.set_defaults(func=_serve)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--grant-runtime-role",
        metavar="ROLE",
        help="PostgreSQL: then give ROLE (the API's database user) the runtime privileges: "
        "read and write data, but only SELECT and INSERT on the audit trail",
    )
    migrate.set_defaults(func=_migrate)
    lab = sub.add_parser("create-lab", help="create a lab and print its first admin API key")
    lab.add_argument("name")
    lab.set_defaults(func=_create_lab)
    key = sub.add_parser(
        "create-key",
        help="issue an API key for an existing lab (e.g. when its last admin key is lost)",
    )
    key.add_argument("--lab", required=True, help="the lab's name or id")
    key.add_argument("--role", choices=["admin", "editor", "instrument", "viewer"], default="admin")
    key.add_argument("--name", default="admin key from the command line", help="who uses it")
    key.add_argument("--reason", help="why the key is issued (kept in the audit trail)")
    key.set_defaults(func=_create_key)
    clean = sub.add_parser(
        "clean-staging", help="delete upload files that crashed requests left in staging"
    )
    clean.add_argument(
        "--older-than-hours", type=float, default=24.0, help="keep younger files (default 24)"
    )
    clean.set_defaults(func=_clean_staging)
    check = sub.add_parser(
        "fsck",
        help="verify every stored blob against its row (SHA-256, size); report orphan files",
    )
    check.add_argument(
        "--remove-orphans",
        action="store_true",
        help="remove files that no row refers to, once older than the grace period",
    )
    check.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="never remove an orphan younger than this (default 24)",
    )
    check.set_defaults(func=_fsck)
    arguments = sys.argv[1:] if argv is None else argv
    requested = next((a for a in arguments if not a.startswith("-")), None)
    for name, (module, summary) in _PLUGGED_COMMANDS.items():
        if name == requested:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
