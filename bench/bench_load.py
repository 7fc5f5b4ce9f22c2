"""Load bench: real `osteolux serve --workers N` processes on PostgreSQL, loopback only, a
realistic mix of clients at 1, 4, 16 and 64 at once; throughput, p50/p99 per kind, errors,
and the rows counted afterwards (nothing lost, nothing stored twice).

Run: ``.venv/bin/python bench/bench_load.py`` with ``OSTEOLUX_BENCH_POSTGRES_URL`` (or
``OSTEOLUX_TEST_POSTGRES_URL``) naming a throwaway PostgreSQL database: the bench works in a
schema of its own and drops it at the end. Without one it says so and does nothing.
Options: ``--api-workers 2``, ``--levels 1,4,16,64``, ``--seconds 20`` per level.

The mix (each client picks one at random, then the next, with no pause):

- instruments uploading clicks (``PUT …/acquisitions/{click}`` with Content-Digest and an
  Idempotency-Key, retried on 503 with the same key, as ``osteolux push`` does) 15 %;
- technicians listing studies 20 %, reading a session's acquisitions 15 % and the study's
  measurements 20 %, and rendering an overlay 10 %;
- PIs running a comparison (mixed models, survival, plots; at a random site) 10 % and a
  summary 10 % on a study of 4 arms × 12 animals × 16 days × 6 sites. Comparisons are sent
  with ``Prefer: respond-async`` (a job run by ``osteolux worker``; the client polls it to
  the end, which its latency includes); ``--sync-comparisons`` computes them in the request.

Throughput counts the requests completed within each level's window; those still in flight
when it closes are waited for (their rows are counted) but not counted.

A 503 answer carries Retry-After: the client waits (at most 2 s) and sends the same request
again, at most 5 times; the request's latency includes those waits. An error is any other
non-2xx answer, a 503 after the last try, or a transport error. A probe sends ``GET /health``
every 50 ms throughout. After each level the acquisitions are counted in the database:
*lost* = acknowledged but absent, *duplicated* = one click stored twice, *unacknowledged* =
stored but never acknowledged to its client.

Then *held load*: 4 clients run comparisons back to back and one requantifies the imaging
study, while 4 technicians read (studies, acquisitions, measurements), each pausing about
``--reader-pause`` seconds (0.5–1.5×) between reads as a person looking at the answer does,
and the probe checks /health. The same held load is then run with the 4 readers reading back
to back, which keeps both cores busy by itself (context: it measures the readers more than
the jobs). Targets (issue #14): 16 clients ≥ 1.5× one client; /health p99 < 50 ms and read
p99 < 300 ms under held load; 0 errors, 0 lost, 0 duplicated. Figures are printed, never
asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx2
import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_comparisons import SITES, THRESHOLD, build_study  # noqa: E402

from app.db import make_engine  # noqa: E402
from imaging import default_hotel, write_synthetic_click  # noqa: E402
from tests.live_server import live_server, osteolux_env, run_cli  # noqa: E402

MIX = {
    "upload": 0.15,
    "list_studies": 0.20,
    "acquisitions": 0.15,
    "measurements": 0.20,
    "overlay": 0.10,
    "comparison": 0.10,
    "summary": 0.10,
}
READS = ("list_studies", "acquisitions", "measurements")
EAR_TAGS = [str(3466 + i) for i in range(5)]
BASE_CLICK = "SYN20260715101500"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q, method="higher"))


@dataclass
class Tally:
    """What the clients of one level saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    retried: int = 0
    reconnected: int = 0
    acknowledged: set[str] = field(default_factory=set)  # click numbers stored (2xx)
    lock: threading.Lock = field(default_factory=threading.Lock)

    window_end: float = float("inf")
    in_window: int = 0

    def add(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error is None and time.perf_counter() <= self.window_end:
                self.in_window += 1
            if error is None:
                self.latencies[kind].append(seconds)
            else:
                self.errors[kind].append(error)

    @property
    def done(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def failed(self) -> int:
        return sum(len(v) for v in self.errors.values())


class Clicks:
    """Distinct clicks for upload: one synthetic Living Image folder, each copy with its own
    click number (so its own bytes and SHA-256), zipped on demand."""

    def __init__(self, folder: Path) -> None:
        mice, sources = default_hotel()
        click = write_synthetic_click(
            folder / BASE_CLICK, mice=mice, sources=sources, click_number=BASE_CLICK
        )
        self.files = {p.name: p.read_bytes() for p in sorted(click.path.iterdir())}
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[str, bytes]:
        with self._lock:
            self._next += 1
            n = self._next
        number = f"SYN2026071510{n:04d}"[: len(BASE_CLICK)] if n < 10000 else f"SYN{n}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, content in self.files.items():
                if name.lower().endswith(".txt"):
                    content = content.replace(BASE_CLICK.encode(), number.encode())
                archive.writestr(f"{number}/{name}", content)
        return number, buffer.getvalue()


@dataclass
class World:
    """The studies the clients work on."""

    base_url: str
    headers: dict[str, str]
    cohort_study: str  # for comparisons and summaries
    treatment_arm: str
    imaging_study: str  # receives the uploads
    sessions: list[str]
    acquisition: str  # one with an image, for overlays
    clicks: Clicks
    sync_comparisons: bool = False


def send(
    client: httpx2.Client, method: str, url: str, tally: Tally, **kwargs: object
) -> httpx2.Response | str:
    """The final answer after retries on 503 + Retry-After, or what went wrong."""
    for attempt in range(5):
        try:
            answer = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx2.TransportError as exc:
            # a kept-alive connection the server closed as it was reused: an idempotent
            # request (every one here: GETs, PUTs with a key, jobs keyed by their inputs)
            # is sent again once, as httpx-based clients do; a second failure is an error
            if attempt > 0:
                return f"{type(exc).__name__}"
            with tally.lock:
                tally.reconnected += 1
            continue
        if answer.status_code != 503 or attempt == 4:
            return answer
        if "retry-after" not in answer.headers:
            return "503 without Retry-After"
        with tally.lock:
            tally.retried += 1
        time.sleep(min(float(answer.headers["retry-after"]), 2.0))
    raise AssertionError("unreachable")


def wait_for_job(client: httpx2.Client, answer: httpx2.Response, tally: Tally) -> str | None:
    """A 202 (a job): poll its resource until it ends; None when it succeeded."""
    location = answer.headers.get("location") or answer.json().get("links", {}).get("self")
    if not location:
        return "202 without a job location"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = send(client, "GET", location, tally)
        if isinstance(state, str):
            return state
        body = state.json()
        status = str(body.get("state") or body.get("status") or "")
        if status in {"succeeded", "done", "finished", "complete", "completed"}:
            return None
        if status in {"failed", "cancelled", "error"}:
            return f"job {status}: {body.get('error')}"
        time.sleep(0.2)
    return "job did not finish in 300 s"


def request(
    kind: str, world: World, client: httpx2.Client, tally: Tally, rng: random.Random
) -> None:
    study = f"/studies/{world.imaging_study}"
    session = rng.choice(world.sessions)
    key = None
    started = time.perf_counter()
    if kind == "upload":
        number, body = world.clicks.take()
        key = number
        answer = send(
            client,
            "PUT",
            f"{study}/sessions/{session}/acquisitions/{number}",
            tally,
            content=body,
            headers=click_headers(body, f"bench-{number}"),
        )
    elif kind == "list_studies":
        answer = send(client, "GET", "/studies", tally)
    elif kind == "acquisitions":
        answer = send(client, "GET", f"{study}/sessions/{session}/acquisitions", tally)
    elif kind == "measurements":
        answer = send(client, "GET", f"{study}/measurements", tally, params={"limit": 100})
    elif kind == "overlay":
        answer = send(
            client,
            "GET",
            f"{study}/sessions/{world.sessions[0]}/acquisitions/{world.acquisition}/overlay.png",
            tally,
        )
    elif kind == "comparison":
        answer = send(
            client,
            "POST",
            f"/studies/{world.cohort_study}/comparisons",
            tally,
            json={
                "treatment_arm_id": world.treatment_arm,
                "threshold": THRESHOLD,
                "site": rng.choice(SITES),  # distinct inputs: distinct jobs, no sharing
            },
            headers={} if world.sync_comparisons else {"Prefer": "respond-async"},
        )
    elif kind == "summary":
        answer = send(client, "GET", f"/studies/{world.cohort_study}/summary", tally)
    elif kind == "requantify":
        answer = send(
            client, "POST", f"{study}/requantify", tally, headers={"X-Change-Reason": "bench"}
        )
    else:
        raise ValueError(kind)
    error: str | None
    if isinstance(answer, str):
        error = answer
    elif answer.status_code == 202:
        error = wait_for_job(client, answer, tally)
    elif answer.is_success:
        error = None
    else:
        error = f"{answer.status_code} {answer.text[:120]}"
    if key is not None and error is None:
        with tally.lock:
            tally.acknowledged.add(key)
    tally.add(kind, time.perf_counter() - started, error)


def client_loop(
    world: World,
    tally: Tally,
    stop: threading.Event,
    seed: int,
    kinds: tuple[str, ...] = (),
    pause: float = 0.0,
) -> None:
    rng = random.Random(seed)
    names, weights = list(MIX), list(MIX.values())
    with httpx2.Client(base_url=world.base_url, headers=world.headers, timeout=300) as client:
        while not stop.is_set():
            kind = rng.choice(kinds) if kinds else rng.choices(names, weights)[0]
            request(kind, world, client, tally, rng)
            if pause:
                stop.wait(rng.uniform(0.5, 1.5) * pause)


def health_probe(base_url: str, out: Connection, stop: EventType) -> None:
    """GET /health every 50 ms until ``stop``; sends the latencies (inf: no answer). Runs in
    a process of its own, so the clients' threads cannot delay it (only the server can)."""
    samples: list[float] = []
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = client.get("/health").status_code == 200
            except httpx2.TransportError:
                ok = False
            samples.append(time.perf_counter() - started if ok else float("inf"))
            stop.wait(0.05)
    out.send(samples)


def run_clients(
    world: World, groups: list[tuple[int, tuple[str, ...], float]], seconds: float
) -> tuple[Tally, list[float], float]:
    """Run groups of (count, kinds, pause between requests) clients for ``seconds``; their
    tally, /health samples and the elapsed time (until the last request in flight ended)."""
    tally, stop = Tally(), threading.Event()
    context = multiprocessing.get_context("fork")  # before any client thread starts
    probe_stop = context.Event()
    receiver, sender = context.Pipe(duplex=False)
    probe = context.Process(target=health_probe, args=(world.base_url, sender, probe_stop))
    probe.start()
    threads = []
    seed = 0
    for count, kinds, pause in groups:
        for _ in range(count):
            seed += 1
            threads.append(
                threading.Thread(target=client_loop, args=(world, tally, stop, seed, kinds, pause))
            )
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    tally.window_end = time.perf_counter()
    stop.set()
    for thread in threads:  # the requests in flight end (rows are counted after them)
        thread.join()
    elapsed = tally.window_end - started
    probe_stop.set()
    health = receiver.recv()
    probe.join()
    return tally, health, elapsed


def count_rows(database_url: str, study_id: str) -> tuple[int, set[str]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT a.click_number FROM acquisition a JOIN imaging_session s "
                    "ON s.id = a.session_id WHERE s.study_id = :study"
                ),
                {"study": study_id},
            ).all()
    finally:
        engine.dispose()
    return len(rows), {r[0] for r in rows}


def click_headers(body: bytes, idempotency_key: str | None = None) -> dict[str, str]:
    """The headers of an instrument's click upload: its SHA-256 and, if given, a key."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers = {"Content-Digest": f"sha-256=:{digest}:", "Content-Type": "application/zip"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def imaging_study(client: httpx2.Client, days: tuple[int, ...] = (15, 16)) -> tuple[str, list[str]]:
    """A study with animals 3466–3470 (the synthetic clicks' ear tags) and an imaging
    session on each of ``days`` of July 2026: the study's id and the sessions' ids."""
    study = client.post(
        "/studies",
        json={
            "name": f"imaging core {uuid.uuid4().hex[:6]}",
            "cell_line": "MDA-MB-231-luc",
            "injection_model": "intracardiac",
            "day0": "2026-07-01",
        },
    ).json()["id"]
    arm = client.post(
        f"/studies/{study}/arms",
        json={"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
    ).json()["id"]
    for tag in EAR_TAGS:
        client.post(
            f"/studies/{study}/animals", json={"identifier": tag, "arm_id": arm}
        ).raise_for_status()
    sessions = [
        client.post(
            f"/studies/{study}/sessions", json={"acquired_at": f"2026-07-{day}T10:15:00+02:00"}
        ).json()["id"]
        for day in days
    ]
    return study, sessions


def build_world(base_url: str, headers: dict[str, str], clicks: Clicks) -> World:
    with httpx2.Client(base_url=base_url, headers=headers, timeout=300) as client:
        cohort_study, treatment = build_study(client, 12, np.random.default_rng(7))  # type: ignore[arg-type]
        study, sessions = imaging_study(client)
        number, body = clicks.take()
        first = client.put(
            f"/studies/{study}/sessions/{sessions[0]}/acquisitions/{number}",
            content=body,
            headers=click_headers(body),
        )
        assert first.status_code == 201, first.text
    return World(
        base_url,
        headers,
        cohort_study,
        treatment,
        study,
        sessions,
        first.json()["id"],
        clicks,
    )


def report_level(label: str, tally: Tally, health: list[float], elapsed: float) -> dict[str, float]:
    throughput = tally.in_window / elapsed
    print(
        f"\n{label}: {tally.in_window} requests done in {elapsed:.1f} s = {throughput:.1f}/s "
        f"({tally.done} with those in flight at the end); "
        f"errors {tally.failed}; 503 answers retried {tally.retried}; "
        f"broken connections sent again {tally.reconnected}; "
        f"/health p50 {percentile(health, 50) * 1000:.1f} ms, "
        f"p99 {percentile(health, 99) * 1000:.1f} ms (n={len(health)})"
    )
    print(f"  {'kind':14}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for kind in sorted(set(tally.latencies) | set(tally.errors)):
        values = tally.latencies.get(kind, [])
        print(
            f"  {kind:14}{len(values):>6}{percentile(values, 50) * 1000:>10.0f}"
            f"{percentile(values, 99) * 1000:>10.0f}{len(tally.errors.get(kind, [])):>8}"
        )
    for kind, errors in tally.errors.items():
        for error in sorted(set(errors))[:3]:
            print(f"  ! {kind}: {error}")
    reads = [v for k in READS for v in tally.latencies.get(k, [])]
    return {
        "throughput": throughput,
        "errors": tally.failed,
        "health_p99": percentile(health, 99),
        "read_p99": percentile(reads, 99),
    }


@contextmanager
def job_workers(
    data_dir: Path, env: dict[str, str], count: int, *, nice: int = 10
) -> Iterator[int]:
    """``osteolux worker`` processes for the jobs (requantification, comparisons) on
    PostgreSQL, when this version has the command, at CPU priority ``nice`` (``worker
    --nice``, 10 as it defaults to: the API processes get the CPU first); how many run."""
    probe = run_cli(data_dir, "worker", "--help", env=env)
    if probe.returncode != 0 or count == 0:
        yield 0
        return
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--nice", str(nice)],
            cwd=ROOT,
            env=osteolux_env(data_dir, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # DEVNULL never fills, unlike an unread pipe
        )
        for _ in range(count)
    ]
    try:
        yield count
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def bench_schema(url: str) -> Iterator[str]:
    schema = f"bench_load_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema}_procrastinate CASCADE"))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=15.0, help="per level")
    parser.add_argument("--held-seconds", type=float, default=30.0)
    parser.add_argument(
        "--reader-pause",
        type=float,
        default=1.0,
        help="seconds a reader pauses between reads under held load (0.5–1.5× this)",
    )
    parser.add_argument("--job-workers", type=int, default=1, help="osteolux worker processes")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="the job workers' `--nice` (default 10, the worker's own; 0: the API's priority)",
    )
    parser.add_argument(
        "--sync-comparisons",
        action="store_true",
        help="comparisons computed inside the request (default: as jobs, Prefer: respond-async)",
    )
    args = parser.parse_args(argv)
    url = os.environ.get("OSTEOLUX_BENCH_POSTGRES_URL") or os.environ.get(
        "OSTEOLUX_TEST_POSTGRES_URL"
    )
    if not url:
        print("bench_load: set OSTEOLUX_BENCH_POSTGRES_URL to a throwaway PostgreSQL database")
        return 0
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp, bench_schema(url) as database_url:
        data_dir = Path(tmp) / "data"
        env = {"OSTEOLUX_DATABASE_URL": database_url}
        created = run_cli(data_dir, "create-lab", "Load Lab", env=env)
        assert created.returncode == 0, created.stderr
        headers = {"X-API-Key": created.stdout.strip().splitlines()[-1]}
        clicks = Clicks(Path(tmp) / "clicks")
        serve_args = ("--workers", str(args.api_workers), "--no-migrate")
        with (
            live_server(data_dir, extra_args=serve_args, wait_s=120, **env) as base_url,
            job_workers(data_dir, env, args.job_workers, nice=args.worker_nice) as job_processes,
        ):
            started = time.perf_counter()
            world = build_world(base_url, headers, clicks)
            world.sync_comparisons = args.sync_comparisons
            print(
                f"osteolux serve --workers {args.api_workers} and {job_processes} osteolux "
                f"worker(s) (nice {args.worker_nice}) on PostgreSQL; set up in "
                f"{time.perf_counter() - started:.1f} s; mix "
                + ", ".join(f"{k} {v:.0%}" for k, v in MIX.items())
            )
            results: dict[int, dict[str, float]] = {}
            problems = 0
            for clients in levels:
                before, _ = count_rows(database_url, world.imaging_study)
                tally, health, elapsed = run_clients(world, [(clients, (), 0.0)], args.seconds)
                results[clients] = report_level(f"{clients} client(s)", tally, health, elapsed)
                rows, stored = count_rows(database_url, world.imaging_study)
                lost = len(tally.acknowledged - stored)
                duplicated = rows - len(stored)
                unacknowledged = rows - before - len(tally.acknowledged)
                problems += lost + duplicated + tally.failed
                print(
                    f"  uploads acknowledged {len(tally.acknowledged)}, rows added "
                    f"{rows - before}: lost {lost}, duplicated {duplicated}, stored but "
                    f"unacknowledged {unacknowledged}"
                )
            jobs: list[tuple[int, tuple[str, ...], float]] = [
                (4, ("comparison",), 0.0),
                (1, ("requantify",), 0.0),
            ]
            held: dict[str, dict[str, float]] = {}
            for name, pause in (("paced", args.reader_pause), ("back to back", 0.0)):
                tally, health, elapsed = run_clients(
                    world, [*jobs, (4, READS, pause)], args.held_seconds
                )
                readers = f"4 readers pausing ~{pause:g} s" if pause else "4 readers back to back"
                held[name] = report_level(
                    f"held load: 4 comparisons + 1 requantification + {readers}",
                    tally,
                    health,
                    elapsed,
                )
                problems += tally.failed
        alone = results.get(1, {}).get("throughput", float("nan"))
        print("\nsummary")
        for clients, figures in results.items():
            print(
                f"  {clients:>3} client(s): {figures['throughput']:6.1f} req/s "
                f"({figures['throughput'] / alone:.2f}× one client), "
                f"/health p99 {figures['health_p99'] * 1000:.0f} ms, errors {figures['errors']:.0f}"
            )
        if 16 in results:
            ratio = results[16]["throughput"] / alone
            print(f"  16 clients / 1 client = {ratio:.2f}× (target ≥ 1.5×)")
        for name, under in held.items():
            print(
                f"  held load, readers {name}: /health p99 {under['health_p99'] * 1000:.0f} ms "
                f"(target < 50), read p99 {under['read_p99'] * 1000:.0f} ms (target < 300)"
            )
        print(f"  errors + lost + duplicated rows: {problems} (target 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
