"""Living Image text files (``ClickInfo.txt``, ``AnalyzedClickInfo.txt``) for the numeric core.

The decoder and parser are :mod:`livingimage_text` (standard library only), shared with the
push client so that the instrument PC and the server read the same bytes the same way; here
its errors become :class:`imaging.ClickFolderError`, part of this package's hierarchy.
"""

from __future__ import annotations

import livingimage_text
from livingimage_text import ClickInfo, ClickSection, LivingImageTextError

from .errors import ClickFolderError

__all__ = ["ClickInfo", "ClickSection", "decode_text", "parse_clickinfo"]


def decode_text(content: bytes, *, source: str) -> str:
    """:func:`livingimage_text.decode_text`, raising :class:`ClickFolderError`."""
    try:
        return livingimage_text.decode_text(content, source=source)
    except LivingImageTextError as exc:
        raise ClickFolderError(str(exc)) from None


def parse_clickinfo(text: str | bytes, *, source: str = "ClickInfo.txt") -> ClickInfo:
    """:func:`livingimage_text.parse_clickinfo`, raising :class:`ClickFolderError`."""
    try:
        return livingimage_text.parse_clickinfo(text, source=source)
    except LivingImageTextError as exc:
        raise ClickFolderError(str(exc)) from None
