"""Request body size limits, enforced while the body streams in (with or without a
Content-Length header), before any of it is parsed or stored: a JSON body has a small limit
of its own (it is parsed into memory whole); uploads (multipart, zip, TIFF, CSV) the upload
limit (they stream to staging)."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, RequestTimeout, send_problem


def _too_large(limit: int, *, json_body: bool = False) -> PayloadTooLarge:
    if json_body:
        return PayloadTooLarge(
            f"The JSON body is larger than the limit of {limit:,} bytes for JSON requests. "
            "Send files as uploads (multipart or a raw body), or ask your administrator to "
            "raise OSTEOLUX_MAX_JSON_BYTES."
        )
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit:,} bytes. Split the upload, "
        "or ask your administrator to raise OSTEOLUX_MAX_UPLOAD_BYTES."
    )


def _too_slow(rate: float, received: int) -> RequestTimeout:
    return RequestTimeout(
        f"The request body arrived too slowly ({received:,} bytes so far; at least "
        f"{rate / 1024:g} KiB/s is needed), so the upload was stopped and nothing was kept. "
        "Check the network and send it again."
    )


def _is_json(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class BodySizeLimit:
    """Pure ASGI middleware: a declared Content-Length over the limit is refused at once; a
    body that grows past it while streaming raises ``PayloadTooLarge`` inside the request,
    where the error handlers turn it into a 413 problem and the transaction rolls back."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        max_json_bytes: int,
        min_rate_bps: float,
        grace_s: float,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_json_bytes
        self.min_rate_bps = min_rate_bps
        self.grace_s = grace_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        json_body = _is_json(headers.get(b"content-type"))
        limit = self.max_json_bytes if json_body else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = _too_large(limit, json_body=json_body)
            await send_problem(scope, send, error.status, error.title, error.slug, error.detail)
            return
        received = 0
        started = time.monotonic()

        async def limited_receive() -> Message:
            nonlocal received
            # A body must keep up min_rate_bps after the grace period: by then a client that
            # trickles (or sends nothing) would hold an upload slot and a worker for ever.
            wait = self.grace_s + received / self.min_rate_bps - (time.monotonic() - started)
            try:
                # asyncio's own timeout: an anyio cancel scope per message of a 17 MB body
                # was ~10 % of the event loop's time receiving it
                async with asyncio.timeout(max(wait, 0.001)):
                    message = await receive()
            except TimeoutError:
                raise _too_slow(self.min_rate_bps, received) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, json_body=json_body)
            return message

        await self.app(scope, limited_receive, send)
