"""``osteolux-push`` (or ``osteolux push`` on a server install): upload every new, complete
Living Image click in a folder to a study.

For instrument PCs, where it installs alone (``pip install ./push``: httpx2, tqdm and stamina,
nothing of the server). A click is a folder with ``ClickInfo.txt`` (``DG20220105114235/``); it is
*complete* when ``ClickInfo.txt``, ``luminescent.TIF`` and ``photograph.TIF`` are there and no
file in it changed for ``--settle`` seconds. Each complete click is zipped deterministically
(the same folder always gives the same bytes, hence the same SHA-256), its imaging session is
looked up by the click's local date (and created when the study has none that day), and the zip
is sent with ``PUT …/acquisitions/{click}`` and its ``Content-Digest``. The SHA-256 is the
idempotency key: the server stores a click once however often it is sent, so a crash or a
network cut mid-upload is repaired by sending again. Transient trouble (no connection,
timeouts, 5xx, 429, a 409 with ``Retry-After``: the same request still running) is retried with
exponential backoff and jitter; a click the server rejects (any other 4xx, e.g. a 409 for a click
number already stored with other files) is reported with the server's reason and not sent again
until its files change.

``.osteolux-push.json`` in the folder remembers what was sent so a restart does not re-send;
deleting it is harmless (the server recognises duplicates).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from osteolux_push.client import PushOptions, push


def _run(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("OSTEOLUX_API_KEY", "")
    if not key:
        print("error: give the API key with --key or OSTEOLUX_API_KEY", file=sys.stderr)
        return 2
    if not args.url:
        print("error: give the server with --url (or OSTEOLUX_URL)", file=sys.stderr)
        return 2
    options = PushOptions(
        folder=args.folder,
        url=args.url,
        study=args.study,
        key=key,
        watch=args.watch,
        interval_s=args.interval,
        settle_s=args.settle,
        retries=args.retries,
        backoff_s=args.backoff,
        max_backoff_s=args.max_backoff,
        timeout_s=args.timeout,
        instrument=args.instrument,
        animals=args.animals,
        retry_failed=args.retry_failed,
    )
    return push(options, out=lambda line: print(line, flush=True))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``osteolux push`` (the server's command line)."""
    _add_arguments(
        subparsers.add_parser(
            "push",
            help="upload new Living Image clicks from a folder to a study (for instrument PCs)",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def main(argv: list[str] | None = None) -> int:
    """``osteolux-push``: the same command, from the client installed alone."""
    parser = argparse.ArgumentParser(
        prog="osteolux-push",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    return _run(parser.parse_args(argv))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="where Living Image saves its clicks")
    parser.add_argument(
        "--url", default=os.environ.get("OSTEOLUX_URL"), help="the server (OSTEOLUX_URL)"
    )
    parser.add_argument("--study", required=True, help="the study's id")
    parser.add_argument("--key", help="API key (default: the OSTEOLUX_API_KEY variable)")
    parser.add_argument("--watch", action="store_true", help="keep watching until Ctrl-C")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between scans (%(default)g)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="a click must be unchanged this many seconds (%(default)g)",
    )
    parser.add_argument("--retries", type=int, default=8, help="retries per request (%(default)s)")
    parser.add_argument(
        "--backoff", type=float, default=1.0, help="first retry delay, s (%(default)g)"
    )
    parser.add_argument(
        "--max-backoff", type=float, default=60.0, help="longest retry delay, s (%(default)g)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, s (%(default)g)")
    parser.add_argument("--instrument", help="instrument name for new imaging sessions")
    parser.add_argument(
        "--animals",
        default="auto",
        help="'auto' (each click's Animal Number) or the animals left to right, e.g. 3466,3467",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again clicks the server rejected before (e.g. after adding their animals)",
    )
    parser.set_defaults(func=_run)


if __name__ == "__main__":
    sys.exit(main())
