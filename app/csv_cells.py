"""Text cells written to CSV files that people open in spreadsheets."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text; text that a spreadsheet would run as a formula is quoted with ``'``
    (numbers are written by the callers themselves and are never passed here)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
