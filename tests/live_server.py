"""Run the real ``osteolux`` command line as a subprocess, e.g. a real HTTP server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]

#: Debian's chromium, headless, as root, in an offline lab: any host but loopback is
#: unresolvable (so a CDN reference would fail) and nothing phones home.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def osteolux_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTEOLUX_")}
    return env | {"OSTEOLUX_DATA_DIR": str(data_dir), "OSTEOLUX_LOG_LEVEL": "WARNING"} | extra


def run_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=osteolux_env(data_dir, **(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(
    data_dir: Path,
    *,
    extra_args: tuple[str, ...] = (),
    log: Path | None = None,
    wait_s: float = 60.0,
    **env: str,
) -> Iterator[str]:
    """`osteolux serve` on a free loopback port; yields its base URL. Its output goes to
    ``log`` (kept) or a temporary file — never a pipe: nobody reads it while the server runs,
    and once a pipe's 64 kB are full every process writing a log line to it stops."""
    port = free_port()
    output = log.open("a+") if log is not None else tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in finally)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *extra_args],
        cwd=ROOT,
        env=osteolux_env(data_dir, **env),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if process.poll() is not None:
                output.seek(0)
                raise RuntimeError(f"osteolux serve exited: {output.read()}")
            try:
                if httpx2.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"osteolux serve did not answer /health within {wait_s:g} s")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def serving_processes(port: int) -> tuple[int, list[int]]:
    """The `osteolux serve` process listening on ``port`` and its worker processes (without
    multiprocessing's resource tracker)."""
    parent = None
    by_parent: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if b"serve" in cmdline and str(port).encode() in cmdline:
            parent = int(entry)
        ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
        if b"resource_tracker" not in b" ".join(cmdline):
            by_parent.setdefault(ppid, []).append(int(entry))
    assert parent is not None, f"no `osteolux serve --port {port}` process"
    return parent, sorted(by_parent.get(parent, []))


@contextmanager
def live_server_on(
    backend: str, tmp_path: Path, *, extra_args: tuple[str, ...] = (), **env: str
) -> Iterator[LiveServer]:
    """`osteolux serve` on SQLite (a fresh data folder) or PostgreSQL (a fresh schema of the
    test database), with a lab and its admin key already created by `osteolux create-lab`."""
    from sqlalchemy import text

    from app.db import make_engine
    from tests.app.conftest import postgres_url

    data_dir = tmp_path / "data"
    schema = None
    if backend == "postgresql":
        schema = f"live_{uuid.uuid4().hex[:10]}"
        admin = make_engine(postgres_url())
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        env = env | {"OSTEOLUX_DATABASE_URL": f"{postgres_url()}?options=-csearch_path%3D{schema}"}
    try:
        created = run_cli(data_dir, "create-lab", "Live Lab", env=env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        database_url = env.get("OSTEOLUX_DATABASE_URL") or f"sqlite:///{data_dir / 'osteolux.db'}"
        with live_server(data_dir, extra_args=extra_args, **env) as base_url:
            yield LiveServer(base_url, {"X-API-Key": key}, database_url, schema)
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema}_procrastinate CASCADE"))
            admin.dispose()


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    headers: dict[str, str]
    database_url: str
    schema: str | None

    def study_with_control(self) -> tuple[str, str]:
        """A new study (uniquely named) and its control arm, made over HTTP: their ids."""
        study = httpx2.post(
            f"{self.base_url}/studies",
            headers=self.headers,
            json={
                "name": f"Study {uuid.uuid4().hex[:8]}",
                "cell_line": "MDA-MB-231",
                "injection_model": "intracardiac",
                "day0": "2026-07-01",
            },
        )
        assert study.status_code == 201, study.text
        control = httpx2.post(
            f"{self.base_url}/studies/{study.json()['id']}/arms",
            headers=self.headers,
            json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
        )
        assert control.status_code == 201, control.text
        return study.json()["id"], control.json()["id"]
