"""`osteolux serve --workers 2`: two API processes behind one port, nothing that correctness
needs kept in either's memory — a request retried with its Idempotency-Key on the other
process is replayed, not done twice."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tests.live_server import LiveServer, live_server_on, serving_processes


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[LiveServer]:
    """On PostgreSQL when the tests have one (production), else on SQLite; one backend only,
    as starting three processes costs ~10 s. `create-lab` has applied the migrations."""
    backend = "postgresql" if os.environ.get("OSTEOLUX_TEST_POSTGRES_URL") else "sqlite"
    args = ("--workers", "2", "--no-migrate")
    with live_server_on(backend, tmp_path, extra_args=args) as server:
        yield server


def _has_database_open(pid: int, database_url: str) -> bool:
    """Whether the process holds its database: the SQLite file, or a TCP connection to
    PostgreSQL's port (a worker opens either only once it has served a request)."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    if database_url.startswith("sqlite"):
        return any(t.endswith("osteolux.db") for t in targets)
    inodes = {t[len("socket:[") : -1] for t in targets if t.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(":1538") and fields[9] in inodes:  # remote port 5432
                return True
    return False


def test_two_processes_share_idempotency_through_the_database(two_workers: LiveServer) -> None:
    server = two_workers
    port = int(server.base_url.rsplit(":", 1)[1])
    parent, workers = serving_processes(port)
    assert len(workers) == 2, (parent, workers)
    study_id, _ = server.study_with_control()
    url = f"{server.base_url}/studies/{study_id}/sessions"
    key = f"session-{uuid.uuid4()}"

    def create(_: int) -> httpx2.Response:
        # a fresh connection each time, so the kernel hands them to either process
        with httpx2.Client(headers=server.headers | {"Idempotency-Key": key}) as client:
            return client.post(url, json={"acquired_at": "2026-07-15T10:15:00+02:00"})

    answers: list[httpx2.Response] = []
    for _ in range(10):  # until both processes have served some of them
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers += pool.map(create, range(16))
        if all(_has_database_open(pid, server.database_url) for pid in workers):
            break
    assert all(_has_database_open(pid, server.database_url) for pid in workers)
    assert {a.status_code for a in answers} == {201}, {a.text for a in answers}
    replayed = [a.headers.get("Idempotency-Replayed") == "true" for a in answers]
    assert replayed.count(False) == 1  # done once; every other answer is its replay
    assert len({a.json()["id"] for a in answers}) == 1
    listed = httpx2.get(url, headers=server.headers).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == answers[0].json()["id"]
    health = httpx2.get(f"{server.base_url}/health/ready")
    assert health.status_code == 200, health.text


@pytest.mark.parametrize(("workers", "warned"), [(2, False), (4, True)])
def test_serve_warns_when_its_processes_could_exhaust_postgresql_connections(
    workers: int, warned: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    from app.cli import _warn_if_connections_exceed
    from app.config import Settings
    from app.db import make_engine
    from tests.app.conftest import postgres_url

    engine = make_engine(postgres_url())
    with engine.connect() as connection:
        limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
    engine.dispose()
    # per process: max_concurrent_requests + 8; chosen so 2 processes fit and 4 do not
    per_process = limit // 3
    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url(), max_concurrent_requests=per_process - 8
    )
    _warn_if_connections_exceed(settings, workers)
    err = capsys.readouterr().err
    assert ("max_connections" in err) is warned, err
    if warned:
        assert f"up to {workers * per_process} database connections" in err


def test_the_listening_socket_of_several_processes_turns_nagle_off() -> None:
    """With ``--workers`` N the processes share a socket uvicorn binds with ``proto`` 0
    (uvicorn issue #3149), and asyncio sets ``TCP_NODELAY`` only on connections accepted from a
    socket that says TCP: Nagle's algorithm then held every kept-alive answer for the client's
    delayed ACK (``GET /health`` 44 ms with 2 processes, 1 ms with one). ``serve`` re-wraps it;
    this accepts a connection on it as a serving process does and reads the option back."""
    import asyncio
    import socket

    import uvicorn

    from app.cli import tcp_listener

    config = uvicorn.Config("app.main:create_app", host="127.0.0.1", port=0, workers=2)
    listener = tcp_listener(config.bind_socket())
    accepted: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(accept_one())
    assert accepted and accepted[0] != 0, "TCP_NODELAY is off on an accepted connection"
