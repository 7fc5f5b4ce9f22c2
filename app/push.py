"""``osteolux push``: upload every new, complete Living Image click in a folder to a study.

For instrument PCs. A click is a folder with ``ClickInfo.txt`` (``DG20220105114235/``); it is
*complete* when ``ClickInfo.txt``, ``luminescent.TIF`` and ``photograph.TIF`` are there and no
file in it changed for ``--settle`` seconds. Each complete click is zipped deterministically
(the same folder always gives the same bytes, hence the same SHA-256), its imaging session is
looked up by the click's local date (and created when the study has none that day), and the zip
is sent with ``PUT …/acquisitions/{click}`` and its ``Content-Digest``. The SHA-256 is the
idempotency key: the server stores a click once however often it is sent, so a crash or a
network cut mid-upload is repaired by sending again. Transient trouble (no connection,
timeouts, 5xx, 429, a 409 with ``Retry-After``: the same request still running) is retried with
exponential backoff and jitter; a click the server rejects (any other 4xx, e.g. a 409 for a click
number already stored with other files) is reported with the server's reason and not sent again
until its files change.

``.osteolux-push.json`` in the folder remembers what was sent so a restart does not re-send;
deleting it is harmless (the server recognises duplicates).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx2
from tqdm import tqdm

from imaging.clickinfo import ClickInfo, parse_clickinfo
from imaging.errors import ClickFolderError

STATE_FILE = ".osteolux-push.json"
REQUIRED_FILES = ("ClickInfo.txt", "luminescent.TIF", "photograph.TIF")
_CHUNK = 1024**2
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same folder always zips to the same bytes
_CLICK_TIME = re.compile(r"(\d{14})$")
_DATE_FORMATS = ("%A, %B %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")
_TIME_FORMATS = ("%H:%M:%S", "%I:%M:%S %p", "%H:%M")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """The command's options (times in seconds); see ``osteolux push --help``."""

    folder: Path
    url: str
    study: str
    key: str
    watch: bool = False
    interval_s: float = 10.0
    settle_s: float = 30.0
    retries: int = 8
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 120.0
    instrument: str | None = None
    animals: str = "auto"
    retry_failed: bool = False


class _Retryable(Exception):
    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class _Rejected(Exception):
    """The server refused this click (4xx): sending it again unchanged will not help."""


class _Unreachable(Exception):
    """Transient trouble outlasted every retry."""


class _Fatal(Exception):
    """Nothing can be pushed (wrong key, study or URL): the technician must fix the options."""


# ---------------------------------------------------------------- the click folders on disk


def _files(click: Path) -> list[Path]:
    """The regular files of a click folder, sorted by name (our own state file excluded)."""
    return sorted(
        (p for p in click.iterdir() if p.is_file() and not p.name.startswith(STATE_FILE)),
        key=lambda p: p.name,
    )


def _has_file(folder: Path, name: str) -> bool:
    return any(p.name.lower() == name.lower() for p in _files(folder))


def find_clicks(folder: Path) -> list[Path]:
    """Click folders (holding ``ClickInfo.txt``): ``folder`` itself, its children and theirs."""
    candidates = [folder]
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            candidates.append(child)
            candidates.extend(
                c for c in sorted(child.iterdir()) if c.is_dir() and not c.name.startswith(".")
            )
    return [c for c in candidates if _has_file(c, "ClickInfo.txt")]


def incomplete_reason(
    click: Path, *, settle_s: float, now: float | None = None, folder_time: bool = True
) -> str | None:
    """Why the click is not ready to send yet, or ``None`` when it is complete and settled.

    The folder's own time (unless ``folder_time`` is false) catches files still being added
    by a copy that keeps their old times."""
    missing = [name for name in REQUIRED_FILES if not _has_file(click, name)]
    if missing:
        return f"incomplete: no {', '.join(missing)} yet"
    newest = max(p.stat().st_mtime for p in [*([click] if folder_time else []), *_files(click)])
    age = (time.time() if now is None else now) - newest
    if age < settle_s:
        return f"still being written (changed {max(age, 0):.0f} s ago; waits {settle_s:g} s)"
    return None


def signature(click: Path) -> str:
    """Cheap fingerprint of the folder (names, sizes, modification times)."""
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in _files(click)]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def zip_click(click: Path, target: BinaryIO) -> None:
    """Zip the folder deterministically: sorted names, fixed timestamps and attributes."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(click):
            info = zipfile.ZipInfo(f"{click.name}/{path.name}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            info.file_size = path.stat().st_size  # lets zipfile switch to ZIP64 when needed
            with path.open("rb") as source, archive.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _clickinfo(click: Path) -> ClickInfo:
    """The click's ``ClickInfo.txt``, parsed as the server parses it; a file that is not a
    Living Image click file rejects the click (the server would refuse it too)."""
    path = next(p for p in _files(click) if p.name.lower() == "clickinfo.txt")
    try:
        return parse_clickinfo(path.read_bytes(), source=f"{click.name}/{path.name}")
    except ClickFolderError as exc:
        raise _Rejected(str(exc)) from None


def click_number(click: Path) -> str:
    """The click's name: the ``*** ClickNumber`` header, else the folder's name."""
    header = _clickinfo(click).section("ClickNumber")
    return header.value if header is not None and header.value else click.name


def _parse(value: str, formats: tuple[str, ...]) -> datetime | None:
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def click_time(click: Path) -> datetime:
    """When the click was taken, by the instrument PC's clock, with the PC's UTC offset.

    ``Acquisition Date`` / ``Acquisition Time`` of the luminescent image (else of any image);
    else the ``YYYYMMDDhhmmss`` at the end of the click name (``DG20220105114235``)."""
    info = _clickinfo(click)
    ordered = [*info.sections_named("luminescent image"), *info.sections]
    dates = [v for s in ordered for v in s.get_all("Acquisition Date") if v]
    times = [v for s in ordered for v in s.get_all("Acquisition Time") if v]
    if dates and times:
        day, clock = _parse(dates[0], _DATE_FORMATS), _parse(times[0], _TIME_FORMATS)
        if day is not None and clock is not None:
            return datetime.combine(day.date(), clock.time()).astimezone()
    match = _CLICK_TIME.search(click_number(click))
    if match:
        try:
            return datetime.strptime(match[1], "%Y%m%d%H%M%S").astimezone()
        except ValueError:
            pass
    raise _Rejected(
        "cannot tell when it was taken: ClickInfo.txt has no readable 'Acquisition Date' / "
        "'Acquisition Time' and the click name does not end in YYYYMMDDhhmmss"
    )


def _user_label(click: Path) -> str | None:
    labels = _clickinfo(click).section("User Label Name Set")
    user = labels.get("User") if labels is not None else None
    return user[:200] if user else None


# ---------------------------------------------------------------- what was sent already


class _State:
    """``.osteolux-push.json``: per click folder, its signature, SHA-256 and outcome."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        self.clicks: dict[str, dict[str, Any]] = {}
        self._warned = False
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self.clicks = dict(loaded.get("clicks", {}))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            _say(f"warning: ignoring unreadable {self.path} ({exc}); the server skips duplicates")

    def record(self, key: str, **entry: Any) -> None:
        self.clicks[key] = entry | {"at": datetime.now().astimezone().isoformat()}
        temporary = self.path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
        try:
            temporary.write_text(
                json.dumps({"version": 1, "clicks": self.clicks}, indent=1), encoding="utf-8"
            )
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._warned:
                _say(f"warning: cannot write {self.path} ({exc}); clicks may be re-checked")
            self._warned = True


# ---------------------------------------------------------------- talking to the server


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _problem(response: httpx2.Response) -> str:
    """The server's own explanation (problem+json ``detail`` and field ``errors``)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300].strip()}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    detail = str(body.get("detail") or body.get("title") or "")
    fields = [
        f"{e.get('field')}: {e.get('message')}"
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    return f"HTTP {response.status_code}: " + "; ".join([detail, *fields][:4])


def _check(response: httpx2.Response) -> httpx2.Response:
    """Return a 2xx response; raise ``_Retryable`` for transient and ``_Rejected`` for 4xx."""
    status = response.status_code
    if status < 300:
        return response
    retry_after = response.headers.get("Retry-After", "")
    # a 409 is transient only when the server says when to come back (request still running)
    if status >= 500 or status == 429 or (status == 409 and retry_after):
        raise _Retryable(
            _problem(response),
            retry_after_s=float(retry_after) if retry_after.isdigit() else None,
        )
    if status == 401:
        raise _Fatal(
            f"the server refused the API key ({_problem(response)}); check --key or "
            "OSTEOLUX_API_KEY (an 'instrument' or 'editor' key of the study's lab)"
        )
    if status == 403:
        raise _Fatal(
            f"this API key may not push data ({_problem(response)}); ask an admin for an "
            "'instrument' key"
        )
    raise _Rejected(_problem(response))


class Pusher:
    """One folder, one study: finds new complete clicks and pushes them."""

    def __init__(self, options: PushOptions, *, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.out = out
        self.state = _State(options.folder)
        self.client = httpx2.Client(
            base_url=options.url.rstrip("/"),
            headers={"X-API-Key": options.key, "User-Agent": "osteolux-push"},
            timeout=httpx2.Timeout(options.timeout_s, connect=min(10.0, options.timeout_s)),
        )
        self._sessions: dict[date, dict[str, Any]] = {}
        self._waiting: dict[str, str] = {}
        self._reported: set[str] = set()
        self._study = f"/studies/{options.study}"

    def close(self) -> None:
        self.client.close()

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` until it succeeds: exponential backoff with jitter between tries."""
        retries = max(self.options.retries, 0)
        for n in range(retries + 1):
            hint = ""
            try:
                return attempt()
            except httpx2.TransportError as exc:
                reason, wait_at_least = f"{type(exc).__name__}: {exc or 'no answer'}", 0.0
                hint = f" — check that {self.options.url} is up and reachable"
            except _Retryable as exc:
                reason, wait_at_least = str(exc), exc.retry_after_s or 0.0
            if n == retries:
                raise _Unreachable(
                    f"{what}: gave up after {retries + 1} attempts ({reason}); "
                    f"it is tried again on the next pass{hint}"
                )
            backoff = min(self.options.max_backoff_s, self.options.backoff_s * 2**n)
            delay = min(self.options.max_backoff_s, max(wait_at_least, backoff))
            delay *= random.uniform(0.5, 1.0)
            _say(f"  {what}: {reason}; retry {n + 1}/{retries} in {delay:.1f} s")
            time.sleep(delay)
        raise AssertionError("unreachable")

    def check_study(self) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            response = self.client.get(self._study)
            if response.status_code in (404, 422):
                raise _Fatal(
                    f"no study {self.options.study} in your lab at {self.options.url} "
                    f"({_problem(response)}); copy the study's id from GET /studies"
                )
            return dict(_check(response).json())

        return self._retrying("checking the study", attempt)

    def _find_session(self, day: date) -> dict[str, Any] | None:
        offset = 0
        while True:
            page = _check(
                self.client.get(f"{self._study}/sessions", params={"limit": 500, "offset": offset})
            ).json()
            for item in page["items"]:
                if item["acquired_on"] == day.isoformat():
                    return dict(item)
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return None

    def session_for(self, taken: datetime, *, operator: str | None) -> dict[str, Any]:
        """The study's imaging session on the click's local date, created if there is none.

        Always looked up first, also before each retry, so a creation whose answer was lost
        is found rather than repeated."""
        day = taken.date()
        if day not in self._sessions:

            def attempt() -> dict[str, Any]:
                found = self._find_session(day)
                if found is not None:
                    return found
                body = {
                    "acquired_at": taken.isoformat(),
                    "instrument": self.options.instrument,
                    "operator": operator,
                }
                created = self.client.post(
                    f"{self._study}/sessions",
                    json={k: v for k, v in body.items() if v is not None},
                    headers={"X-Change-Reason": "osteolux push: first click of the day"},
                )
                return dict(_check(created).json())

            self._sessions[day] = self._retrying(f"imaging session of {day}", attempt)
        return self._sessions[day]

    def upload(
        self, *, name: str, session_id: str, zip_path: Path, sha256: str
    ) -> tuple[int, dict[str, Any]]:
        """PUT the zip, streamed from disk in chunks with a progress bar; (status, body)."""
        digest = base64.b64encode(bytes.fromhex(sha256)).decode()
        size = zip_path.stat().st_size
        params = {} if self.options.animals == "auto" else {"animals": self.options.animals}
        headers = {
            "Content-Digest": f"sha-256=:{digest}:",
            "Content-Type": "application/zip",
            "Content-Length": str(size),
        }

        def attempt() -> httpx2.Response:
            with (
                zip_path.open("rb") as handle,
                tqdm(
                    total=size,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=name,
                    leave=False,
                    disable=None,  # a bar on a console, none in a log file
                ) as bar,
            ):

                def chunks() -> Iterator[bytes]:
                    while chunk := handle.read(_CHUNK):
                        bar.update(len(chunk))
                        yield chunk

                response = self.client.put(
                    f"{self._study}/sessions/{session_id}/acquisitions/{name}",
                    content=chunks(),
                    headers=headers,
                    params=params,
                )
            if response.status_code == 400:  # body corrupted or cut on the way: send again
                raise _Retryable(_problem(response))
            return _check(response)

        response = self._retrying(f"uploading {name}", attempt)
        return response.status_code, dict(response.json())

    def push_click(self, click: Path, key: str, sig: str) -> str:
        """Zip, place and upload one complete click; returns its outcome line."""
        name = click_number(click)
        with tempfile.TemporaryDirectory(prefix="osteolux-push-") as scratch:
            zip_path = Path(scratch) / "click.zip"
            with zip_path.open("wb") as handle:
                zip_click(click, handle)
            if signature(click) != sig:
                return ""  # it changed while we zipped: next pass
            sha256 = _sha256(zip_path)
            known = self.state.clicks.get(key, {})
            if known.get("status") == "stored" and known.get("sha256") == sha256:
                self.state.record(key, **(known | {"signature": sig}))
                return ""  # only touched: the same bytes are on the server already
            session = self.session_for(click_time(click), operator=_user_label(click))
            status, body = self.upload(
                name=name, session_id=session["id"], zip_path=zip_path, sha256=sha256
            )
        self.state.record(key, status="stored", signature=sig, sha256=sha256, session=session["id"])
        what = "stored" if status == 201 else "already stored"
        return (
            f"{what}: {name} → session {session['acquired_on']} (day {session['day']}), "
            f"{len(body.get('animals', []))} animals, "
            f"{len(body.get('measurements', []))} measurements"
        )

    def run_pass(self) -> int:
        """Push every new complete click once; returns how many failed."""
        failed = 0
        for click in find_clicks(self.options.folder):
            key = click.relative_to(self.options.folder).as_posix() or "."
            reason = incomplete_reason(
                click,
                settle_s=self.options.settle_s,
                folder_time=click != self.options.folder,  # where our state file is written
            )
            if reason is not None:
                if not self.options.watch or self._waiting.get(key) != reason.split(" (")[0]:
                    self.out(f"skipped: {click.name}: {reason}")
                self._waiting[key] = reason.split(" (")[0]
                continue
            self._waiting.pop(key, None)
            sig = signature(click)
            known = self.state.clicks.get(key, {})
            if known.get("signature") == sig and known.get("status") == "stored":
                continue
            if known.get("signature") == sig and not self.options.retry_failed:
                failed += 1
                if key not in self._reported:  # a watcher says it once, a single run each time
                    self.out(
                        f"failed: {click.name}: {known.get('detail')} (remembered from before; "
                        "fix the cause, then run with --retry-failed, or change the click)"
                    )
                    self._reported.add(key)
                continue
            try:
                line = self.push_click(click, key, sig)
            except _Rejected as exc:
                failed += 1
                self.state.record(key, status="failed", signature=sig, detail=str(exc))
                self._reported.add(key)
                line = f"failed: {click.name}: {exc}"
            except (_Unreachable, OSError) as exc:
                failed += 1
                line = f"failed: {click.name}: {exc}"
            if line:
                self.out(line)
        return failed


# ---------------------------------------------------------------- command line


def push(options: PushOptions, *, out: Callable[[str], None] = print) -> int:
    """Run one pass (exit code 0 when nothing failed, 1 otherwise) or, with ``watch``, forever."""
    if not options.folder.is_dir():
        print(f"error: {options.folder} is not a folder", file=sys.stderr)
        return 2
    pusher = Pusher(options, out=out)
    first = True
    try:
        while True:
            try:
                pusher.check_study()
                failed = pusher.run_pass()
            except _Fatal as exc:  # wrong options: a watcher started with them stops at once
                print(f"error: {exc}", file=sys.stderr)
                if first or not options.watch:
                    return 2
                failed = 1
            except _Unreachable as exc:  # a watcher outlives server and network outages
                print(f"error: {exc}", file=sys.stderr)
                failed = 1
            except OSError as exc:  # e.g. a network share gone or a folder without permission
                print(f"error: cannot read {options.folder}: {exc}", file=sys.stderr)
                failed = 1
            if not options.watch:
                return 1 if failed else 0
            first = False
            time.sleep(options.interval_s)
    except KeyboardInterrupt:
        print("stopped.", file=sys.stderr)
        return 0 if options.watch else 130
    finally:
        pusher.close()


def _run(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("OSTEOLUX_API_KEY", "")
    if not key:
        print("error: give the API key with --key or OSTEOLUX_API_KEY", file=sys.stderr)
        return 2
    if not args.url:
        print("error: give the server with --url (or OSTEOLUX_URL)", file=sys.stderr)
        return 2
    options = PushOptions(
        folder=args.folder,
        url=args.url,
        study=args.study,
        key=key,
        watch=args.watch,
        interval_s=args.interval,
        settle_s=args.settle,
        retries=args.retries,
        backoff_s=args.backoff,
        max_backoff_s=args.max_backoff,
        timeout_s=args.timeout,
        instrument=args.instrument,
        animals=args.animals,
        retry_failed=args.retry_failed,
    )
    return push(options, out=lambda line: print(line, flush=True))


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``osteolux push``."""
    parser = subparsers.add_parser(
        "push",
        help="upload new Living Image clicks from a folder to a study (for instrument PCs)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="where Living Image saves its clicks")
    parser.add_argument(
        "--url", default=os.environ.get("OSTEOLUX_URL"), help="the server (OSTEOLUX_URL)"
    )
    parser.add_argument("--study", required=True, help="the study's id")
    parser.add_argument("--key", help="API key (default: the OSTEOLUX_API_KEY variable)")
    parser.add_argument("--watch", action="store_true", help="keep watching until Ctrl-C")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between scans (%(default)g)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="a click must be unchanged this many seconds (%(default)g)",
    )
    parser.add_argument("--retries", type=int, default=8, help="retries per request (%(default)s)")
    parser.add_argument(
        "--backoff", type=float, default=1.0, help="first retry delay, s (%(default)g)"
    )
    parser.add_argument(
        "--max-backoff", type=float, default=60.0, help="longest retry delay, s (%(default)g)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, s (%(default)g)")
    parser.add_argument("--instrument", help="instrument name for new imaging sessions")
    parser.add_argument(
        "--animals",
        default="auto",
        help="'auto' (each click's Animal Number) or the animals left to right, e.g. 3466,3467",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again clicks the server rejected before (e.g. after adding their animals)",
    )
    parser.set_defaults(func=_run)
