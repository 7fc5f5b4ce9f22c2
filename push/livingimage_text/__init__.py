"""Living Image's text files (``ClickInfo.txt``, ``AnalyzedClickInfo.txt``): decoding and
parsing, with the standard library only.

The one reader of these files: the numeric core reads clicks with it (``imaging.clickinfo``
turns its errors into ``imaging.ClickFolderError``), and so does the push client on an
instrument PC, which must not need numpy to name and date a click.

Format (see ``design/domain/BLI.md``): ``*** Section:<TAB>value`` headers, ``Key:<TAB>Value``
lines, ``#`` comment lines, CRLF or LF, cp1252 or UTF-8. Keys repeat across sections and may
repeat inside one section; every entry is kept in file order.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClickInfo", "ClickSection", "LivingImageTextError", "decode_text", "parse_clickinfo"]


class LivingImageTextError(ValueError):
    """The bytes are not a text file, or the text is not a Living Image click file."""


@dataclass(frozen=True)
class ClickSection:
    """One ``*** Name:\\tvalue`` block: its name, header value and ``(key, value)`` entries."""

    name: str
    value: str
    entries: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive, surrounding blanks ignored)."""
        wanted = key.strip().casefold()
        for k, v in self.entries:
            if k.casefold() == wanted:
                return v
        return default

    def get_all(self, key: str) -> tuple[str, ...]:
        """Every value of ``key`` in file order."""
        wanted = key.strip().casefold()
        return tuple(v for k, v in self.entries if k.casefold() == wanted)

    def as_dict(self) -> dict[str, str]:
        """Entries as a dict (first occurrence of a repeated key wins)."""
        out: dict[str, str] = {}
        for k, v in self.entries:
            out.setdefault(k, v)
        return out


@dataclass(frozen=True)
class ClickInfo:
    """A parsed Living Image text file: the sections in file order."""

    source: str
    sections: tuple[ClickSection, ...]

    def section(self, name: str) -> ClickSection | None:
        """The first section called ``name`` (case-insensitive), or ``None``."""
        wanted = name.strip().casefold()
        for s in self.sections:
            if s.name.casefold() == wanted:
                return s
        return None

    def sections_named(self, name: str) -> tuple[ClickSection, ...]:
        wanted = name.strip().casefold()
        return tuple(s for s in self.sections if s.name.casefold() == wanted)


def decode_text(content: bytes, *, source: str) -> str:
    """Decode a text file written on an instrument PC: UTF-8 (with or without BOM), else
    cp1252 (undefined bytes become U+FFFD).

    The one decoder for ``ClickInfo.txt``, Living Image's CSV exports, measurement CSVs and
    the push client, so they all read (and refuse) the same bytes the same way.

    Raises
    ------
    LivingImageTextError
        The content has NUL bytes: a binary file (e.g. an .xlsx or an image), not text.
    """
    if b"\x00" in content:
        raise LivingImageTextError(
            f"{source}: contains NUL bytes, so it is not a text file (UTF-8 or Windows-1252)"
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def parse_clickinfo(text: str | bytes, *, source: str = "ClickInfo.txt") -> ClickInfo:
    """Parse a ``ClickInfo.txt`` / ``AnalyzedClickInfo.txt``.

    Parameters
    ----------
    text : str or bytes
        File content; bytes are decoded with :func:`decode_text`.
    source : str
        File name used in error messages.

    Returns
    -------
    ClickInfo
        Entries before the first header go to a section named ``""``. Comment lines and blank
        lines are dropped; a trailing ``# ...`` after a value is kept as part of the value only
        when no tab precedes it (the hardware block writes ``value<TAB><TAB># note``, which is
        stripped).

    Raises
    ------
    LivingImageTextError
        No ``***`` section header at all (not a Living Image file).
    """
    if isinstance(text, bytes):
        text = decode_text(text, source=source)
    sections: list[ClickSection] = []
    name, value = "", ""
    entries: list[tuple[str, str]] = []
    seen_header = False
    for raw in text.splitlines():
        line = raw.strip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("***"):
            if seen_header or entries:
                sections.append(ClickSection(name, value, tuple(entries)))
            head = stripped[3:].strip()
            name, _, value = head.partition(":")
            name, value = name.strip(), value.strip()
            entries = []
            seen_header = True
            continue
        key, sep, val = line.partition(":")
        if not sep:
            continue
        val = val.strip(" \t")
        if "\t#" in val or "  #" in val:
            val = val.split("#", 1)[0]
        entries.append((key.strip(), val.strip()))
    if not seen_header:
        raise LivingImageTextError(
            f"{source}: no '*** Section:' header found; this is not a Living Image click file"
        )
    sections.append(ClickSection(name, value, tuple(entries)))
    return ClickInfo(source=source, sections=tuple(sections))
