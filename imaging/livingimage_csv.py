"""Living Image ROI-measurement exports (CSV or tab-separated TXT).

Columns (``design/domain/BLI.md``): ``Image Number, ROI, Total Flux [p/s], Avg Radiance
[p/s/cm²/sr], Stdev Radiance, Min Radiance, Max Radiance`` followed by user-label columns.
Headers are matched tolerantly: case, spacing, units in brackets and the encoding of ``²``
(``cm²``, ``cm_``, ``cm?``, ``cm2``) do not matter.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .clickinfo import decode_text
from .errors import ClickFolderError, LivingImageExportError

__all__ = ["LivingImageMeasurement", "read_living_image_measurements"]

_MAX_BYTES = 64 * 2**20
_COLUMNS = {
    "image number": "image_number",
    "image name": "image_number",
    "roi": "roi",
    "roi label": "roi",
    "total flux": "total_flux_ps",
    "avg radiance": "radiance_mean",
    "average radiance": "radiance_mean",
    "stdev radiance": "radiance_std",
    "std dev radiance": "radiance_std",
    "min radiance": "radiance_min",
    "max radiance": "radiance_max",
}


@dataclass(frozen=True, kw_only=True)
class LivingImageMeasurement:
    """One row of a Living Image export (radiance in p/s/cm²/sr, flux in p/s)."""

    image_number: str
    roi: str
    total_flux_ps: float | None
    radiance_mean: float | None
    radiance_std: float | None
    radiance_min: float | None
    radiance_max: float | None
    labels: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


def _normalise(header: str) -> str:
    text = re.sub(r"\[.*?\]|\(.*?\)", " ", header)
    text = re.sub(r"[^0-9a-zA-Z]+", " ", text).strip().casefold()
    return re.sub(r"\s+", " ", text)


def read_living_image_measurements(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None
) -> tuple[LivingImageMeasurement, ...]:
    """Parse a Living Image ROI-measurement export.

    Parameters
    ----------
    source : path or bytes
    name : str, optional
        Name used in messages.

    Returns
    -------
    tuple[LivingImageMeasurement, ...]

    Raises
    ------
    LivingImageExportError
        No header with ``Total Flux`` / ``ROI`` columns, or a non-numeric value in a numeric
        column (the message gives the line).
    """
    if isinstance(source, bytes | bytearray):
        content, label = bytes(source), name or "<export>"
    else:
        path = Path(source)
        label = name or path.name
        if path.stat().st_size > _MAX_BYTES:
            raise LivingImageExportError(f"{label}: larger than {_MAX_BYTES} bytes")
        content = path.read_bytes()
    try:
        text = decode_text(content, source=label)
    except ClickFolderError as exc:
        raise LivingImageExportError(str(exc)) from exc
    lines = text.splitlines()
    header_index = None
    for i, line in enumerate(lines[:50]):
        lowered = line.casefold()
        if "total flux" in lowered or ("roi" in lowered and "radiance" in lowered):
            header_index = i
            break
    if header_index is None:
        raise LivingImageExportError(
            f"{label}: no header row with 'Total Flux' or 'ROI'/'Radiance' columns; "
            "export the ROI measurements from Living Image as CSV or TXT"
        )
    header_line = lines[header_index]
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    header = next(reader)
    mapping: dict[int, str] = {}
    label_columns: dict[int, str] = {}
    for j, column in enumerate(header):
        key = _COLUMNS.get(_normalise(column))
        if key is not None and key not in mapping.values():
            mapping[j] = key
        elif column.strip():
            label_columns[j] = column.strip()
    if "total_flux_ps" not in mapping.values() and "radiance_mean" not in mapping.values():
        raise LivingImageExportError(f"{label}: header has neither Total Flux nor Avg Radiance")
    rows = []
    for offset, row in enumerate(reader, start=header_index + 2):
        if not any(cell.strip() for cell in row):
            continue
        values: dict[str, object] = {}
        for j, key in mapping.items():
            cell = row[j].strip() if j < len(row) else ""
            if key in ("image_number", "roi"):
                values[key] = cell
            elif cell == "":
                values[key] = None
            else:
                try:
                    number = float(cell.replace(" ", ""))
                except ValueError as exc:
                    raise LivingImageExportError(
                        f"{label}, line {offset}: {header[j].strip()!r} is {cell!r}, not a number"
                    ) from exc
                if not math.isfinite(number):
                    raise LivingImageExportError(f"{label}, line {offset}: non-finite {cell!r}")
                values[key] = number
        labels = {name_: row[j].strip() for j, name_ in label_columns.items() if j < len(row)}
        rows.append(
            LivingImageMeasurement(
                image_number=str(values.get("image_number", "")),
                roi=str(values.get("roi", "")),
                total_flux_ps=values.get("total_flux_ps"),  # type: ignore[arg-type]
                radiance_mean=values.get("radiance_mean"),  # type: ignore[arg-type]
                radiance_std=values.get("radiance_std"),  # type: ignore[arg-type]
                radiance_min=values.get("radiance_min"),  # type: ignore[arg-type]
                radiance_max=values.get("radiance_max"),  # type: ignore[arg-type]
                labels=MappingProxyType(labels),
                line=offset,
            )
        )
    return tuple(rows)
