"""``osteolux push``: the instrument-PC client (:mod:`osteolux_push`), on the server's command
line. The client installs alone as ``osteolux-push`` (``pip install ./push``)."""

from osteolux_push.cli import add_parser

__all__ = ["add_parser"]
