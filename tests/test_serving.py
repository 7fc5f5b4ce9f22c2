"""``osteolux serve``'s HTTP protocol reads a request body in pieces of up to 1 MiB (asyncio's
own transports read 256 KiB at a time), and ``serve`` uses it."""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
import uvicorn

from app.serving import READ_BYTES, HttpProtocol
from tests.live_server import free_port

BODY_BYTES = 12 * 1024**2
ASYNCIO_READ_BYTES = 256 * 1024  # asyncio.selector_events._SelectorSocketTransport.max_size


@contextmanager
def _serving(http: Any) -> Iterator[tuple[str, list[int]]]:
    """A uvicorn server with ``http`` as its protocol and an app that records the size of
    every body message; it reads slowly, as the ingest does while hashing and writing, so
    the socket holds more than one read's worth when it reads."""
    sizes: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            await asyncio.sleep(0.005)
            message = await receive()
            sizes.append(len(message.get("body", b"")))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", sizes
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.mark.parametrize(
    ("http", "largest"),
    [(HttpProtocol, READ_BYTES), ("httptools", ASYNCIO_READ_BYTES)],
    ids=["osteolux", "uvicorn-default"],
)
def test_a_large_body_arrives_in_pieces_of_up_to_1_mib(http: Any, largest: int) -> None:
    with _serving(http) as (url, sizes):
        answer = httpx2.put(url, content=b"\x01" * BODY_BYTES, timeout=60)
    assert answer.status_code == 200
    assert sum(sizes) == BODY_BYTES
    # uvicorn's flow control lets a message hold one read and the 64 KiB before it paused
    assert max(sizes) <= largest + 64 * 1024
    if http is HttpProtocol:
        assert max(sizes) > ASYNCIO_READ_BYTES + 64 * 1024, sizes


def test_serve_runs_uvicorn_with_this_protocol() -> None:
    from app import cli
    from app.config import Settings

    args = argparse.Namespace(host="127.0.0.1", port=8123, workers=2)
    assert cli.uvicorn_config(args, Settings()).http is HttpProtocol
