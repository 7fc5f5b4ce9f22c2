"""``osteolux push`` against a real ``osteolux serve``, with real click folders on disk."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest

from imaging import default_hotel, write_synthetic_click
from osteolux_push import STATE_FILE, PushOptions, click_time, push, zip_click
from tests.live_server import ROOT, free_port, live_server, run_cli

ANIMALS = [str(3466 + i) for i in range(5)]
LONG_AGO = time.time() - 3600


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("push-server") / "data"
    created = run_cli(data_dir, "create-lab", "Push Lab")
    assert created.returncode == 0, created.stderr
    with live_server(data_dir) as base_url:
        yield base_url, created.stdout.strip().splitlines()[-1]


@dataclasses.dataclass
class Study:
    url: str
    key: str
    id: str

    def get(self, path: str, **params: Any) -> Any:
        response = httpx2.get(
            f"{self.url}/studies/{self.id}{path}",
            headers={"X-API-Key": self.key},
            params=params,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def acquisitions(self) -> dict[str, list[str]]:
        """Local date of each imaging session → click numbers stored in it."""
        return {
            s["acquired_on"]: [
                a["click_number"] for a in self.get(f"/sessions/{s['id']}/acquisitions")
            ]
            for s in self.get("/sessions")["items"]
        }


@pytest.fixture
def study(server: tuple[str, str]) -> Study:
    base_url, key = server
    headers = {"X-API-Key": key}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx2.post(f"{base_url}{path}", headers=headers, json=body, timeout=30)
        assert response.status_code == 201, response.text
        return dict(response.json())

    created = post(
        "/studies",
        {
            "name": f"BM push {time.monotonic_ns()}",
            "cell_line": "MDA-MB-231-luc",
            "injection_model": "intracardiac",
            "day0": "2026-07-01",
        },
    )
    arm = post(
        f"/studies/{created['id']}/arms",
        {"name": "Vehicle", "role": "control", "agent_class": "vehicle"},
    )
    for animal in ANIMALS:
        post(f"/studies/{created['id']}/animals", {"identifier": animal, "arm_id": arm["id"]})
    return Study(base_url, key, created["id"])


def make_click(
    parent: Path,
    name: str,
    *,
    animals: list[str] = ANIMALS,
    skip: tuple[str, ...] = (),
    settled: bool = True,
    written_at: float = LONG_AGO,
) -> Path:
    """A synthetic Living Image click folder; ``settled`` dates every file ``written_at``."""
    mice, sources = default_hotel()
    mice = tuple(
        dataclasses.replace(m, animal_number=a) for m, a in zip(mice, animals, strict=True)
    )
    folder = write_synthetic_click(
        parent / name, mice=mice, sources=sources, click_number=name
    ).path
    for file in skip:
        (folder / file).unlink()
    if settled:
        for path in [*folder.iterdir(), folder]:
            os.utime(path, (written_at, written_at))
    return folder


def push_command(study: Study, folder: Path, *args: str) -> list[str]:
    """``osteolux push FOLDER --url … --study … ARGS`` as a process."""
    command = [sys.executable, "-m", "app.cli", "push", str(folder)]
    return [*command, "--url", study.url, "--study", study.id, *args]


def push_cli(study: Study, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a technician runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTEOLUX_")}
    return subprocess.run(
        push_command(study, folder, "--backoff", "0.05", *args),
        cwd=ROOT,
        env=env | {"OSTEOLUX_API_KEY": study.key},
        capture_output=True,
        text=True,
        timeout=120,
    )


def options(study: Study, folder: Path, /, **overrides: Any) -> PushOptions:
    """In-process options with short retry delays."""
    defaults: dict[str, Any] = {"url": study.url, "study": study.id, "key": study.key}
    defaults |= {"retries": 3, "backoff_s": 0.05, "max_backoff_s": 0.2}
    return PushOptions(folder=folder, **(defaults | overrides))


def test_pushes_each_complete_click_once(study: Study, tmp_path: Path) -> None:
    inbox = tmp_path / "LivingImage"
    inbox.mkdir()
    make_click(inbox, "SYN20260715101500")
    make_click(inbox / "2026-07-18", "SYN20260718093000")  # one level deeper

    first = push_cli(study, inbox, "--instrument", "IVIS Spectrum 2.14")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "stored: SYN20260715101500 → session 2026-07-15 (day 14), 5 animals" in first.stdout
    assert "stored: SYN20260718093000 → session 2026-07-18 (day 17)" in first.stdout
    expected = {"2026-07-15": ["SYN20260715101500"], "2026-07-18": ["SYN20260718093000"]}
    assert study.acquisitions() == expected
    sessions = study.get("/sessions")["items"]
    assert {s["instrument"] for s in sessions} == {"IVIS Spectrum 2.14"}
    assert {s["operator"] for s in sessions} == {"synthetic"}  # the click's 'User' label
    state = json.loads((inbox / STATE_FILE).read_text())["clicks"]
    assert sorted(state) == ["2026-07-18/SYN20260718093000", "SYN20260715101500"]
    assert all(len(entry["sha256"]) == 64 for entry in state.values())

    # A restart sends nothing (the state file says it is all there) ...
    second = push_cli(study, inbox)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "stored" not in second.stdout
    # ... and without the state file the server recognises every click: nothing doubles.
    (inbox / STATE_FILE).unlink()
    third = push_cli(study, inbox)
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.count("already stored: ") == 2, third.stdout
    assert study.acquisitions() == expected


def test_incomplete_or_unsettled_clicks_wait(study: Study, tmp_path: Path) -> None:
    no_photo = make_click(tmp_path, "SYN20260720090000", skip=("photograph.TIF",))
    fresh = make_click(tmp_path, "SYN20260720091500", settled=False)
    lines: list[str] = []

    assert push(options(study, tmp_path, settle_s=30), out=lines.append) == 0
    assert lines[0] == "skipped: SYN20260720090000: incomplete: no photograph.TIF yet"
    assert lines[1].startswith("skipped: SYN20260720091500: still being written (changed ")
    assert lines[1].endswith(" s ago; waits 30 s)") and len(lines) == 2
    assert study.acquisitions() == {}

    # Living Image finishes writing; half a minute later both go up, into one session.
    make_click(tmp_path, no_photo.name)
    for path in [*fresh.iterdir(), fresh]:
        os.utime(path, (LONG_AGO, LONG_AGO))
    lines.clear()
    assert push(options(study, tmp_path, settle_s=30), out=lines.append) == 0
    assert [line.split(" →")[0] for line in lines] == [
        "stored: SYN20260720090000",
        "stored: SYN20260720091500",
    ]
    assert study.acquisitions() == {"2026-07-20": ["SYN20260720090000", "SYN20260720091500"]}


def test_rejected_click_reports_the_servers_reason(study: Study, tmp_path: Path) -> None:
    make_click(tmp_path, "SYN20260722100000", animals=["9001", "9002", "9003", "9004", "9005"])
    make_click(tmp_path, "SYN20260722101500")

    result = push_cli(study, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "failed: SYN20260722100000: HTTP 422: SYN20260722100000.zip: animal(s) 9001, 9002, 9003, "
        "9004, 9005 are not in this study." in result.stdout
    )
    assert "stored: SYN20260722101500" in result.stdout  # one bad click does not stop the rest
    assert study.acquisitions() == {"2026-07-22": ["SYN20260722101500"]}

    lines: list[str] = []  # remembered: not sent again, still reported as failed
    assert push(options(study, tmp_path), out=lines.append) == 1
    assert lines == [
        "failed: SYN20260722100000: HTTP 422: SYN20260722100000.zip: animal(s) 9001, 9002, 9003, "
        "9004, 9005 are not in this study. Add them first, or correct 'Animal Number' with the "
        "`animals` form field. (remembered from before; fix the cause, then run with "
        "--retry-failed, or change the click)"
    ]
    # The technician corrects 'Animal Number' in Living Image: the changed click goes up.
    make_click(tmp_path, "SYN20260722100000", written_at=LONG_AGO + 60)
    lines.clear()
    assert push(options(study, tmp_path), out=lines.append) == 0
    assert [line.split(" →")[0] for line in lines] == ["stored: SYN20260722100000"]
    assert study.acquisitions() == {"2026-07-22": ["SYN20260722101500", "SYN20260722100000"]}


def test_a_click_stored_with_other_files_is_refused_at_once(
    study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    click = make_click(tmp_path, "SYN20260723100000")
    assert push(options(study, tmp_path)) == 0
    # Someone adds a file to the click folder: same click number, other bytes. The server's
    # 409 is final (a click's raw files never change), so it is not retried.
    (click / "notes.txt").write_text("re-imaged? no, just a note")
    for path in (click / "notes.txt", click):
        os.utime(path, (LONG_AGO, LONG_AGO))
    capsys.readouterr()
    lines: list[str] = []

    assert push(options(study, tmp_path, retries=5, backoff_s=1.0), out=lines.append) == 1

    assert len(lines) == 1 and lines[0].startswith("failed: SYN20260723100000: HTTP 409: "), lines
    assert "already stored in this study" in lines[0]
    assert "retry" not in capsys.readouterr().err
    assert study.acquisitions() == {"2026-07-23": ["SYN20260723100000"]}


def test_the_folder_itself_may_be_the_click(study: Study, tmp_path: Path) -> None:
    click = make_click(tmp_path, "SYN20260729100000")
    lines: list[str] = []
    assert push(options(study, click), out=lines.append) == 0
    assert push(options(study, click), out=lines.append) == 0  # our state file is no change
    assert [line.split(" →")[0] for line in lines] == ["stored: SYN20260729100000"]
    assert (click / STATE_FILE).exists()


class FlakyProxy(ThreadingHTTPServer):
    """Loopback proxy to the real server that answers 503 to the first ``fail[method]``
    requests and, for the request numbers in ``cut[method]``, forwards the request but drops
    the connection before answering (the server acted; the client never hears of it)."""

    def __init__(self, target: str, *, fail: dict[str, int], cut: dict[str, set[int]]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target, self.fail, self.cut = target, fail, cut
        self.retry_after: str | None = None  # sent with the 503s when set
        self.seen: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def _handle(self) -> None:
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with proxy.lock:
            n = proxy.seen[self.command] = proxy.seen.get(self.command, 0) + 1
            proxy.times.setdefault(self.command, []).append(time.monotonic())
        if n <= proxy.fail.get(self.command, 0):
            extra = {"Retry-After": proxy.retry_after} if proxy.retry_after else {}
            self._answer(503, b'{"status": 503, "detail": "restarting"}', "application/json", extra)
            return
        forwarded = httpx2.request(
            self.command,
            proxy.target + self.path,
            content=body,
            headers={
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            },
            timeout=60,
        )
        if n in proxy.cut.get(self.command, set()):
            self.close_connection = True  # the answer is lost on the way back
            return
        self._answer(forwarded.status_code, forwarded.content, forwarded.headers["content-type"])

    def _answer(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky(study: Study) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(study.url, fail={"PUT": 2}, cut={"POST": {1}, "PUT": {3}})
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=10)


def test_retries_and_cut_connections_never_duplicate(
    study: Study, flaky: FlakyProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_click(tmp_path, "SYN20260725100000")
    lines: list[str] = []
    started = time.monotonic()

    code = push(dataclasses.replace(options(study, tmp_path), url=flaky.url), out=lines.append)

    assert code == 0, (lines, capsys.readouterr().err)
    assert time.monotonic() - started < 20
    # The session POST reached the server but its answer was lost: the retry found the session
    # instead of creating a second one. Two 503s, then a PUT whose answer was lost, then one
    # that the server recognised.
    assert flaky.seen["POST"] == 1 and flaky.seen["PUT"] == 4
    assert [line.split(" →")[0] for line in lines] == ["already stored: SYN20260725100000"]
    assert study.acquisitions() == {"2026-07-25": ["SYN20260725100000"]}
    retries = capsys.readouterr().err
    assert retries.count("HTTP 503: restarting; retry") == 2
    assert "RemoteProtocolError" in retries


def test_retry_after_is_honoured(
    study: Study, flaky: FlakyProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Backoff alone would wait 0.05–0.2 s; the server asks for 1 s (RFC 9110 Retry-After).
    flaky.fail, flaky.cut, flaky.retry_after = {"PUT": 1}, {}, "1"
    make_click(tmp_path, "SYN20260726100000")
    options_ = dataclasses.replace(options(study, tmp_path), url=flaky.url, max_backoff_s=5.0)

    assert push(options_) == 0

    first, second = flaky.times["PUT"]
    assert second - first >= 1.0
    assert "HTTP 503: restarting; retry 1/3 in 1 s (Retry-After)" in capsys.readouterr().err


def test_gives_up_when_the_server_cannot_be_reached(
    study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_click(tmp_path, "SYN20260725110000")
    nowhere = f"http://127.0.0.1:{free_port()}"

    assert push(options(study, tmp_path, url=nowhere, retries=2)) == 1

    stderr = capsys.readouterr().err
    assert stderr.count("ConnectError") == 3  # two retries, then the final report
    assert "gave up after 3 attempts" in stderr
    assert f"check that {nowhere} is up and reachable" in stderr
    assert study.acquisitions() == {}


def test_wrong_key_or_study_is_explained(
    study: Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(options(study, tmp_path, key="not-a-key")) == 2
    assert "check --key or OSTEOLUX_API_KEY" in capsys.readouterr().err
    assert push(options(study, tmp_path, study="00000000-0000-4000-8000-000000000000")) == 2
    assert "copy the study's id from GET /studies" in capsys.readouterr().err


def test_watch_pushes_new_clicks_until_ctrl_c(study: Study, tmp_path: Path) -> None:
    inbox, staging = tmp_path / "inbox", tmp_path / "staging"
    inbox.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTEOLUX_")}
    process = subprocess.Popen(
        push_command(study, inbox, "--watch", "--interval", "0.2", "--settle", "0"),
        cwd=ROOT,
        env=env | {"OSTEOLUX_API_KEY": study.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Living Image finishes a click; it appears in the watched folder whole.
        click = make_click(staging, "SYN20260727100000")
        click.rename(inbox / click.name)
        deadline = time.monotonic() + 30
        while not study.acquisitions() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert study.acquisitions() == {"2026-07-27": ["SYN20260727100000"]}
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "stored: SYN20260727100000" in stdout
    assert "stopped." in stderr


def test_the_same_folder_zips_to_the_same_bytes(tmp_path: Path) -> None:
    click = make_click(tmp_path, "SYN20260715101500", settled=False)

    def zipped() -> bytes:
        buffer = io.BytesIO()
        zip_click(click, buffer)
        return buffer.getvalue()

    first = zipped()
    (tmp_path / "SYN20260715101500" / STATE_FILE).write_text("{}")  # never zipped
    for path in click.iterdir():
        os.utime(path, (LONG_AGO, LONG_AGO))  # times are not part of the zip
    assert zipped() == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert "SYN20260715101500/ClickInfo.txt" in names
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert (
            archive.read("SYN20260715101500/luminescent.TIF")
            == (click / "luminescent.TIF").read_bytes()
        )


def test_click_time_from_clickinfo_or_click_name(tmp_path: Path) -> None:
    click = tmp_path / "DG20220105114235"
    click.mkdir()
    (click / "ClickInfo.txt").write_bytes(
        b"*** ClickNumber:\tDG20220105114235\r\n\r\n"
        b"*** photographic image:\tphotograph.TIF\r\n"
        b"Acquisition Date:\tWednesday, January 5, 2022\r\nAcquisition Time:\t11:42:42\r\n\r\n"
        b"*** luminescent image:\tluminescent.TIF\r\n"
        b"Acquisition Date:\tWednesday, January 5, 2022\r\nAcquisition Time:\t11:42:59\r\n"
    )
    taken = click_time(click)
    assert taken == datetime(2022, 1, 5, 11, 42, 59).astimezone()
    assert taken.utcoffset() is not None  # the PC's own UTC offset

    (click / "ClickInfo.txt").write_bytes(b"*** ClickNumber:\tDG20220105114235\r\n")
    assert click_time(click) == datetime(2022, 1, 5, 11, 42, 35).astimezone()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x00\x01\x02 not text", "not a text file"),
        (b"Acquisition Date:\tWednesday, January 5, 2022\r\n", "not a Living Image click file"),
    ],
)
def test_a_clickinfo_the_server_cannot_read_rejects_the_click(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    # The client reads ClickInfo.txt with the server's decoder (imaging.clickinfo), so it
    # refuses what the server would refuse instead of guessing a name and a date.
    click = tmp_path / "DG20220105114235"
    click.mkdir()
    (click / "ClickInfo.txt").write_bytes(content)
    with pytest.raises(Exception, match=reason) as raised:
        click_time(click)
    assert "DG20220105114235/ClickInfo.txt" in str(raised.value)


# What `pip install osteolux` would bring and an instrument PC must not need.
SERVER_MODULES = (
    "app imaging cohorts numpy scipy pandas statsmodels matplotlib tifffile boto3 botocore "
    "psycopg fastapi starlette sqlalchemy pydantic alembic uvicorn"
)
_ALONE = """
import importlib.abc, sys
SERVER = set(sys.argv.pop(1).split())
class NotOnAnInstrumentPC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER:
            raise ImportError(f"{name} is not installed with osteolux-push")
sys.meta_path.insert(0, NotOnAnInstrumentPC())
from osteolux_push.cli import main
code = main(sys.argv[1:])
print("server modules loaded:", sorted({m.split(".")[0] for m in sys.modules} & SERVER))
sys.exit(code)
"""


def test_the_client_alone_pushes_without_the_server_packages(study: Study, tmp_path: Path) -> None:
    make_click(tmp_path, "SYN20260730100000")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTEOLUX_")}
    result = subprocess.run(
        [
            *(sys.executable, "-c", _ALONE, SERVER_MODULES, str(tmp_path)),
            *("--url", study.url, "--study", study.id, "--backoff", "0.05"),
        ],
        cwd=tmp_path,
        env=env | {"OSTEOLUX_API_KEY": study.key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored: SYN20260730100000" in result.stdout
    assert "server modules loaded: []" in result.stdout
    assert study.acquisitions() == {"2026-07-30": ["SYN20260730100000"]}


def test_the_client_distribution_declares_what_it_imports() -> None:
    # push/pyproject.toml is `pip install ./push`; every module the client imports is the
    # standard library's, its own, or one of the distribution's three dependencies.
    project = tomllib.loads((ROOT / "push" / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ \\[]", d)[0] for d in project["dependencies"]}
    assert declared == {"httpx2", "tqdm", "stamina"}
    imported: set[str] = set()
    for path in (ROOT / "push").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    own = {"osteolux_push", "livingimage_text"}
    assert imported - sys.stdlib_module_names - own == declared
