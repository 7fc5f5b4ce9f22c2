"""One error hierarchy, rendered as RFC 9457 ``application/problem+json``.

``OsteoluxError`` carries its HTTP status; services raise its subclasses with a message a
scientist can act on (which field, what was wrong, what is allowed):

- ``BadRequest`` (400): the request cannot be understood (e.g. a malformed header).
- ``Unauthorized`` (401): no API key, or an unknown / revoked one.
- ``Forbidden`` (403): the key is valid but its role may not do this.
- ``NotFound`` (404): no such object *in your lab* (other labs' objects are never revealed).
- ``Conflict`` (409): the request clashes with existing data (duplicate name or identifier).
- ``RequestInProgress`` (409, ``Retry-After``): the same request is still being handled;
  unlike other conflicts, sending it again shortly will succeed.
- ``Unprocessable`` (422): well-formed but scientifically or referentially invalid input.
- ``PayloadTooLarge`` (413): an upload over the configured limit.
- ``RequestTimeout`` (408): a body that arrives slower than the minimum rate.
- ``ServiceUnavailable`` (503): a backing service (e.g. object storage) cannot be reached.
- ``StorageFull`` (503, ``Retry-After``, its own problem type): the file store is full
  (``ENOSPC``/``EDQUOT``); nothing is kept, and an administrator must free space.

The database's own failures are rendered here too, never as a 2xx (the request's transaction
commits before its response is sent): a lock not granted in time, a lost connection or a
failed commit is a 503 with ``Retry-After`` (nothing was saved; the same request may simply
be sent again), and a uniqueness clash found only at commit is a 409.
"""

from __future__ import annotations

import errno
import json
import logging
import re
from collections.abc import Mapping
from math import isfinite
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from imaging import ImagingError

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://osteolux.org/problems/"

log = logging.getLogger(__name__)


class OsteoluxError(Exception):
    status = 500
    title = "Internal error"
    slug = "internal-error"
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class BadRequest(OsteoluxError):
    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(OsteoluxError):
    status, title, slug = 401, "Not authenticated", "unauthorized"


class Forbidden(OsteoluxError):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(OsteoluxError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(OsteoluxError):
    status, title, slug = 409, "Conflict", "conflict"


class RequestInProgress(Conflict):
    title, slug = "Request still running", "request-in-progress"
    headers = MappingProxyType({"Retry-After": "1"})


class Unprocessable(OsteoluxError):
    status, title, slug = 422, "Invalid request", "invalid-request"


class PayloadTooLarge(OsteoluxError):
    status, title, slug = 413, "Upload too large", "payload-too-large"


class RequestTimeout(OsteoluxError):
    status, title, slug = 408, "Request body too slow", "request-timeout"


class ServiceUnavailable(OsteoluxError):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


class StorageFull(ServiceUnavailable):
    """A 503 like the database's, told apart by its type: waiting alone does not help."""

    title, slug = "File store full", "storage-full"
    headers = MappingProxyType({"Retry-After": "300"})


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _describe_validation_error(error: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = ".".join(location) or "request body"
    message = error.get("msg", "is invalid")
    if error.get("type") == "extra_forbidden":
        message = "is not a known field (check the spelling; see the schema in /docs)"
    elif error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "uuid_parsing":
        message = _uuid_message(field.rsplit(".", 1)[-1], error.get("input"))
    elif error.get("type") in {"enum", "literal_error"}:
        expected = (error.get("ctx") or {}).get("expected")
        message = f"must be one of {expected}" if expected else message
    described: dict[str, Any] = {"field": field, "message": message}
    if "input" in error and error.get("type") != "missing" and _is_small(error["input"]):
        value = error["input"]
        # NaN and infinity (refused in every number) have no JSON form: echoed as text
        described["input"] = (
            str(value) if isinstance(value, float) and not isfinite(value) else value
        )
    return described


def _uuid_message(name: str, value: Any) -> str:
    message = (
        "must be an id (a UUID such as 3fa85f64-5717-4562-b3fc-2c963f66afa6), as returned when "
        "the object was created or listed"
    )
    if name in {"animal_id", "animals"} and isinstance(value, str) and len(value) < 40:
        message += (
            f"; '{value}' looks like an ear tag: look its id up with "
            f"GET /studies/{{study_id}}/animals?identifier={value}"
        )
    elif isinstance(value, str) and len(value) < 40:
        message += f"; '{value}' is not one (names and labels are not ids)"
    return message


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API answers on this path, from its OpenAPI paths (Starlette's own
    Allow names only the methods of the first route that matched the path)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


def _is_small(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= 200


_HTTP_TITLES = {
    401: ("Not authenticated", "unauthorized"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
}


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, ours and the framework's, as problem+json."""

    @app.exception_handler(OsteoluxError)
    async def _osteolux_error(request: Request, exc: OsteoluxError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else dict(exc.headers)
        return problem_response(
            request,
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            slug=exc.slug,
            errors=exc.errors,
            headers=headers,
        )

    @app.exception_handler(ImagingError)
    async def _imaging_error(request: Request, exc: ImagingError) -> JSONResponse:
        # Services translate imaging errors with context; this is the backstop for any
        # that slips through: a problem with the data sent, never a server fault.
        return problem_response(
            request, status=422, title="Invalid image data", detail=str(exc), slug="invalid-image"
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_describe_validation_error(e) for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            request,
            status=422,
            title="Invalid request",
            detail=f"The request has {len(errors)} invalid field(s): {summary}",
            slug="invalid-request",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, OsteoluxError):  # e.g. the body limit, hit while
            return await _osteolux_error(request, exc.__cause__)  # FastAPI parsed a form
        title, slug = _HTTP_TITLES.get(exc.status_code, ("HTTP error", "http-error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = (
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}."
            )
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no endpoint at {request.url.path}; see /docs for the API."
        return problem_response(
            request,
            status=exc.status_code,
            title=title,
            detail=detail,
            slug=slug,
            headers=headers,
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return _database_busy(request)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:  # the server went away mid-request
            log.warning("database connection lost on %s %s", request.method, request.url.path)
            return _database_busy(request)
        return await _unexpected(request, exc)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return await _unexpected(request, exc)
        log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return await _osteolux_error(
            request,
            StorageFull(
                "The server's file store is full, so nothing from this request was kept. An "
                "administrator must free or add space on the file store (the blob directory "
                "or the object store's disk); then send the same request again."
            ),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        # Services check uniqueness before writing; a clash found only at commit means
        # another request stored the same thing a moment earlier.
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request,
            status=409,
            title="Conflict",
            detail="Another request changed the same data at the same moment; nothing from this "
            "request was saved. Reload the object and send the request again if still needed.",
            slug="conflict",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request,
            status=500,
            title="Internal error",
            detail="The server failed to handle this request; nothing was saved. "
            "Please report it with the time of the request.",
            slug="internal-error",
        )


DATABASE_RETRY_AFTER_S = 2


def _database_busy(request: Request) -> JSONResponse:
    return problem_response(
        request,
        status=503,
        title=ServiceUnavailable.title,
        detail="The database is busy or unreachable, so nothing from this request was saved. "
        f"Send the same request again in a few seconds (Retry-After: {DATABASE_RETRY_AFTER_S}).",
        slug=ServiceUnavailable.slug,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    title: str,
    slug: str,
    detail: str,
    extra: dict[bytes, bytes] | None = None,
) -> None:
    """A problem+json answer sent by ASGI middleware before the request reached the app (its
    body unread: the connection is closed after it)."""
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or {}).items(),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
