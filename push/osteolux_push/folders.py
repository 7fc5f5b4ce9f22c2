"""The click folders on disk: which are complete, their deterministic zip, the name and time
in their ``ClickInfo.txt``, and ``.osteolux-push.json``, which remembers what was sent."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from livingimage_text import ClickInfo, LivingImageTextError, parse_clickinfo

STATE_FILE = ".osteolux-push.json"
REQUIRED_FILES = ("ClickInfo.txt", "luminescent.TIF", "photograph.TIF")
CHUNK_BYTES = 1024**2
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same folder always zips to the same bytes
_CLICK_TIME = re.compile(r"(\d{14})$")
_DATE_FORMATS = ("%A, %B %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")
_TIME_FORMATS = ("%H:%M:%S", "%I:%M:%S %p", "%H:%M")


class Rejected(Exception):
    """The server would refuse this click, or did (4xx): sending it again unchanged will not
    help."""


def say(message: str) -> None:
    """A progress line on stderr that does not break tqdm's bars."""
    tqdm.write(message, file=sys.stderr)


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
                shutil.copyfileobj(source, sink, CHUNK_BYTES)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _clickinfo(click: Path) -> ClickInfo:
    """The click's ``ClickInfo.txt``, parsed as the server parses it; a file that is not a
    Living Image click file rejects the click (the server would refuse it too)."""
    path = next(p for p in _files(click) if p.name.lower() == "clickinfo.txt")
    try:
        return parse_clickinfo(path.read_bytes(), source=f"{click.name}/{path.name}")
    except LivingImageTextError as exc:
        raise Rejected(str(exc)) from None


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
    raise Rejected(
        "cannot tell when it was taken: ClickInfo.txt has no readable 'Acquisition Date' / "
        "'Acquisition Time' and the click name does not end in YYYYMMDDhhmmss"
    )


def user_label(click: Path) -> str | None:
    labels = _clickinfo(click).section("User Label Name Set")
    user = labels.get("User") if labels is not None else None
    return user[:200] if user else None


class State:
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
            say(f"warning: ignoring unreadable {self.path} ({exc}); the server skips duplicates")

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
                say(f"warning: cannot write {self.path} ({exc}); clicks may be re-checked")
            self._warned = True
