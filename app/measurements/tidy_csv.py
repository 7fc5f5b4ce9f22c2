"""Reading a tidy measurement CSV: one row per animal, day (or date), site and flux."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from app.errors import Unprocessable

# Accepted spellings of each column, after lower-casing and removing units in brackets.
COLUMN_ALIASES = {
    "animal": {"animal", "animal_id", "animal id", "mouse", "mouse_id", "ear_tag", "id"},
    "day": {"day", "days", "day_since_injection", "time"},
    "date": {"date", "imaging_date", "acquired_on"},
    "site": {"site", "roi_site", "anatomical_site", "location"},
    "total_flux_ps": {"total_flux_ps", "total_flux", "total flux", "flux", "value"},
    "radiance_mean": {"radiance_mean", "avg_radiance", "avg radiance", "average radiance"},
    "view": {"view"},
    "flags": {"flags", "qc_flags"},
}
MAX_ROWS = 200_000


@dataclass(frozen=True)
class TidyRow:
    line: int
    animal: str
    day: int | None
    on: date | None
    site: str
    total_flux_ps: float | None
    radiance_mean: float | None
    view: str | None
    flags: tuple[str, ...]


def normalise(header: str) -> str:
    """A header cell as the alias tables spell it: lower case, units in brackets removed."""
    return re.sub(r"\s*[\[(].*?[\])]\s*", "", header).strip().lower()


def number(text: str, *, line: int, column: str, decimal_comma: bool) -> float | None:
    if text.strip() == "":
        return None
    if decimal_comma:  # European spreadsheets: 2,37E+05 (only where ',' is not the delimiter)
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise Unprocessable(f"line {line}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise Unprocessable(f"line {line}: {column} is {text!r}; give a finite number")
    return value


@dataclass(frozen=True)
class Table:
    """A CSV's header, where each known column is (by ``aliases``) and its data rows."""

    filename: str
    header: list[str]
    columns: dict[str, int]
    decimal_comma: bool
    """Semicolon- or tab-separated: decimal commas are read (European spreadsheets)."""
    _reader: Iterator[list[str]]

    def cell(self, row: list[str], key: str) -> str:
        index = self.columns.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    def rows(self, limit: int = MAX_ROWS) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of each non-blank data row; more than ``limit``: 422."""
        taken = 0
        for line, row in enumerate(self._reader, start=2):
            if not any(c.strip() for c in row):
                continue
            if taken >= limit:
                raise Unprocessable(f"{self.filename} has more than {limit:,} rows; split it.")
            taken += 1
            yield line, row


def read_table(content: str, *, filename: str, aliases: Mapping[str, Collection[str]]) -> Table:
    """Open a comma-, semicolon- or tab-separated table with a header row (422 if empty);
    the first header cell matching one of a key's ``aliases`` (after :func:`normalise`) is
    that key's column."""
    try:
        dialect = csv.Sniffer().sniff(content[:10000], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content), dialect)
    header = next(reader, None)
    if not header:
        raise Unprocessable(f"{filename} is empty; it needs a header row and data rows.")
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = next((k for k, names in aliases.items() if normalise(name) in names), None)
        if key and key not in columns:
            columns[key] = index
    return Table(filename, header, columns, dialect.delimiter != ",", reader)


def read_tidy_csv(content: str, *, filename: str) -> list[TidyRow]:
    """Parse a comma-, semicolon- or tab-separated tidy table (header row required)."""
    table = read_table(content, filename=filename, aliases=COLUMN_ALIASES)
    columns, header, cell = table.columns, table.header, table.cell
    required = {"animal", "site"}
    missing = sorted(required - columns.keys())
    if "day" not in columns and "date" not in columns:
        missing.append("day or date")
    if "total_flux_ps" not in columns and "radiance_mean" not in columns:
        missing.append("total_flux_ps (or radiance_mean)")
    if missing:
        raise Unprocessable(
            f"{filename}: missing column(s) {', '.join(missing)}. Found: {', '.join(header)}. "
            "Expected a header like: animal,day,site,total_flux_ps"
        )
    decimal_comma = table.decimal_comma
    rows: list[TidyRow] = []
    for line, row in table.rows():
        animal = cell(row, "animal")
        if not animal:
            raise Unprocessable(f"{filename}, line {line}: the animal column is empty.")
        day_value = number(cell(row, "day"), line=line, column="day", decimal_comma=decimal_comma)
        on = None
        if cell(row, "date"):
            try:
                on = date.fromisoformat(cell(row, "date"))
            except ValueError:
                raise Unprocessable(
                    f"{filename}, line {line}: date {cell(row, 'date')!r} is not YYYY-MM-DD."
                ) from None
        if day_value is None and on is None:
            raise Unprocessable(f"{filename}, line {line}: give a day or a date.")
        if day_value is not None and abs(day_value) > 36500:
            raise Unprocessable(
                f"{filename}, line {line}: day {day_value:g} is not a plausible day."
            )
        if day_value is not None and day_value != int(day_value):
            raise Unprocessable(
                f"{filename}, line {line}: day {day_value} is not a whole number of days."
            )
        rows.append(
            TidyRow(
                line=line,
                animal=animal,
                day=None if day_value is None else int(day_value),
                on=on,
                site=cell(row, "site").lower().replace(" ", "_").replace("-", "_"),
                total_flux_ps=number(
                    cell(row, "total_flux_ps"),
                    line=line,
                    column="total_flux_ps",
                    decimal_comma=decimal_comma,
                ),
                radiance_mean=number(
                    cell(row, "radiance_mean"),
                    line=line,
                    column="radiance_mean",
                    decimal_comma=decimal_comma,
                ),
                view=cell(row, "view").lower() or None,
                flags=tuple(f.strip() for f in re.split(r"[;|]", cell(row, "flags")) if f.strip()),
            )
        )
        if rows[-1].total_flux_ps is None and rows[-1].radiance_mean is None:
            raise Unprocessable(f"{filename}, line {line}: no flux value.")
    if not rows:
        raise Unprocessable(f"{filename} has a header but no data rows.")
    _refuse_duplicates(rows, filename)
    return rows


def _refuse_duplicates(rows: list[TidyRow], filename: str) -> None:
    """Two values for one animal, site, view and day would be averaged silently later."""
    seen: dict[tuple[object, ...], int] = {}
    for row in rows:
        key = (row.animal, row.site, row.view, row.day, row.on)
        if key in seen:
            raise Unprocessable(
                f"{filename}: lines {seen[key]} and {row.line} both give {row.site} of animal "
                f"{row.animal} on the same day; keep one (or give them different views)."
            )
        seen[key] = row.line
