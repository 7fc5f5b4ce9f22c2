"""`osteolux worker` runs below the API's CPU priority unless told otherwise."""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from app.jobs import worker


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    worker.add_parser(parser.add_subparsers())
    return parser.parse_args(["worker", *argv])


@pytest.mark.parametrize(
    ("argv", "niced"), [((), [10]), (("--nice", "0"), []), (("--nice", "5"), [5])]
)
def test_the_worker_lowers_its_cpu_priority(
    argv: tuple[str, ...], niced: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "nice", calls.append)
    monkeypatch.setenv("OSTEOLUX_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    worker.get_settings.cache_clear()

    async def no_work(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(worker, "work", no_work)
    try:
        assert worker.main(_parse(*argv)) == 0
    finally:
        worker.get_settings.cache_clear()
    assert calls == niced
