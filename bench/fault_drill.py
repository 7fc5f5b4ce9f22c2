"""Fault drill: break the things osteolux stands on while instruments upload, and check that
nothing acknowledged is lost, nothing is stored twice, and no client sees a 500 or a hang.

Run as root (it mounts a small tmpfs for the blob store and runs a private PostgreSQL as the
``postgres`` user; never the shared cluster on 5432)::

    sudo .venv/bin/python bench/fault_drill.py

Without root the disk-full step is skipped (said so in the output) and PostgreSQL is started
as the current user. Nothing it starts outlives it. Steps, with 3 uploaders (``PUT`` a click
with Content-Digest and an Idempotency-Key, as ``osteolux push`` does) and a reader
running all along against ``osteolux serve --workers 2`` and one ``osteolux worker``:

1. restart PostgreSQL (``pg_ctl restart -m fast``);
2. ``kill -9`` the postmaster, then start it again (after 1 and 2: is the job worker alive?);
3. ``kill -9`` an API process while uploads are in flight;
4. fill the blob store's disk while uploading, then free it;
5. ``kill -9`` the job worker while a requantification runs, then start another.

A client that gets 503 (the database away, or the file store full) waits its ``Retry-After``
(at most 1 s) and sends the same request again; so does one whose connection broke (the API
process it talked to died). Checked: every answer is 2xx, 4xx-free, 503 *with* Retry-After,
or a broken connection during a kill — never a 500 nor an answer slower than 30 s; the
service answers again without a restart; afterwards ``osteolux fsck`` finds every
acquisition's blob with its SHA-256, ``osteolux clean-staging`` and ``fsck --remove-orphans``
leave no orphan and an empty staging folder, and the acknowledged uploads are exactly the
stored rows.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_load import Clicks, click_headers, imaging_study  # noqa: E402

from app.db import make_engine  # noqa: E402
from tests.live_server import (  # noqa: E402
    free_port,
    live_server,
    osteolux_env,
    run_cli,
    serving_processes,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HANG_S = 30.0
IS_ROOT = os.geteuid() == 0


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary folder, on its own port."""

    def __init__(self, where: Path) -> None:
        self.data = where / "pgdata"
        self.log = where / "postgres.log"
        self.port = free_port()
        self.user = "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
        where.chmod(0o755)
        self.data.mkdir()
        if IS_ROOT:
            shutil.chown(self.data, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
            "CREATE DATABASE drill",
        )  # fmt: skip
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/drill"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if IS_ROOT:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, *args)

    def start(self) -> None:
        for _ in range(20):  # after a kill -9 the old backends may take a moment to go
            try:
                self._ctl("start", "-w", "-t", "30")
                return
            except subprocess.CalledProcessError:
                time.sleep(0.5)
        raise RuntimeError(f"PostgreSQL did not start again: see {self.log}")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast", "-w", "-t", "30")

    def kill_postmaster(self) -> None:
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate", "-w")


@contextlib.contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[bool]:
    """A tmpfs of ``megabytes`` at ``where`` (root only); whether it is one."""
    where.mkdir(parents=True)
    mounted = False
    if IS_ROOT:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = result.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


@dataclass
class Seen:
    """What the clients saw in one phase."""

    answers: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # 500s, hangs, 503 without Retry-After
    slowest: float = 0.0
    last_ok: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, seconds: float, bad: str | None = None) -> None:
        with self.lock:
            self.answers[what] += 1
            self.slowest = max(self.slowest, seconds)
            if bad:
                self.bad.append(bad)
            if what.startswith("2"):
                self.last_ok = time.monotonic()


class Drill:
    def __init__(self, base_url: str, headers: dict[str, str], study: str, session: str) -> None:
        self.base_url = base_url
        self.headers = headers
        self.study = study
        self.session = session
        self.seen = Seen()
        self.acknowledged: set[str] = set()
        self.given_up: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _attempt(self, client: httpx2.Client, method: str, url: str, **kw: object) -> str | None:
        """Send once; the retry wait in seconds as text ('' = done), or None when broken."""
        started = time.monotonic()
        try:
            answer = client.request(method, url, timeout=HANG_S, **kw)  # type: ignore[arg-type]
        except httpx2.TimeoutException:
            self.seen.note("hang", time.monotonic() - started, f"no answer in {HANG_S:g} s")
            return None
        except httpx2.TransportError as exc:
            self.seen.note(f"broken connection ({type(exc).__name__})", 0.0)
            return None
        took = time.monotonic() - started
        code = answer.status_code
        if code == 503:
            retry = answer.headers.get("retry-after")
            self.seen.note(str(code), took, None if retry else f"{code} without Retry-After")
            return retry or "1"
        self.seen.note(str(code), took, f"{code}: {answer.text[:200]}" if code >= 500 else None)
        return "" if answer.is_success else "fail"

    def upload_loop(self, clicks: Clicks) -> None:
        with httpx2.Client(base_url=self.base_url, headers=self.headers) as client:
            while not self.stop.is_set():
                number, body = clicks.take()
                url = f"/studies/{self.study}/sessions/{self.session}/acquisitions/{number}"
                headers = click_headers(body, f"drill-{number}")
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    outcome = self._attempt(client, "PUT", url, content=body, headers=headers)
                    if outcome == "":
                        with self.lock:
                            self.acknowledged.add(number)
                        break
                    if outcome == "fail":
                        break
                    time.sleep(min(float(outcome or 0.5), 1.0))
                else:
                    with self.lock:
                        self.given_up.append(number)
                self.stop.wait(0.3)  # an instrument's pace, not a flood

    def read_loop(self) -> None:
        with httpx2.Client(base_url=self.base_url, headers=self.headers) as client:
            while not self.stop.is_set():
                self._attempt(client, "GET", f"/studies/{self.study}/sessions/{self.session}")
                time.sleep(0.1)

    def phase(self, name: str, fault: Callable[[], None]) -> None:
        """Run ``fault`` with the clients running; report what they saw and the recovery."""
        self.seen = Seen()
        time.sleep(1.5)
        started = time.monotonic()
        fault()
        ended = time.monotonic()
        while time.monotonic() - ended < 60 and self.seen.last_ok <= ended:
            time.sleep(0.1)
        time.sleep(1.0)
        seen = self.seen
        recovered = seen.last_ok > ended
        answers = ", ".join(f"{k} ×{v}" for k, v in sorted(seen.answers.items()))
        print(f"\n[{name}] fault took {ended - started:.1f} s")
        print(f"  answers: {answers}")
        print(f"  slowest answer {seen.slowest:.2f} s; 500s/hangs/no Retry-After: {len(seen.bad)}")
        for bad in sorted(set(seen.bad))[:5]:
            print(f"  ! {bad}")
        print(
            "  recovered without a restart: "
            + (f"yes, {seen.last_ok - ended:.1f} s after the fault" if recovered else "NO")
        )
        self.failures += len(seen.bad) + (not recovered)

    failures = 0


def get_json(client: httpx2.Client, url: str) -> dict[str, object]:
    """The JSON answer, or {} when there is none yet (busy, unreachable)."""
    try:
        answer = client.get(url, timeout=HANG_S)
    except httpx2.TransportError:
        return {}
    return answer.json() if answer.status_code == 200 else {}


def start_worker(data_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env=osteolux_env(data_dir, **env),
        stdout=(data_dir / "worker.log").open("ab"),
        stderr=subprocess.STDOUT,
    )


def fill(disk: Path) -> Path:
    """Fill the file system holding ``disk`` to the last byte; the filler file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to flush at close
        for size in (2**20, 2**16, 2**12, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    return filler


def cli(data_dir: Path, env: dict[str, str], *args: str) -> str:
    done = run_cli(data_dir, *args, env=env)
    return (done.stdout + done.stderr).strip()


def main() -> int:
    print(f"fault drill as {'root' if IS_ROOT else 'a normal user'} (uid {os.geteuid()})")
    with contextlib.ExitStack() as stack:
        where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="osteolux-drill-")))
        postgres = PrivatePostgres(where)
        stack.callback(postgres.stop)
        logs = Path(tempfile.mkdtemp(prefix="osteolux-drill-logs-"))
        stack.callback(
            lambda: (
                [shutil.copy(p, logs) for p in (where / "data").glob("*.log")]
                + [print(f"logs kept in {logs}")]
            )
        )
        print(f"private PostgreSQL 15 on 127.0.0.1:{postgres.port} (data in {postgres.data})")
        blob_dir = where / "blobs"
        tmpfs = stack.enter_context(small_disk(blob_dir, 256))
        print(
            "blob store on a 256 MB tmpfs"
            if tmpfs
            else "blob store on the ordinary disk (not root: the disk-full step is skipped)"
        )
        data_dir = where / "data"
        env = {
            "OSTEOLUX_DATABASE_URL": postgres.url,
            "OSTEOLUX_BLOB_DIR": str(blob_dir),
            "OSTEOLUX_JOBS_STALLED_S": "5",
            "OSTEOLUX_JOBS_HEARTBEAT_S": "1",
        }
        created = run_cli(data_dir, "create-lab", "Drill Lab", env=env)
        assert created.returncode == 0, created.stderr
        headers = {"X-API-Key": created.stdout.strip().splitlines()[-1]}
        clicks = Clicks(where / "clicks")
        serve_args = ("--workers", "2", "--no-migrate")
        base_url = stack.enter_context(
            live_server(
                data_dir, extra_args=serve_args, log=data_dir / "serve.log", wait_s=120, **env
            )
        )
        port = int(base_url.rsplit(":", 1)[1])
        worker = start_worker(data_dir, env)
        stack.callback(lambda: (worker.kill(), worker.wait()))
        preloaded: set[str] = set()
        with httpx2.Client(base_url=base_url, headers=headers, timeout=60) as client:
            # the second session, with a few clicks: a requantification job of some seconds
            study, (session, job_session) = imaging_study(client)
            for _ in range(16):
                number, body = clicks.take()
                client.put(
                    f"/studies/{study}/sessions/{job_session}/acquisitions/{number}",
                    content=body,
                    headers=click_headers(body),
                ).raise_for_status()
                preloaded.add(number)
        drill = Drill(base_url, headers, study, session)
        threads = [threading.Thread(target=drill.upload_loop, args=(clicks,)) for _ in range(3)]
        threads.append(threading.Thread(target=drill.read_loop))
        for thread in threads:
            thread.start()
        try:

            def worker_survived(what: str) -> None:
                nonlocal worker
                if worker.poll() is None:
                    print(f"  osteolux worker survived {what}")
                    return
                print(f"  FINDING: osteolux worker exited ({worker.returncode}) on {what}")
                drill.failures += 1
                worker = start_worker(data_dir, env)

            drill.phase("1. restart PostgreSQL", postgres.restart)
            worker_survived("the PostgreSQL restart")

            def kill_postmaster() -> None:
                postgres.kill_postmaster()
                time.sleep(2.0)
                postgres.start()

            drill.phase("2. kill -9 the postmaster, start it again", kill_postmaster)
            worker_survived("the postmaster's kill -9")

            def kill_api() -> None:
                _, before = serving_processes(port)
                os.kill(before[0], signal.SIGKILL)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    _, now = serving_processes(port)
                    if len(now) == len(before) and before[0] not in now:
                        print(f"  API process {before[0]} killed; replaced by the supervisor")
                        return
                    time.sleep(0.2)
                print(f"  API process {before[0]} killed; NOT replaced within 60 s")

            drill.phase("3. kill -9 an API process mid-upload", kill_api)

            if tmpfs:

                def disk_full() -> None:
                    filler = fill(blob_dir)
                    print(
                        f"  blob store's disk full ({filler.stat().st_size / 2**20:.0f} MB filler)"
                    )
                    time.sleep(5.0)
                    filler.unlink()

                drill.phase("4. fill the blob store's disk mid-upload, then free it", disk_full)

            def kill_worker() -> None:
                nonlocal worker
                with httpx2.Client(base_url=base_url, headers=headers, timeout=60) as client:
                    job = client.post(
                        f"/studies/{study}/requantify",
                        params={"session_id": job_session},
                        headers={"X-Change-Reason": "drill"},
                    )
                    location = job.headers.get("location", "")
                    state = ""
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and state != "running":
                        state = str(get_json(client, location).get("state", ""))
                        time.sleep(0.05)
                    alive = worker.poll() is None
                    worker.kill()
                    worker.wait()
                    print(f"  job worker (alive: {alive}) killed with the job {state}")
                    worker = start_worker(data_dir, env)
                    deadline = time.monotonic() + 180
                    body: dict[str, object] = {}
                    while time.monotonic() < deadline:
                        body = get_json(client, location)
                        if body.get("state") in ("succeeded", "failed"):
                            break
                        time.sleep(0.5)
                    print(
                        f"  after a new worker: job {body.get('state')}, attempts "
                        f"{body.get('attempts')}, result {body.get('result')}"
                    )
                    if body.get("state") != "succeeded":
                        drill.failures += 1

            drill.phase("5. kill -9 the job worker mid-job", kill_worker)
        finally:
            drill.stop.set()
            for thread in threads:
                thread.join()
        print("\nafter the drill")
        print("  fsck:", cli(data_dir, env, "fsck").replace("\n", "\n        "))
        print("  clean-staging:", cli(data_dir, env, "clean-staging", "--older-than-hours", "0"))
        print(
            "  fsck --remove-orphans:",
            cli(data_dir, env, "fsck", "--remove-orphans", "--grace-hours", "0").replace(
                "\n", "\n        "
            ),
        )
        final = cli(data_dir, env, "fsck")
        print("  fsck again:", final.replace("\n", "\n        "))
        staging = blob_dir / "staging"
        left = list(staging.iterdir()) if staging.is_dir() else []
        engine = make_engine(postgres.url)
        with engine.connect() as connection:
            rows = [
                r[0]
                for r in connection.execute(
                    text(
                        "SELECT a.click_number FROM acquisition a JOIN imaging_session s "
                        "ON s.id = a.session_id WHERE s.study_id = :study"
                    ),
                    {"study": study},
                )
            ]
        engine.dispose()
        stored = set(rows)
        stored -= preloaded
        rows = [r for r in rows if r not in preloaded]
        lost = drill.acknowledged - stored
        extra = stored - drill.acknowledged - set(drill.given_up)
        duplicated = len(rows) - len(stored)
        print(
            f"  uploads acknowledged {len(drill.acknowledged)}, rows {len(rows)}: lost "
            f"{len(lost)}, duplicated {duplicated}, stored but never acknowledged {len(extra)}; "
            f"given up by the client after 90 s {len(drill.given_up)}"
        )
        print(f"  staging files left: {len(left)}")
        damaged = "MISSING" in final or "CORRUPT" in final or "ORPHAN" in final
        drill.failures += len(lost) + duplicated + len(extra) + len(left) + damaged
        print(
            f"\nfault drill: {'PASSED' if drill.failures == 0 else f'{drill.failures} FAILURE(S)'}"
        )
        return 0 if drill.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
