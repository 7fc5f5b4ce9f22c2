"""Request body size limit, enforced while the body streams in (with or without a
Content-Length header), before any of it is parsed or stored."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, PROBLEM_TYPE_BASE, PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit:,} bytes. Split the upload, "
        "or ask your administrator to raise OSTEOLUX_MAX_UPLOAD_BYTES."
    )


class BodySizeLimit:
    """Pure ASGI middleware: a declared Content-Length over the limit is refused at once; a
    body that grows past it while streaming raises ``PayloadTooLarge`` inside the request,
    where the error handlers turn it into a 413 problem and the transaction rolls back."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _too_large(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = _too_large(self.max_bytes)
        body = json.dumps(
            {
                "type": PROBLEM_TYPE_BASE + error.slug,
                "title": error.title,
                "status": error.status,
                "detail": error.detail,
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
