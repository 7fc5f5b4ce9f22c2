"""Ingest benchmarks over real HTTP on loopback; prints medians and ratios measured in the same run.

Run: ``.venv/bin/python bench/bench_ingest.py`` (``OSTEOLUX_BENCH_CLICKS`` distinct clicks,
default 32; ``OSTEOLUX_BENCH_DATABASE_URL`` = a throwaway PostgreSQL database to repeat 2 on it).

1. Ingest throughput (MB/s) of 2048² binning-1 clicks (store + validate + calibrate + quantify
   + commit), ``PUT …/acquisitions/{click}`` and multipart ``POST …/acquisitions``, vs a bare
   streaming-upload endpoint (defined here: hashes + writes + fsyncs the body, nothing else)
   served by uvicorn with the same number of workers. Goal: ≥ 0.5 of the bare endpoint.
2. 16 concurrent clients vs one client uploading the same set (distinct clicks + a few exact
   duplicates) to ``osteolux serve --workers 2``: no errors, no duplicates stored, and
   throughput ≥ 1.5× a single client. Where the time of one upload goes, measured in-process.
3. Peak RSS of the server while a 1 GiB body streams in (``OSTEOLUX_MAX_UPLOAD_BYTES`` = 2 GiB);
   the staging area must be empty afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENSOR = 2048
N_CLIENTS = 16
N_DUPLICATES = 4
N_THROUGHPUT = 8  # clicks for benchmark 1
GIB = 1024**3
CHUNK = 1024**2
TIMEOUT_S = 300.0
_BARE_DIR_ENV = "OSTEOLUX_BENCH_BARE_DIR"


# --------------------------------------------------------------------------------------------
# The bare reference: an ASGI app that only streams the body to a file while hashing it.
# Served by ``uvicorn bench_ingest:bare_app --factory`` in a subprocess.


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    directory = Path(os.environ[_BARE_DIR_ENV])

    async def upload(request: Request) -> JSONResponse:
        digest = hashlib.sha256()
        path = directory / f"{uuid.uuid4().hex}.part"
        size = 0
        try:
            with path.open("xb") as handle:
                async for chunk in request.stream():
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse({"sha256": digest.hexdigest(), "size": size})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/upload", upload, methods=["PUT"]), Route("/health", health)])


# --------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Server]:
    import httpx2

    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx2.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer /health within 90 s: {cmd}")
            time.sleep(0.2)
        yield Server(base_url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this bench started
            process.wait(timeout=10)


def _osteolux_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTEOLUX_")}
    return env | {"OSTEOLUX_DATA_DIR": str(data_dir), "OSTEOLUX_LOG_LEVEL": "WARNING"} | extra


@contextmanager
def osteolux(data_dir: Path, *, workers: int, **env: str) -> Iterator[tuple[Server, str]]:
    """``osteolux serve --workers N`` on a fresh data dir; yields the server and an admin key."""
    full_env = _osteolux_env(data_dir, **env)
    created = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-lab", "Bench Lab"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    with _serve(cmd, full_env, port, data_dir.parent / f"{data_dir.name}.log") as server:
        yield server, key


@contextmanager
def bare(tmp: Path, *, workers: int) -> Iterator[Server]:
    directory = tmp / "bare"
    directory.mkdir(exist_ok=True)
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench_ingest:bare_app", "--factory"]
    cmd += ["--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--log-level", "warning"]
    env = dict(os.environ) | {_BARE_DIR_ENV: str(directory)}
    with _serve(cmd, env, port, tmp / "bare.log") as server:
        yield server


# --------------------------------------------------------------------------------------------
# Clicks and uploads


@dataclass(frozen=True)
class Click:
    path: Path
    click_number: str
    size: int
    sha256_b64: str


def make_clicks(folder: Path, n: int) -> list[Click]:
    """``n`` distinct 2048² binning-1 clicks (shot noise, a few cosmic rays), zipped as stored
    members: 17 MB each, the size of the data a 2048² click really holds."""
    from imaging import default_hotel, write_synthetic_click

    mice, sources = default_hotel()
    clicks = []
    for i in range(n):
        number = f"SYN20260715{100000 + i:06d}"
        written = write_synthetic_click(
            folder / number,
            mice=mice,
            sources=sources,
            binning=1,
            sensor_pixels=SENSOR,
            noise=True,
            cosmic_rays=5,
            seed=i,
            click_number=number,
        )
        path = folder / f"{number}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for member in sorted(written.path.iterdir()):
                archive.write(member, member.name)
        shutil.rmtree(written.path)
        digest = hashlib.sha256(path.read_bytes()).digest()
        clicks.append(Click(path, number, path.stat().st_size, base64.b64encode(digest).decode()))
    return clicks


def new_session(base_url: str, key: str, name: str) -> str:
    """A study with five animals and one imaging session; returns its acquisitions URL."""
    import httpx2

    headers = {"X-API-Key": key}
    with httpx2.Client(base_url=base_url, headers=headers, timeout=60) as client:
        study = client.post(
            "/studies",
            json={
                "name": name,
                "cell_line": "MDA-MB-231",
                "injection_model": "intracardiac",
                "day0": "2026-07-01",
            },
        )
        study.raise_for_status()
        study_id = study.json()["id"]
        arm = client.post(
            f"/studies/{study_id}/arms",
            json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
        )
        arm.raise_for_status()
        for i in range(5):
            client.post(
                f"/studies/{study_id}/animals",
                json={"identifier": str(3466 + i), "arm_id": arm.json()["id"]},
            ).raise_for_status()
        session = client.post(
            f"/studies/{study_id}/sessions", json={"acquired_at": "2026-07-15T10:15:00+02:00"}
        )
        session.raise_for_status()
    return f"{base_url}/studies/{study_id}/sessions/{session.json()['id']}/acquisitions"


def put_click(client: Any, target: str, click: Click, body: bytes | None = None) -> Any:
    """PUT the click streamed from disk with its Content-Length, or ``body`` from memory."""
    with click.path.open("rb") as handle:
        return client.put(
            f"{target}/{click.click_number}",
            content=handle if body is None else body,
            headers={
                "Content-Digest": f"sha-256=:{click.sha256_b64}:",
                "Content-Type": "application/zip",
            },
        )


def post_click(client: Any, target: str, click: Click) -> Any:
    with click.path.open("rb") as body:
        return client.post(target, files={"file": (click.path.name, body, "application/zip")})


def put_bare(client: Any, base_url: str, click: Click, body: bytes | None = None) -> Any:
    with click.path.open("rb") as handle:
        return client.put(f"{base_url}/upload", content=handle if body is None else body)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _mbps(n_bytes: float, seconds: float) -> float:
    return n_bytes / seconds / 1e6


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# --------------------------------------------------------------------------------------------
# 1. throughput vs the bare endpoint


def bench_throughput(tmp: Path, clicks: list[Click], warmup: Click) -> None:
    import httpx2

    print(
        f"\n1. Ingest throughput, {len(clicks)} distinct 2048² clicks of {clicks[0].size / 1e6:.1f}"
        " MB, sequential, one worker each"
    )
    with osteolux(tmp / "data1", workers=1) as (server, key), bare(tmp, workers=1) as ref:
        put_target = new_session(server.base_url, key, "Throughput PUT")
        post_target = new_session(server.base_url, key, "Throughput POST")
        headers = {"X-API-Key": key}
        times: dict[str, list[float]] = {"PUT": [], "POST": [], "bare": []}
        with httpx2.Client(headers=headers, timeout=TIMEOUT_S) as client:
            for fn in (
                lambda: put_click(client, put_target, warmup),
                lambda: post_click(client, post_target, warmup),
                lambda: put_bare(client, ref.base_url, warmup),
            ):
                fn().raise_for_status()
            for i, click in enumerate(clicks):
                runs = [
                    ("PUT", lambda c=click: put_click(client, put_target, c)),
                    ("POST", lambda c=click: post_click(client, post_target, c)),
                    ("bare", lambda c=click: put_bare(client, ref.base_url, c)),
                ]
                if i % 2:
                    runs.reverse()  # alternate the order so drift hits all three alike
                for name, fn in runs:
                    seconds, response = _timed(fn)
                    expected = 200 if name == "bare" else 201
                    if response.status_code != expected:
                        raise RuntimeError(f"{name} {click.click_number}: {response.text[:500]}")
                    times[name].append(seconds)
    size = statistics.median(c.size for c in clicks)
    total = sum(c.size for c in clicks)
    bare_rate = _mbps(size, statistics.median(times["bare"]))
    for name in ("bare", "PUT", "POST"):
        med = statistics.median(times[name])
        print(
            f"   {name:>4}: median {med * 1000:7.1f} ms/click = {_mbps(size, med):7.1f} MB/s "
            f"(aggregate {_mbps(total, sum(times[name])):7.1f} MB/s)"
        )
    for name in ("PUT", "POST"):
        ratio = _mbps(size, statistics.median(times[name])) / bare_rate
        print(f"   {name} / bare = {ratio:.3f}  (goal ≥ 0.5: {_verdict(ratio >= 0.5)})")


# --------------------------------------------------------------------------------------------
# 2. concurrency


def _upload_all(
    jobs: list[Click], target: str, key: str, n_clients: int
) -> tuple[float, list[tuple[Click, int | str, float]]]:
    import httpx2

    queues = [jobs[i::n_clients] for i in range(n_clients)]
    results: list[tuple[Click, int | str, float]] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(n_clients)

    def client_thread(queue: list[Click]) -> None:
        with httpx2.Client(headers={"X-API-Key": key}, timeout=TIMEOUT_S) as client:
            start_gate.wait(timeout=60)
            for click in queue:
                t0 = time.perf_counter()
                try:
                    status: int | str = put_click(client, target, click).status_code
                except httpx2.HTTPError as exc:
                    status = f"{type(exc).__name__}: {exc}"
                with lock:
                    results.append((click, status, time.perf_counter() - t0))

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n_clients) as pool:
        list(pool.map(client_thread, queues))
    return time.perf_counter() - start, results


def _check_stored(target: str, key: str, distinct: list[Click]) -> tuple[int, int]:
    """(acquisitions stored, duplicates among them: same SHA-256 or click stored twice)."""
    import httpx2

    listed = httpx2.get(target, headers={"X-API-Key": key}, timeout=60)
    listed.raise_for_status()
    rows = listed.json()
    numbers = [row["click_number"] for row in rows]
    duplicates = len(numbers) - len(set(numbers))
    missing = {c.click_number for c in distinct} - set(numbers)
    if missing:
        print(f"   MISSING after upload: {sorted(missing)}")
    return len(rows), duplicates


def bench_concurrency(tmp: Path, clicks: list[Click], backend: str, **env: str) -> None:
    jobs = list(clicks)
    # exact duplicates of clicks other threads upload at the same time
    jobs[N_CLIENTS:N_CLIENTS] = [clicks[i] for i in range(N_DUPLICATES)]
    sent = sum(c.size for c in jobs)
    print(
        f"\n2. [{backend}] {len(jobs)} uploads ({len(clicks)} distinct + {N_DUPLICATES} exact "
        f"duplicates, {sent / 1e6:.0f} MB) by PUT to osteolux serve --workers 2"
    )
    data_dir = tmp / f"data2-{backend}"
    with osteolux(data_dir, workers=2, **env) as (server, key):
        warm = new_session(server.base_url, key, "Warm-up")
        for click in clicks[:2]:  # both workers import numpy & co. and have a warm pool
            _upload_all([click], warm, key, 1)
        outcome = {}
        for label, n_clients in (
            ("1 client", 1),
            ("2 clients", 2),
            (f"{N_CLIENTS} clients", N_CLIENTS),
        ):
            target = new_session(server.base_url, key, f"Concurrency {label}")
            before = _cpu(server.process.pid)
            wall, results = _upload_all(jobs, target, key, n_clients)
            after = _cpu(server.process.pid)
            statuses: dict[str, int] = {}
            for _, status, _ in results:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            errors = sum(n for s, n in statuses.items() if s not in ("200", "201"))
            stored, duplicates = _check_stored(target, key, clicks)
            latencies = sorted(t for _, _, t in results)
            outcome[label] = (wall, errors, duplicates)
            print(
                f"   {label:>10}: {wall:6.1f} s = {_mbps(sent, wall):6.1f} MB/s; "
                f"statuses {dict(sorted(statuses.items()))}; errors {errors}; "
                f"acquisitions stored {stored} (expected {len(clicks)}); duplicates {duplicates}; "
                f"request latency median {statistics.median(latencies):.2f} s, "
                f"max {latencies[-1]:.2f} s"
            )
            busy, server_cpu, client_cpu = (b - a for a, b in zip(before, after, strict=True))
            print(
                f"{'':>15}CPU: machine {busy / wall:.2f} of {os.cpu_count()} cores busy; "
                f"server workers {server_cpu:.1f} s, bench client {client_cpu:.1f} s, "
                f"other (e.g. PostgreSQL, kernel threads) {busy - server_cpu - client_cpu:.1f} s"
            )
            for _, status, _ in results:
                if str(status) not in ("200", "201"):
                    print(f"      error: {status}")
                    break
        single, many = outcome["1 client"][0], outcome[f"{N_CLIENTS} clients"][0]
        ratio = single / many
        clean = all(e == 0 and d == 0 for _, e, d in outcome.values())
        print(
            f"   throughput {N_CLIENTS} clients / 1 client = {ratio:.2f}  "
            f"(goal ≥ 1.5: {_verdict(ratio >= 1.5)}); no errors, no duplicates: "
            f"{_verdict(clean)}"
        )
        two = single / outcome["2 clients"][0]
        print(f"   throughput 2 clients / 1 client = {two:.2f}")
        lock_probe(server.base_url, key, clicks[-1])


def _cpu(server_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far: the whole machine busy, the server's processes, this process."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    machine_busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # minus idle, iowait
    server = 0
    for pid in _descendants(server_pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        server += int(stat[11]) + int(stat[12])  # utime, stime
    own = os.times()
    return machine_busy, server / tick, own.user + own.system


def lock_probe(base_url: str, key: str, click: Click) -> None:
    """Latency of a small read and a small write sent while another client's upload body is
    still streaming in slowly (~2 s): shows whether a request holds the database from its
    start (authentication) to its commit."""
    import httpx2

    target = new_session(base_url, key, "Lock probe")
    headers = {"X-API-Key": key}

    def slow_body() -> Iterator[bytes]:
        with click.path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                time.sleep(2.0 / (click.size / CHUNK))
                yield chunk

    def slow_upload() -> tuple[float, Any]:
        with httpx2.Client(headers=headers, timeout=TIMEOUT_S) as client:
            return _timed(
                lambda: client.put(
                    f"{target}/{click.click_number}",
                    content=slow_body(),
                    headers={"Content-Digest": f"sha-256=:{click.sha256_b64}:"},
                )
            )

    with httpx2.Client(base_url=base_url, headers=headers, timeout=TIMEOUT_S) as client:
        idle_read = _timed(lambda: client.get("/studies"))[0]
        with ThreadPoolExecutor(max_workers=1) as pool:
            upload = pool.submit(slow_upload)
            time.sleep(0.5)
            read, read_response = _timed(lambda: client.get("/studies"))
            write, write_response = _timed(
                lambda: client.post(
                    "/studies",
                    json={
                        "name": f"Probe {uuid.uuid4().hex[:6]}",
                        "cell_line": "4T1",
                        "injection_model": "intracardiac",
                        "day0": "2026-07-01",
                    },
                )
            )
            upload_s, upload_response = upload.result(timeout=TIMEOUT_S)
    print(
        f"   while one upload body streams in for {upload_s:.1f} s "
        f"({upload_response.status_code}): GET /studies took {read:.2f} s "
        f"({read_response.status_code}; {idle_read * 1000:.0f} ms when idle), "
        f"POST /studies {write:.2f} s ({write_response.status_code})"
    )


def phase_times(tmp: Path, click: Click) -> None:
    """Where one upload's server-side time goes: the same steps the service runs, in-process."""
    import imaging

    print(
        f"\n   where the time of one upload goes (in-process, median of 5, {click.size / 1e6:.1f}"
        " MB click):"
    )
    staging = tmp / "staging"
    staging.mkdir(exist_ok=True)

    def stage() -> Path:
        path = staging / "click.part"
        digest = hashlib.sha256()
        with click.path.open("rb") as src, path.open("wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        return path

    path = stage()
    read = imaging.read_ivis_click(path, name=click.path.name)
    assert read.photograph is not None
    photo = read.photograph
    image = imaging.calibrate_click(read)
    rois = [imaging.roi_from_living_image(r) for r in read.rois]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("stage (hash + write + fsync)", stage),
        ("read_ivis_click (unzip + TIFFs)", lambda: imaging.read_ivis_click(path)),
        (
            "find_animals (photograph)",
            lambda: imaging.find_animals(photo.data, binning=photo.binning, n_animals=5),
        ),
        ("calibrate_click (bias, CR, flat)", lambda: imaging.calibrate_click(read)),
        ("quantify ROIs", lambda: imaging.quantify(image, rois)),
    ]
    total = 0.0
    for name, fn in steps:
        fn()
        med = statistics.median(_timed(fn)[0] for _ in range(5))
        total += med
        print(f"      {name:<34} {med * 1000:7.1f} ms")
    print(
        f"      {'sum':<34} {total * 1000:7.1f} ms (the rest of a request: HTTP, auth, rows, "
        "commit, blob rename)"
    )
    shutil.rmtree(staging)


# --------------------------------------------------------------------------------------------
# 3. memory while a 1 GiB body streams in


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_memory(tmp: Path, warmup: Click) -> None:
    import httpx2

    print("\n3. Server memory while a 1 GiB body streams in (OSTEOLUX_MAX_UPLOAD_BYTES=2 GiB)")
    data_dir = tmp / "data3"
    block = bytearray(os.urandom(CHUNK))
    block[:4] = b"PK\x03\x04"  # looks like a zip from the front
    first = bytes(block)
    rest = os.urandom(CHUNK)
    digest = hashlib.sha256(first)
    for _ in range(GIB // CHUNK - 1):
        digest.update(rest)
    sha_b64 = base64.b64encode(digest.digest()).decode()

    def blob() -> Iterator[bytes]:
        yield first
        for _ in range(GIB // CHUNK - 1):
            yield rest

    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.zip"\r\nContent-Type: application/zip\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def multipart() -> Iterator[bytes]:
        yield head
        yield from blob()
        yield tail

    uploads: list[tuple[str, Callable[[Any, str], Any]]] = [
        (
            "PUT raw body",
            lambda client, target: client.put(
                f"{target}/SYN20260715235959",
                content=blob(),
                headers={
                    "Content-Digest": f"sha-256=:{sha_b64}:",
                    "Content-Length": str(GIB),
                    "Content-Type": "application/zip",
                },
            ),
        ),
        (
            "POST multipart",
            lambda client, target: client.post(
                target,
                content=multipart(),
                headers={
                    "Content-Length": str(len(head) + GIB + len(tail)),
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
            ),
        ),
    ]
    env = {"OSTEOLUX_MAX_UPLOAD_BYTES": str(2 * GIB)}
    verdicts = []
    with osteolux(data_dir, workers=1, **env) as (server, key):
        target = new_session(server.base_url, key, "Memory")
        headers = {"X-API-Key": key}
        with httpx2.Client(headers=headers, timeout=TIMEOUT_S) as client:
            put_click(client, target, warmup).raise_for_status()  # numpy & co. loaded
        pids = _descendants(server.process.pid)
        for name, upload in uploads:
            for pid in pids:  # reset VmHWM to the current RSS (Linux clear_refs "5")
                with suppress(OSError):
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
            baseline = {pid: _status_kib(pid, "VmRSS") for pid in pids}
            peak = dict(baseline)
            done = threading.Event()

            def sample(peak: dict[int, int] = peak, done: threading.Event = done) -> None:
                while not done.wait(0.02):
                    for pid in pids:
                        peak[pid] = max(peak[pid], _status_kib(pid, "VmRSS"))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                with httpx2.Client(headers=headers, timeout=TIMEOUT_S) as client:
                    seconds, response = _timed(
                        lambda upload=upload, client=client: upload(client, target)
                    )
            finally:
                done.set()
                sampler.join(timeout=5)
            hwm = {pid: _status_kib(pid, "VmHWM") for pid in pids}
            staging = data_dir / "blobs" / "staging"
            left = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
            detail = response.json().get("detail", "")[:110] if response.content else ""
            print(
                f"   {name}: 1 GiB in {seconds:.1f} s ({_mbps(GIB, seconds):.0f} MB/s); answer "
                f"{response.status_code}: {detail}"
            )
            worst = 0.0
            for pid in pids:
                base_mib, peak_mib = baseline[pid] / 1024, peak[pid] / 1024
                hwm_mib = hwm[pid] / 1024
                increase = max(peak_mib, hwm_mib) - base_mib
                worst = max(worst, increase)
                print(
                    f"      pid {pid}: baseline RSS {base_mib:.0f} MiB, peak RSS sampled "
                    f"{peak_mib:.0f} MiB, VmHWM {hwm_mib:.0f} MiB; peak increase "
                    f"{increase:.0f} MiB = {increase / 1024:.3f} × the 1 GiB body"
                )
            bounded, empty = worst < 128, not left
            verdicts.append(bounded and empty)
            print(
                f"      memory bounded (peak increase < 128 MiB): {_verdict(bounded)}; staging "
                f"area empty afterwards: {_verdict(empty)} {left if left else ''}"
            )
    print(f"   goal 3 overall: {_verdict(all(verdicts))}")


# --------------------------------------------------------------------------------------------


def _postgres_env(url: str) -> tuple[dict[str, str], Callable[[], None]]:
    from sqlalchemy import text

    from app.db import make_engine

    schema = f"bench_{uuid.uuid4().hex[:8]}"

    def execute(statement: str) -> None:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    env = {"OSTEOLUX_DATABASE_URL": f"{url}{separator}options=-csearch_path%3D{schema}"}
    return env, lambda: execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> int:
    n_clicks = max(N_DUPLICATES, int(os.environ.get("OSTEOLUX_BENCH_CLICKS", "32")))
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 6 * GIB:
        print(f"need ≥ 6 GiB free in {tempfile.gettempdir()}, have {free / GIB:.1f} GiB")
        return 1
    print(f"load average before: {_loadavg()} (other work on these cores skews every number)")
    with tempfile.TemporaryDirectory(prefix="osteolux-bench-") as name:
        tmp = Path(name)
        seconds, clicks = _timed(lambda: make_clicks(tmp / "clicks", n_clicks + 1))
        warmup, clicks = clicks[-1], clicks[:-1]
        print(
            f"{n_clicks + 1} synthetic 2048² clicks written in {seconds:.1f} s "
            f"(median {statistics.median(c.size for c in clicks) / 1e6:.1f} MB, zip stored)"
        )
        bench_throughput(tmp, clicks[:N_THROUGHPUT], warmup)
        bench_concurrency(tmp, clicks, "sqlite")
        phase_times(tmp, clicks[0])
        url = os.environ.get("OSTEOLUX_BENCH_DATABASE_URL")
        if url:
            env, drop = _postgres_env(url)
            try:
                bench_concurrency(tmp, clicks, "postgresql", **env)
            finally:
                drop()
        else:
            print("\n2. [postgresql] skipped: set OSTEOLUX_BENCH_DATABASE_URL to run it")
        bench_memory(tmp, warmup)
    print(f"\nload average after: {_loadavg()}")
    return 0


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
