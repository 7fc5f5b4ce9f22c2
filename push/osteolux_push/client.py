"""Talking to the server: the study, its imaging sessions and ``PUT …/acquisitions/{click}``,
with retries (stamina) for transient trouble; :func:`push` runs passes over a folder."""

from __future__ import annotations

import base64
import email.utils
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import stamina
import stamina.instrumentation
from tqdm import tqdm

from osteolux_push.folders import (
    CHUNK_BYTES,
    Rejected,
    State,
    click_number,
    click_time,
    file_sha256,
    find_clicks,
    incomplete_reason,
    say,
    signature,
    user_label,
    zip_click,
)

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


class _Unreachable(Exception):
    """Transient trouble outlasted every retry."""


class _Fatal(Exception):
    """Nothing can be pushed (wrong key, study or URL): the technician must fix the options."""


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


def _retry_after_s(value: str) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx2.TransportError):
        return f"{type(exc).__name__}: {exc or 'no answer'}"
    return str(exc)


def _check(response: httpx2.Response) -> httpx2.Response:
    """Return a 2xx response; raise ``_Retryable`` for transient and ``Rejected`` for 4xx."""
    status = response.status_code
    if status < 300:
        return response
    retry_after = response.headers.get("Retry-After", "")
    # a 409 is transient only when the server says when to come back (request still running)
    if status >= 500 or status == 429 or (status == 409 and retry_after):
        raise _Retryable(_problem(response), retry_after_s=_retry_after_s(retry_after))
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
    raise Rejected(_problem(response))


class Pusher:
    """One folder, one study: finds new complete clicks and pushes them."""

    def __init__(self, options: PushOptions, *, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.out = out
        self.state = State(options.folder)
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
        """``attempt()`` until it succeeds, retried by stamina: exponential backoff with jitter
        between tries, or as long as the server's ``Retry-After`` says (at most
        ``max_backoff_s``). Rejections and fatal answers are not retried."""
        options, retries, failures = self.options, max(self.options.retries, 0), 0

        def backoff(exc: Exception) -> bool | float:
            nonlocal failures
            if not isinstance(exc, httpx2.TransportError | _Retryable):
                return False
            failures += 1
            after = getattr(exc, "retry_after_s", None)
            wait = None if after is None else min(after, options.max_backoff_s)
            if failures <= retries:  # stamina also asks after the last attempt
                when = "" if wait is None else f" in {wait:g} s (Retry-After)"
                say(f"  {what}: {_reason(exc)}; retry {failures}/{retries}{when}")
            return True if wait is None else wait

        try:
            for trying in stamina.retry_context(
                on=backoff,
                attempts=retries + 1,
                timeout=None,
                wait_initial=options.backoff_s,
                wait_max=options.max_backoff_s,
                wait_jitter=options.backoff_s,
            ):
                with trying:
                    return attempt()
        except (httpx2.TransportError, _Retryable) as exc:
            hint = (
                f" — check that {options.url} is up and reachable"
                if isinstance(exc, httpx2.TransportError)
                else ""
            )
            raise _Unreachable(
                f"{what}: gave up after {retries + 1} attempts ({_reason(exc)}); "
                f"it is tried again on the next pass{hint}"
            ) from None
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
                    while chunk := handle.read(CHUNK_BYTES):
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
            sha256 = file_sha256(zip_path)
            known = self.state.clicks.get(key, {})
            if known.get("status") == "stored" and known.get("sha256") == sha256:
                self.state.record(key, **(known | {"signature": sig}))
                return ""  # only touched: the same bytes are on the server already
            session = self.session_for(click_time(click), operator=user_label(click))
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
            except Rejected as exc:
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


def push(options: PushOptions, *, out: Callable[[str], None] = print) -> int:
    """Run one pass (exit code 0 when nothing failed, 1 otherwise) or, with ``watch``, forever."""
    if not options.folder.is_dir():
        print(f"error: {options.folder} is not a folder", file=sys.stderr)
        return 2
    stamina.instrumentation.set_on_retry_hooks([])  # our own lines say what is retried
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
