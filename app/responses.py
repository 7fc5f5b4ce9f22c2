"""Response conventions shared by every route: the problem+json error responses (and their
OpenAPI examples), CSV bodies, and download headers.

Representations: ``?format=`` chooses how a resource is written — ``json`` (default) or
``csv`` for data, ``png`` (default) or ``svg`` for figures. A file name in the path
(``export/prism.csv``, ``…/overlay.png``, ``sequence.svg``, ``tables.xlsx``) is a documented
alias of the same route, kept because the workspace, the README and scripts use it. Every CSV
is written by :func:`csv_text` and sent by :func:`csv_response`, and documented as
``text/csv`` (:func:`csv_or_json`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import Response

from app.csv_cells import safe_cell
from app.errors import (
    PROBLEM_JSON,
    PROBLEM_TYPE_BASE,
    Conflict,
    Forbidden,
    NotFound,
    OsteoluxError,
    Unauthorized,
    Unprocessable,
)


def problem_example(error: OsteoluxError, *, instance: str = "/studies") -> dict[str, Any]:
    """The problem+json body the error handler sends for ``error`` (type, title and status
    come from the error class, so the documentation cannot drift from the server)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": instance,
    }
    if error.errors:
        body["errors"] = error.errors
    return body


def problem_responses(*examples: tuple[str, OsteoluxError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses, one per ``(description, example error)``, keyed by its status."""
    return {
        error.status: {
            "description": description,
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": problem_example(error),
                }
            },
        }
        for description, error in examples
    }


# What every route can answer. Details are real messages the server sends, or neutral ones
# where the message depends on the route (a route adds its own with ``problem_responses``).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = problem_responses(
    (
        "No or invalid API key",
        Unauthorized("The API key is not valid (unknown or revoked). Check for typos."),
    ),
    (
        "The key's role may not do this",
        Forbidden(
            "This API key has the role 'viewer', which may only read. Ask your lab admin for "
            "an editor key to change study data."
        ),
    ),
    ("Not found in your lab", NotFound("No study with id 7d3c… in your lab.")),
    (
        "Clashes with existing data",
        Conflict("The request clashes with data already stored; the detail says which."),
    ),
    (
        "Invalid input",
        Unprocessable(
            "The request has 1 invalid field(s): day0: is required",
            errors=[{"field": "day0", "message": "is required"}],
        ),
    ),
)

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What was wrong and how to fix it."},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


def attachment_headers(filename: str) -> dict[str, str]:
    """Content-Disposition for a download (RFC 6266): an ASCII fallback plus the UTF-8 name."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename
    )
    encoded = quote(filename, safe="")
    return {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    }


# ---------------------------------------------------------------- CSV

CSV_MEDIA_TYPE = "text/csv"


def csv_cell(value: object) -> str:
    """One cell by the API's CSV convention: numbers as the shortest text that reads back to
    the same value (``repr``; a non-finite or missing number is an empty cell), dates and
    times in ISO 8601, lists joined
    with ``;``, text that a spreadsheet would run as a formula quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too: ISO 8601, with the offset if known
        return value.isoformat()
    if isinstance(value, list | tuple):
        return safe_cell(";".join(map(str, value)))
    return safe_cell(value)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Every CSV the API writes: RFC 4180 (comma separated, CRLF line ends, quoted where
    needed), UTF-8, a header row, then cells by :func:`csv_cell`. Column names are the JSON
    field names, with the unit in brackets where one applies (``total_flux_ps [p/s]``);
    an export that mirrors another program's file (Living Image) uses that program's names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def csv_response(text: str, filename: str | None = None) -> Response:
    """A CSV body (Starlette adds ``; charset=utf-8``), as a download named ``filename`` if
    one is given."""
    headers = attachment_headers(filename) if filename else None
    return Response(text, media_type=CSV_MEDIA_TYPE, headers=headers)


def csv_or_json(description: str, example: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a CSV answer (``text/csv``): beside a route's JSON response model (the
    ``format=csv`` form), or alone for a CSV-only route (``response_class=Response``)."""
    return {
        200: {
            "description": description,
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}, "example": example}},
        }
    }
