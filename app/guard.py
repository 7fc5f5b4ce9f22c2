"""Bounded work per kind of request, and no body read for a request without a key.

A pure ASGI middleware in front of the application:

- **No NUL in the URL.** ``%00`` in the path or query is refused (422) before routing:
  PostgreSQL cannot compare text with it (a 500), SQLite silently could.
- **No key, no body.** A request that carries a body (POST, PUT, PATCH, DELETE) but neither
  ``Authorization`` nor ``X-API-Key`` is answered 401 before a byte of its body is read
  (every route that takes a body needs a key; the key itself is checked by the route).
- **Bounded concurrency.** At most ``max_concurrent_requests`` requests are handled at
  once, below the worker threads and the database connection pool, so a burst waits for a
  slot instead of exhausting either; heavy kinds have smaller limits of their own
  (``max_concurrent_uploads`` decoding images, ``max_concurrent_analyses`` fitting models,
  rendering figures or requantifying). A request that finds no slot within
  ``queue_wait_s`` is answered 503 with ``Retry-After``; nothing of it was done.
  ``/health`` and ``/health/ready`` are never queued. A slot is held until the answer
  starts, not while its body is sent: by then the work is done and committed.

The limits are **per process** (``osteolux serve --workers N`` admits N × each): they
protect that process's threads and connection pool, which is all they are for. Nothing
that must hold across processes (Idempotency-Keys, job keys, study locks) is kept here; it
is in the database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import send_problem

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UPLOAD = re.compile(r"/acquisitions(/tiff|/[^/]+)?$|/(measurements|readouts)/import$")
# computed within the request (a requantification, a power job or a study export only
# queues: a request; an export's ZIP is streamed from the blob store: a request)
_ANALYSIS_POST = re.compile(r"/(comparisons|power|power/onset)$")
_ANALYSIS_GET = re.compile(
    r"/(plots/[^/]+|summary|export/[^/]+|image/radiance|image/photograph\.png"
    r"|overlay(\.png|\.svg)?|sequence(\.png|\.svg)?|kinetics"
    r"|onset/[^/]+(/plot)?|sites/[^/]+(/plot)?|correlation)$"
)
_UNQUEUED = frozenset({"/health", "/health/ready"})


@dataclass(frozen=True)
class Limits:
    requests: int
    uploads: int
    analyses: int
    queue_wait_s: float


def kind_of(method: str, path: str) -> str:
    """Which limit a request counts against: ``upload``, ``analysis`` or ``request``."""
    if method in {"POST", "PUT"} and _UPLOAD.search(path) and "/rois" not in path:
        return "upload"
    if (method == "POST" and _ANALYSIS_POST.search(path)) or (
        method == "GET" and _ANALYSIS_GET.search(path)
    ):
        return "analysis"
    return "request"


class RequestGuard:
    def __init__(self, app: ASGIApp, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self._slots = {
            "request": anyio.CapacityLimiter(limits.requests),
            "upload": anyio.CapacityLimiter(limits.uploads),
            "analysis": anyio.CapacityLimiter(limits.analyses),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNQUEUED:
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b""):
            await send_problem(
                scope,
                send,
                422,
                "Invalid request",
                "invalid-request",
                "The URL contains a NUL character (%00), which no identifier or filter may "
                "hold; remove it.",
                {},
            )
            return
        method = scope["method"]
        headers = dict(scope["headers"])
        if (
            method in _BODY_METHODS
            and b"authorization" not in headers
            and b"x-api-key" not in headers
        ):
            await send_problem(
                scope,
                send,
                401,
                "Not authenticated",
                "unauthorized",
                "This request needs an API key: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'. A lab admin creates keys (see `osteolux create-lab`).",
                {b"www-authenticate": b"Bearer"},
            )
            return
        kind = kind_of(method, scope["path"])
        limiters = [self._slots["request"]]
        if kind != "request":
            limiters.insert(0, self._slots[kind])  # the kind's slot first: it is scarcer
        acquired: list[anyio.CapacityLimiter] = []
        # The body may be sent from another task (StreamingResponse): borrow for the request.
        borrower = object()

        def release() -> None:
            while acquired:
                acquired.pop().release_on_behalf_of(borrower)

        try:
            with anyio.move_on_after(self.limits.queue_wait_s):
                for limiter in limiters:
                    await limiter.acquire_on_behalf_of(borrower)
                    acquired.append(limiter)
            if len(acquired) < len(limiters):
                retry = max(1, math.ceil(self.limits.queue_wait_s / 2))
                what = {"upload": "uploads", "analysis": "analyses"}.get(kind, "requests")
                await send_problem(
                    scope,
                    send,
                    503,
                    "Service busy",
                    "service-busy",
                    f"The server is handling as many {what} as it can at once and none "
                    f"finished within {self.limits.queue_wait_s:g} s; nothing of this request "
                    f"was done. Send it again in {retry} s.",
                    {b"retry-after": str(retry).encode()},
                )
                return

            async def send_and_free(message: Message) -> None:
                # The work is done once the answer starts: its transaction has committed and
                # its connection is back in the pool. Sending the body (to a client that may
                # stall) holds no slot, or 40 stalled downloads would stop the service.
                if message["type"] == "http.response.start":
                    release()
                await send(message)

            await self.app(scope, receive, send_and_free)
        finally:
            release()


#: Swagger UI's page starts itself with an inline script; everything else comes from here.
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    )
)
_EVERYWHERE = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """Headers every answer carries unless it sets its own (the workspace sets a stricter
    policy): no MIME sniffing, no framing, no referrer; a Content-Security-Policy on the API
    documentation; and ``Cache-Control: no-store`` on API answers, which may carry a new key
    or study data, so that no proxy or browser cache keeps them (static files excepted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = list(_EVERYWHERE)
        if path == "/docs":
            extra.append((b"content-security-policy", DOCS_CSP.encode()))
        if not path.startswith(("/static/", "/assets/")):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
