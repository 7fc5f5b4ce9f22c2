"""Exports for spreadsheets and GraphPad Prism."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence

from app.csv_cells import safe_cell
from app.measurements.schemas import SeriesPoint


def prism_wide_csv(points: Sequence[SeriesPoint], *, arms: Sequence[str], value_label: str) -> str:
    """A Prism *grouped* XY table: one row per day, one column group per arm, one
    sub-column per animal (replicates). Row 1 names the arm above its first sub-column,
    row 2 names the animals; paste into an XY table with "Enter replicate values".

    Duplicate images of one animal on one day are averaged (arithmetic mean), as in the
    statistics; empty cells are days an animal was not imaged.
    """
    animals: dict[str, list[str]] = defaultdict(list)
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for p in points:
        if p.animal not in animals[p.arm]:
            animals[p.arm].append(p.animal)
        if p.value is not None:
            values[(p.animal, p.day)].append(p.value)
    columns = [(arm, animal) for arm in arms for animal in sorted(animals.get(arm, []))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    group_row = [f"Day ({value_label})"]
    previous = None
    for arm, _ in columns:
        group_row.append(safe_cell(arm) if arm != previous else "")
        previous = arm
    writer.writerow(group_row)
    writer.writerow(["day", *(safe_cell(animal) for _, animal in columns)])
    for day in sorted({p.day for p in points}):
        row: list[str] = [str(day)]
        for _, animal in columns:
            cell = values.get((animal, day))
            row.append(repr(sum(cell) / len(cell)) if cell else "")
        writer.writerow(row)
    return buffer.getvalue()
