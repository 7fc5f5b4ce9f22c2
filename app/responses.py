"""OpenAPI descriptions of the problem+json error responses every route can return."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from app.errors import PROBLEM_JSON


def _problem(description: str, status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": {
                    "type": f"https://osteolux.org/problems/{title.lower().replace(' ', '-')}",
                    "title": title,
                    "status": status,
                    "detail": detail,
                    "instance": "/studies",
                },
            }
        },
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem(
        "No or invalid API key", 401, "Not authenticated", "This request needs an API key."
    ),
    403: _problem(
        "The key's role may not do this", 403, "Not allowed", "This API key may only read."
    ),
    404: _problem("Not found in your lab", 404, "Not found", "No study with this id in your lab."),
    409: _problem(
        "Clashes with existing data", 409, "Conflict", "Your lab already has a study named 'X'."
    ),
    422: _problem("Invalid input", 422, "Invalid request", "day0: is required"),
}

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
